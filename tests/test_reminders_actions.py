"""Answers to a reminder: the quick-answer payloads, "Ik kom", and switching reminders off.

Real rasa_sdk trackers and dispatchers on a real SQLite database (GENTINFO_DATABASE_URL per test);
the payloads are parsed by Rasa's own ``RegexMessageHandler``, as the Rasa server does for buttons.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List

import pytest
from rasa_sdk import Action
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import reminders as actions
from bot.core import reminders
from bot.core.appointments import appointment_book_from_env
from bot.core.dates import DateRequest
from bot.core.reminder_scheduler import quick_answers
from bot.core.texts import say
from tests.trackers import DOMAIN, form_tracker, run_form

SENDER = "telegram:42"


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'gentinfo.db'}"
    monkeypatch.setenv("GENTINFO_DATABASE_URL", url)
    monkeypatch.delenv("GENTINFO_DB_SCHEMA", raising=False)
    return url


def booked_with_reminder(sender: str = SENDER) -> str:
    book = appointment_book_from_env()
    slot = book.free_slots("reispas", "stadskantoor", DateRequest(asap=True), limit=1)[0]
    booking = book.book(slot, "Jan Peeters", phone="0470 12 34 56", channel="telegram", conversation_id=sender)
    # opted in a week before, so that the reminder is planned whatever the time of this run
    reminders.opt_in(book.engine, booking.reference, True, now=datetime(2000, 1, 1, tzinfo=timezone.utc))
    return booking.reference


def run_action(action: Action, sender: str = SENDER, text: str = "zet mijn herinnering uit") -> List[str]:
    dispatcher = CollectingDispatcher()
    tracker = form_tracker(form=None, sender=sender, text=text, intent="reminder_off")
    asyncio.run(action.run(dispatcher, tracker, DOMAIN))
    return [message.get("text") or "" for message in dispatcher.messages]


def parse(payload: str) -> Dict[str, Any]:
    from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler
    from rasa.shared.core.domain import Domain
    from rasa.shared.nlu.training_data.message import Message

    [message] = RegexMessageHandler().process([Message(data={"text": payload})],
                                              Domain.from_path("domain.yml"))
    return {"intent": message.get("intent")["name"],
            "entities": {e["entity"]: e["value"] for e in message.get("entities") or []}}


def test_quick_answer_payloads_are_domain_intents_carrying_the_reference() -> None:
    parsed = [parse(button["payload"]) for button in quick_answers("GNT-7K3Q9")]
    assert [p["intent"] for p in parsed] == ["reminder_confirm", "appointment_reschedule", "appointment_cancel"]
    assert all(p["entities"] == {"reference": "GNT-7K3Q9"} for p in parsed)
    assert all(len(b["payload"].encode("utf-8")) <= 64 for b in quick_answers("GNT-7K3Q9"))  # Telegram


def test_reschedule_quick_answer_starts_the_manage_form_with_the_reference_and_still_asks_the_contact() -> None:
    from bot.actions.appointments import ValidateAppointmentManageForm

    reference = booked_with_reminder()
    tracker = form_tracker(form="appointment_manage_form", sender=SENDER,
                           text=f'/appointment_reschedule{{"reference":"{reference}"}}',
                           intent="appointment_reschedule", entities=[("reference", reference)])
    slots, _ = run_form(ValidateAppointmentManageForm(), tracker)
    assert slots["manage_action"] == "reschedule"
    assert slots["manage_reference"] == reference
    assert slots.get("manage_contact") is None and not slots.get("manage_verified")


def test_ik_kom_is_thanked_without_showing_any_appointment_detail() -> None:
    reference = booked_with_reminder()
    [answer] = run_action(actions.ActionReminderConfirm(), text="ik kom")
    assert answer == say("reminders.confirmed") and reference not in answer


def test_switching_off_stops_the_reminders_booked_in_this_conversation() -> None:
    reference = booked_with_reminder()
    [answer] = run_action(actions.ActionReminderOff())
    assert answer == say("reminders.switched_off")
    assert reminders.job_state(actions.get_engine(), reference) == reminders.OFF


def test_switching_off_from_another_conversation_changes_nothing_and_says_so() -> None:
    reference = booked_with_reminder()
    [answer] = run_action(actions.ActionReminderOff(), sender="whatsapp:+32470999999")
    assert answer == say("reminders.nothing_to_switch_off")
    assert "09 210 10 10" in answer
    assert reminders.job_state(actions.get_engine(), reference) == reminders.PENDING


def test_switching_off_when_the_database_is_down_apologises_in_dutch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENTINFO_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    [answer] = run_action(actions.ActionReminderOff())
    assert answer == say("reminders.error") and answer.startswith("Sorry")
