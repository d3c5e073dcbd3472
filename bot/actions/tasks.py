"""Appointments, KAFKA and handoff entry points while their own flows are being built.

Each answers with a real way forward (the right link, Gentinfo's phone line, a desk without
appointment) instead of a dead end.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.core import answers
from bot.core.catalogue import get_catalogue


class _ContactReply:
    """Mixin, not an Action itself: rasa-sdk registers every Action subclass it finds."""

    intro: str = ""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(text=f"{self.intro}\n{answers.contact_text(get_catalogue())}")
        return []


class ActionBookAppointment(_ContactReply, Action):
    intro = "Een afspraak maken kan via stad.gent/afspraak of telefonisch."

    def name(self) -> Text:
        return "action_book_appointment"


class ActionManageAppointment(_ContactReply, Action):
    intro = "Uw afspraak bekijken, verplaatsen of annuleren kan via de link in uw bevestiging of telefonisch."

    def name(self) -> Text:
        return "action_manage_appointment"


class ActionKafkaSuggestion(_ContactReply, Action):
    intro = "Bedankt voor uw idee om de stad eenvoudiger te maken! U kunt het doorgeven aan Gentinfo."

    def name(self) -> Text:
        return "action_kafka_suggestion"


class ActionKafkaStatus(_ContactReply, Action):
    intro = "Voor de status van uw melding kunt u terecht bij Gentinfo."

    def name(self) -> Text:
        return "action_kafka_status"


# action_human_handoff: see bot/actions/handoff.py (human handoff).
