"""The assistant's copy lives in texts.yml, varies per channel where channels differ, and the actions
hold no Dutch sentence themselves."""
from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import appointments as booking
from bot.core.appointments import appointment_book_from_env, describe_slot
from bot.core.catalogue import get_catalogue
from bot.core.dates import DateRequest
from bot.core.texts import get_texts
from tests.trackers import DOMAIN, form_tracker, run_form

ROOT = Path(__file__).resolve().parents[1]
WHATSAPP_SENDER = "whatsapp:+32470123456"
#: Sections of texts.yml; a literal "section.key" in the code is a key.
SECTIONS = ("common", "answers", "appointments", "manage", "kafka", "handoff", "fallback", "channels", "errors",
            "reminders")
#: Keys the code builds from a value (f"common.stopped_{form}"): every value it can take.
BUILT_KEYS = {
    "common.stopped_": ["appointment_form", "appointment_manage_form", "kafka_form", "kafka_status_form"],
    "kafka.button_change_": ["problem", "product", "proposal", "identity"],
    "answers.button_": ["price", "documents", "where", "book", "opening_hours", "opening_hours_of"],
    "fallback.invalid_": ["empty", "no_words", "too_long"],
    "kafka.status_": ["nieuw", "in_behandeling", "doorgestuurd", "uitgevoerd", "afgewezen"],
}
#: Literals that look like keys but are not: a database column, a file name.
NOT_KEYS = {"appointments.id", "handoff.yml"}
#: Literals of four or more words in bot/actions that are not copy: log messages, in English.
NOT_COPY = {"reading a new booking", "finding a booking", "reading a booking", "filing a KAFKA suggestion",
            "handoff unavailable, Redis error: %s", "handoff %s: %s, %s (%s)", "%s failed: %s"}


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENTINFO_DATABASE_URL", f"sqlite:///{tmp_path / 'gentinfo.db'}")
    monkeypatch.delenv("GENTINFO_DB_SCHEMA", raising=False)


def on_channel(tracker: Tracker, channel: str) -> Tracker:
    """The tracker as Rasa sends it: the user event names its input channel."""
    for event in tracker.events:
        if event.get("event") == "user":
            event["input_channel"] = channel
    return tracker


def whatsapp(slots: Optional[Dict[str, Any]] = None, **message: Any) -> Tracker:
    return on_channel(form_tracker(slots, form="appointment_form", sender=WHATSAPP_SENDER, **message), "whatsapp")


