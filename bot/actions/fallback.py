"""What the assistant says when it cannot understand: never a dead end."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot import metrics
from bot.core import answers
from bot.core.catalogue import get_catalogue

INVALID_INPUT_TEXT = {
    "empty": "Ik kreeg een leeg bericht. Typ gerust uw vraag, bijvoorbeeld 'reispas' of 'afspraak maken'.",
    "no_words": "Ik kan alleen tekst lezen, geen emoji of tekens. Typ gerust uw vraag in een paar woorden.",
    "too_long": "Uw bericht is erg lang. Kunt u uw vraag in een paar korte zinnen stellen? Dan help ik u sneller.",
}

SUGGESTIONS = [
    {"title": "Wat kan je allemaal?", "payload": "/help"},
    {"title": "Afspraak maken", "payload": "/book_appointment"},
    {"title": "Openingsuren", "payload": "/ask_opening_hours"},
    {"title": "Met een medewerker praten", "payload": "/human_handoff"},
]


def consecutive_misses(tracker: Tracker) -> int:
    """How many of the latest user messages in a row the assistant did not understand."""
    misses = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        intent = (event.get("parse_data") or {}).get("intent") or {}
        if intent.get("name") != "nlu_fallback":
            break
        misses += 1
    return misses


class ActionInvalidInput(Action):
    def name(self) -> Text:
        return "action_invalid_input"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        reason = tracker.latest_message.get("input_guard") or "no_words"
        dispatcher.utter_message(text=INVALID_INPUT_TEXT.get(reason, INVALID_INPUT_TEXT["no_words"]))
        return []


class ActionDefaultFallback(Action):
    """Asks to rephrase; after two misses in a row offers a human way out."""

    def name(self) -> Text:
        return "action_default_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        repeated = consecutive_misses(tracker) >= 2
        metrics.fallback(repeated)
        if repeated:
            dispatcher.utter_message(
                text="Het lukt me niet goed om u te begrijpen, sorry. Een medewerker helpt u graag verder.\n"
                + answers.contact_text(get_catalogue()),
                buttons=[SUGGESTIONS[3], SUGGESTIONS[0]],
            )
            return []
        dispatcher.utter_message(
            text="Sorry, dat begreep ik niet goed. Kunt u het anders zeggen, in een paar woorden? Of kies hieronder.",
            buttons=SUGGESTIONS,
        )
        return []
