"""KAFKA-meldpunt status in the chat (``kafka_status_form``): "wat is de status van KAFKA-2026-000123?"
answers with the status label and dates only, nothing personal.
"""
from __future__ import annotations

from typing import Any, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.common import latest_entity, latest_intent
from bot.actions.forms import Field, Result, TableForm, ask_actions
from bot.actions.kafka import NONE, get_register
from bot.actions.tasks import answer_for, apologise, in_thread, latest_text, log_failure, requested_slot, stop_button, text_channel
from bot.core.choices import NO_ANSWER, find_kafka_reference
from bot.core.dates import format_day
from bot.core.kafka import CITY_TZ, InvalidReference, UnknownReference
from bot.core.texts import say


async def ask_status_reference(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    channel = text_channel(tracker)
    dispatcher.utter_message(text=say("kafka.ask_status_reference", channel), buttons=[stop_button(channel)])
    return []


ASK_ACTIONS = ask_actions({"kafka_status_reference": ask_status_reference})


def _activate_status_reference(tracker: Tracker) -> Result:
    entity = latest_entity(tracker, "reference")
    return {"kafka_status_reference": find_kafka_reference(entity or "") or find_kafka_reference(latest_text(tracker))}


def _extract_status_reference(tracker: Tracker) -> Result:
    value = answer_for(tracker, "kafka_status_reference", entities=("reference",),
                       looks_valid=lambda text: find_kafka_reference(text) is not None)
    if value is None and requested_slot(tracker) == "kafka_status_reference" and latest_intent(tracker) == "deny":
        value = NONE
    return {} if value is None else {"kafka_status_reference": value}


async def check_status_reference(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    if value is None or value == NONE:
        return {"kafka_status_reference": value}
    reference = find_kafka_reference(str(value))
    if reference:
        return {"kafka_status_reference": reference}
    if NO_ANSWER.match(str(value)) or latest_intent(tracker) == "deny":
        return {"kafka_status_reference": NONE}
    dispatcher.utter_message(text=say("kafka.unknown_reference_format", text_channel(tracker)))
    return {"kafka_status_reference": None}


class ValidateKafkaStatusForm(TableForm):
    form = "kafka_status_form"
    fields = {
        "kafka_status_reference": Field(check_status_reference, activate=_activate_status_reference,
                                        extract=_extract_status_reference, changes=False, keep_on_none=False),
    }

    async def change(self, field: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
        return {}  # one question: nothing to change


class ActionKafkaStatus(Action):
    """After the status form: the status of a suggestion (label and dates, nothing personal)."""

    def name(self) -> Text:
        return "action_kafka_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        channel = text_channel(tracker)
        reference = tracker.get_slot("kafka_status_reference")
        events: List[EventType] = [SlotSet("kafka_status_reference", None)] if reference else []
        if not reference or reference == NONE:
            dispatcher.utter_message(text=say("kafka.status_without_reference", channel))
            return events
        try:
            register = await in_thread(get_register)
            info = await in_thread(register.status_of, reference)
        except (UnknownReference, InvalidReference):
            dispatcher.utter_message(text=say("kafka.status_not_found", channel, reference=reference))
            return events
        except Exception as error:  # database down
            log_failure("KAFKA status", error)
            apologise(dispatcher)
            return events
        dispatcher.utter_message(text=say(
            "kafka.status", channel, reference=info.reference, label=info.label,
            filed=format_day(info.created_at.astimezone(CITY_TZ).date(), with_year=True),
            changed=format_day(info.updated_at.astimezone(CITY_TZ).date(), with_year=True)))
        return events
