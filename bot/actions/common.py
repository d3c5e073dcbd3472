"""Small helpers shared by the actions."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, Iterable, Optional

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.core.answers import Answer
from bot.core.dates import BRUSSELS


def now() -> datetime:
    return datetime.now(BRUSSELS)


def say(dispatcher: CollectingDispatcher, answer: Answer) -> None:
    dispatcher.utter_message(text=answer.text, buttons=answer.buttons or None)


def latest_entity(tracker: Tracker, entity: str) -> Optional[str]:
    """The value of an entity in the latest user message (first occurrence)."""
    values: Iterable[Any] = tracker.get_latest_entity_values(entity)
    return next(iter(values), None)


def latest_intent(tracker: Tracker) -> str:
    intent: Dict[str, Any] = tracker.latest_message.get("intent") or {}
    return intent.get("name") or ""
