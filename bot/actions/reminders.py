"""Answers to a reminder (``bot.core.reminder_scheduler`` sends it with three quick answers).

- "Ik kom" (``/reminder_confirm{"reference": …}``): a thank-you; it changes nothing and shows nothing.
- "Verplaatsen" / "Annuleren" are the normal ``appointment_reschedule`` / ``appointment_cancel``
  intents with the reference as entity: the manage form starts with the reference known and still
  asks the phone number or e-mail address (rules in ``bot/data/rules/appointments.yml``).
- "zet mijn herinnering uit" switches off the coming reminders of the appointments booked in this
  conversation: the conversation id is the citizen's own WhatsApp number or Telegram chat.
"""
from __future__ import annotations

import os
import threading
from typing import Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.engine import Engine

from bot.actions.tasks import in_thread, log_failure
from bot.core import db, reminders
from bot.core.texts import say

_engines: Dict[Tuple[str, Optional[str]], Engine] = {}
_engines_lock = threading.Lock()


def get_engine() -> Engine:
    """The project database, once per process and URL (tables created at first use)."""
    key = (db.database_url(), os.environ.get("GENTINFO_DB_SCHEMA") or None)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = db.make_engine()
            db.create_schema(engine)
            _engines[key] = engine
        return engine


def _channel(tracker: Tracker) -> Optional[str]:
    return tracker.get_latest_input_channel()


class ActionReminderConfirm(Action):
    def name(self) -> Text:
        return "action_reminder_confirm"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        dispatcher.utter_message(text=say("reminders.confirmed", _channel(tracker)))
        return []


class ActionReminderOff(Action):
    def name(self) -> Text:
        return "action_reminder_off"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        channel = _channel(tracker)
        try:
            engine = await in_thread(get_engine)
            count = await in_thread(reminders.switch_off, engine, tracker.sender_id)
        except Exception as error:  # database down: nothing changed, say so
            log_failure("switching reminders off", error)
            dispatcher.utter_message(text=say("reminders.error", channel))
            return []
        dispatcher.utter_message(text=say("reminders.switched_off" if count else "reminders.nothing_to_switch_off",
                                          channel))
        return []
