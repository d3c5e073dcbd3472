"""Book, look up and cancel an appointment through the real assistant over Rasa's REST channel.

The ``assistant`` fixture (tests/conftest.py) runs the trained model and the action server on a
fresh SQLite database (``assistant.env["GENTINFO_DATABASE_URL"]``); the test reads that database
back through the appointment book. The citizen taps the buttons the assistant really sends.
"""
from __future__ import annotations

import re
import uuid
from typing import Any, Dict, List

import pytest
from sqlalchemy import select

from bot.core import db
from bot.core.appointments import BookingStatus, SqlAppointmentBook, appointments, load_book_config
from bot.core.catalogue import get_catalogue
from tests.assistant import button, text_of

PHONE = "0470 12 34 56"
REFERENCE = re.compile(r"\bGNT-[0-9A-Z]{5}\b")


def sender() -> str:
    return f"web:{uuid.uuid4()}"


def book_of(assistant) -> SqlAppointmentBook:
    engine = db.make_engine(assistant.env["GENTINFO_DATABASE_URL"])
    db.create_schema(engine)
    return SqlAppointmentBook(engine, get_catalogue(), load_book_config())



def slot_buttons(messages: List[Dict[str, Any]]) -> List[Dict[str, str]]:
    return [b for m in messages for b in m.get("buttons") or [] if b["payload"].startswith('/choose_option{"option": "20')]


def test_book_then_look_up_then_cancel(assistant) -> None:
    me = sender()
    reply = assistant.rest(me, "ik wil een afspraak maken voor een reispas")
    assert "Waar wilt u naartoe" in text_of(reply)
    reply = assistant.rest(me, button(reply, "Stadskantoor"))
    assert "Wanneer past het u" in text_of(reply)
    reply = assistant.rest(me, button(reply, "Zo snel mogelijk"))
    offered = slot_buttons(reply)
    assert 3 <= len(offered) <= 5 and "Andere dag" in [b["title"] for m in reply for b in m.get("buttons") or []]
    chosen = offered[0]
    assert "naam" in assistant.texts(me, chosen["payload"])
    assert "gsm-nummer of e-mailadres" in assistant.texts(me, "Jan Peeters")
    summary = assistant.rest(me, PHONE)
    assert "Klopt dit?" in text_of(summary) and chosen["title"] in text_of(summary)

    confirmation = assistant.rest(me, button(summary, "Ja, bevestig"))
    text = text_of(confirmation)
    reference = REFERENCE.search(text).group(0)
    assert "staat vast" in text and "Woodrow Wilsonplein" in text and "pasfoto" in text
    ics = next(m["custom"] for m in confirmation if m.get("custom"))
    assert ics["type"] == "ics" and ics["filename"] == f"afspraak-{reference}.ics"
    assert f"UID:{reference}@gentinfo.stad.gent" in ics["content"] and "STATUS:CONFIRMED" in ics["content"]

    booking = book_of(assistant).find(reference, PHONE)
    assert booking.status is BookingStatus.booked and booking.name == "Jan Peeters"
    assert booking.starts_at.isoformat() in chosen["payload"]
    assert (booking.channel, booking.conversation_id) == ("web", me)

    # another conversation: the reference alone is not enough
    other = sender()
    assert "afspraaknummer" in assistant.texts(other, "wanneer is mijn afspraak")
    assistant.texts(other, reference.lower().replace("-", " "))
    assert "Ik vind geen afspraak" in assistant.texts(other, "0499 99 99 99")
    assistant.texts(other, reference)
    shown = assistant.rest(other, PHONE)
    assert reference in text_of(shown) and "Reispas" in text_of(shown)

    question = assistant.rest(other, button(shown, "Annuleren"))  # no need to type the details again
    assert "Wilt u deze afspraak annuleren?" in text_of(question)
    cancelled = assistant.rest(other, "ja, annuleer")
    assert "is geannuleerd" in text_of(cancelled)
    assert "STATUS:CANCELLED" in next(m["custom"] for m in cancelled if m.get("custom"))["content"]
    assert book_of(assistant).find(reference, PHONE).status is BookingStatus.cancelled


def test_question_wrong_answers_and_stop_halfway_book_nothing(assistant) -> None:
    me = sender()
    assistant.texts(me, "afspraak maken voor mijn identiteitskaart")
    answer = assistant.texts(me, "wat moet ik meebrengen?")
    assert "pasfoto" in answer and "Waar wilt u naartoe" in answer  # answered, then the form goes on
    assert "Wanneer past het u" in assistant.texts(me, "rabot")
    assert "zondag gesloten" in assistant.texts(me, "zondag")
    assert "al voorbij" in assistant.texts(me, "gisteren")
    assert "Ik begrijp die datum niet" in assistant.texts(me, "als de kat van huis is")
    assert "niets geboekt" in assistant.texts(me, "laat maar")
    assert "digitale assistent" in assistant.texts(me, "hallo")  # the conversation goes on normally
    engine = db.make_engine(assistant.env["GENTINFO_DATABASE_URL"])
    db.create_schema(engine)
    with engine.connect() as connection:
        rows = connection.execute(select(appointments.c.id).where(appointments.c.conversation_id == me)).all()
    assert rows == []


@pytest.mark.parametrize("wish", ["volgende dinsdag", "donderdag na 16 uur"])
def test_dutch_day_wishes_offer_matching_slots(assistant, wish: str) -> None:
    me = sender()
    assistant.texts(me, '/book_appointment{"product": "adreswijziging"}')
    assistant.texts(me, '/choose_option{"location": "stadskantoor"}')
    reply = assistant.rest(me, wish)
    titles = [b["title"] for b in slot_buttons(reply)]
    day = "dinsdag" if "dinsdag" in wish else "donderdag"
    assert titles and titles[0].startswith(day), text_of(reply)
    assert "niets geboekt" in assistant.texts(me, "stop")