def run_ask(action: Any, tracker: Tracker) -> List[Dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    asyncio.run(action().run(dispatcher, tracker, DOMAIN))
    return dispatcher.messages


# -- WhatsApp ---------------------------------------------------------------------------------------------
def test_no_whatsapp_text_asks_to_tap():
    texts = get_texts()
    every_key: List[str] = texts.keys()  # Texts is not iterable
    tapping = [key for key in every_key if re.search(r"\b(tik|klik)", texts.raw(key, "whatsapp"), re.IGNORECASE)]
    assert tapping == []


def test_on_whatsapp_the_free_moments_are_listed_once_and_without_tapping():
    first = appointment_book_from_env().free_slots("reispas", "stadskantoor", DateRequest(asap=True), limit=1)[0]
    slots = {"appointment_product": "reispas", "appointment_location": "stadskantoor",
             "appointment_date": DateRequest(asap=True).to_dict()}
    whatsapp_message = run_ask(booking.ActionAskAppointmentSlot, whatsapp(slots))[0]
    web_message = run_ask(booking.ActionAskAppointmentSlot,
                          on_channel(form_tracker(slots, form="appointment_form", sender="web:x"), "webchat"))[0]
    moment = describe_slot(first, get_catalogue())
    assert whatsapp_message["buttons"][0]["title"] == moment  # the connector numbers the buttons
    assert moment not in whatsapp_message["text"] and "tik" not in whatsapp_message["text"].lower()
    assert moment in web_message["text"]  # where buttons are buttons, the text lists them too


def test_the_whatsapp_booking_offers_the_number_the_citizen_writes_from():
    ask = run_ask(booking.ActionAskAppointmentContact, whatsapp(requested="appointment_name", text="Jan Peeters"))[0]
    assert "0470 12 34 56" in ask["text"] and [b["payload"] for b in ask["buttons"]] == ["/affirm", "/deny"]
    values, _ = run_form(booking.ValidateAppointmentForm(),
                         whatsapp(text="ja", intent="affirm", requested="appointment_contact"))
    assert values["appointment_contact"] == "+32470123456"


def test_no_to_the_whatsapp_number_asks_for_another_one():
    declined = whatsapp(text="nee", intent="deny", requested="appointment_contact")
    values, said = run_form(booking.ValidateAppointmentForm(), declined)
    assert values["appointment_contact"] is None and said == []
    ask = run_ask(booking.ActionAskAppointmentContact, declined)[0]
    assert "0470" not in ask["text"] and "gsm-nummer of e-mailadres" in ask["text"]
    typed = whatsapp(text="mijn mail is jan@example.be", requested="appointment_contact")
    assert run_form(booking.ValidateAppointmentForm(), typed)[0]["appointment_contact"] == "jan@example.be"


def test_another_number_at_the_whatsapp_summary_is_asked_without_the_offer():
    tracker = whatsapp(text="ander nummer", intent="change_detail", requested="appointment_contact")
    ask = run_ask(booking.ActionAskAppointmentContact, tracker)[0]
    assert "0470" not in ask["text"] and "gsm-nummer of e-mailadres" in ask["text"]


def test_other_channels_are_asked_for_a_number():
    tracker = on_channel(form_tracker(form="appointment_form", sender="telegram:42", requested="appointment_name"),
                         "telegram")
    ask = run_ask(booking.ActionAskAppointmentContact, tracker)[0]
    assert "gsm-nummer of e-mailadres" in ask["text"] and not ask.get("buttons")


def test_the_calendar_file_the_assistant_mentions_is_the_one_it_sends():
    slot = appointment_book_from_env().free_slots("reispas", "stadskantoor", DateRequest(asap=True), limit=1)[0]
    slots = {"appointment_product": "reispas", "appointment_location": "stadskantoor",
             "appointment_date": DateRequest(asap=True).to_dict(), "appointment_slot": slot.to_dict(),
             "appointment_name": "Jan Peeters", "appointment_contact": "+32470123456"}
    booked, _ = run_form(booking.ValidateAppointmentForm(),
                         form_tracker(slots, form="appointment_form", sender="web:file", text="ja", intent="affirm",
                                      requested="appointment_confirmed"))
    tracker = form_tracker({**slots, **booked}, form=None, sender="web:file")
    messages = run_ask(booking.ActionAppointmentBooked, tracker)
    filename = next(m["custom"]["filename"] for m in messages if m.get("custom"))
    assert filename == f"afspraak-{booked['appointment_reference']}.ics"
    assert any(filename in (m.get("text") or "") for m in messages)


# -- the copy is in texts.yml -----------------------------------------------------------------------------
def python_files(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((ROOT / folder).glob("*.py"))


def literals(path: Path) -> Iterator[Tuple[int, str]]:
    """Every string literal except docstrings; an f-string as its text with {} for the values."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings: Set[int] = set()
    inside_fstrings: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
        if isinstance(node, ast.JoinedStr):
            inside_fstrings.update(id(part) for part in node.values)
            yield node.lineno, "".join(str(part.value) if isinstance(part, ast.Constant) else "{}" for part in node.values)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings | inside_fstrings:
            yield node.lineno, node.value


def test_no_dutch_sentence_is_left_in_the_actions():
    sentences = [f"{path.name}:{line}: {text!r}" for path in python_files("bot/actions") for line, text in literals(path)
                 if len(text.split()) >= 4 and text not in NOT_COPY]
    assert sentences == []


def test_every_text_key_in_the_code_exists_in_texts_yml():
    texts = get_texts()
    key = re.compile(rf"^({'|'.join(SECTIONS)})\.[a-z_]+$")
    used = {text for path in python_files("bot/actions", "bot/core") for _, text in literals(path)
            if key.match(text) and text not in NOT_KEYS}
    used |= {prefix + value for prefix, values in BUILT_KEYS.items() for value in values}
    assert len(used) > 150
    assert sorted(name for name in used if name not in texts) == []


def test_gentinfo_phone_number_is_written_in_the_catalogue_only():
    phone = get_catalogue().contact.phone
    hard_coded = [f"{path.relative_to(ROOT)}:{line}" for path in python_files("bot/actions", "bot/core")
                  for line, text in literals(path) if phone in text]
    assert hard_coded == []
    assert phone not in (ROOT / "bot/data/content/texts.yml").read_text(encoding="utf-8")
