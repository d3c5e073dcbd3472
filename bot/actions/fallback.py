"""What the assistant says when it cannot understand: never a dead end."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot import metrics
from bot.actions.tasks import text_channel
from bot.core import answers
from bot.core.catalogue import get_catalogue
from bot.core.texts import say

#: Why the connector's input guard refused a message -> texts.yml key.
INVALID_INPUT_REASONS = ("empty", "no_words", "too_long")

#: (texts.yml key of the title, payload) of the ways out the fallback offers.
SUGGESTIONS = [
    ("fallback.button_help", "/help"),
    ("fallback.button_book", "/book_appointment"),
    ("fallback.button_opening_hours", "/ask_opening_hours"),
    ("fallback.button_handoff", "/human_handoff"),
]


def suggestions(channel: Optional[str], *indexes: int) -> List[Dict[str, str]]:
    chosen = [SUGGESTIONS[i] for i in indexes] if indexes else SUGGESTIONS
    return [{"title": say(key, channel), "payload": payload} for key, payload in chosen]


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
        key = reason if reason in INVALID_INPUT_REASONS else "no_words"
        dispatcher.utter_message(text=say(f"fallback.invalid_{key}", text_channel(tracker)))
        return []


class ActionDefaultFallback(Action):
    """Asks to rephrase; after two misses in a row offers a human way out."""

    def name(self) -> Text:
        return "action_default_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        channel = text_channel(tracker)
        repeated = consecutive_misses(tracker) >= 2
        metrics.fallback(repeated)
        if repeated:
            dispatcher.utter_message(
                text=say("fallback.repeated", channel, contact=answers.contact_text(get_catalogue())),
                buttons=suggestions(channel, 3, 0),
            )
            return []
        dispatcher.utter_message(text=say("fallback.rephrase", channel), buttons=suggestions(channel))
        return []
