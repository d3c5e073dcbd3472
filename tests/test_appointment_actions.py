"""The appointment form actions against a real SQLite database (GENTINFO_DATABASE_URL, set per test).

Each test builds a real rasa_sdk ``Tracker`` and ``CollectingDispatcher`` and calls the validation
methods (or a whole validation run, as Rasa does after a user message). Slots come from the real
catalogue and the real clock, so the assertions look at structure, not at particular dates.
"""
from __future__ import annotations

import asyncio
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import holidays
import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import appointments as actions
from bot.actions import manage as manage_actions
from bot.actions import slots as slot_actions
from bot.actions.common import now
from bot.core.appointments import BookingStatus, Slot, appointment_book_from_env
from bot.core.dates import MONTHS_NL, DateRequest
from tests.trackers import DOMAIN, form_tracker, run_form, validate_slot

PHONE = "0470 12 34 56"
PHONE_E164 = "+32470123456"
SENDER = "web:test-conversation"


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'gentinfo.db'}"
    monkeypatch.setenv("GENTINFO_DATABASE_URL", url)
    monkeypatch.delenv("GENTINFO_DB_SCHEMA", raising=False)
    return url


def make_tracker(slots: Optional[Dict[str, Any]] = None, *, form: Optional[str] = "appointment_form",
                 sender: str = SENDER, **message: Any) -> Tracker:
    return form_tracker(slots, form=form, sender=sender, **message)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def validate(slot: str, value: Any, tracker: Optional[Tracker] = None,
             form: Any = None) -> Tuple[Dict[str, Any], List[str]]:
    return validate_slot(form or actions.ValidateAppointmentForm(), slot, value, tracker or make_tracker())


def form_run(tracker: Tracker, form: Any = None) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    return run_form(form or actions.ValidateAppointmentForm(), tracker)


def first_free(product: str = "reispas", location: str = "stadskantoor") -> Slot:
    return appointment_book_from_env().free_slots(product, location, DateRequest(asap=True), limit=1)[0]


def booking_slots(**overrides: Any) -> Dict[str, Any]:
    slot = overrides.pop("slot", None) or first_free()
    values = {"appointment_product": slot.product_id, "appointment_location": slot.location_id,
              "appointment_date": DateRequest(asap=True).to_dict(), "appointment_slot": slot.to_dict(),
              "appointment_name": "Jan Peeters", "appointment_contact": PHONE_E164}
    values.update(overrides)
    return values


def next_weekday(weekday: int) -> date:
    today = now().date()
    return today + timedelta(days=(weekday - today.weekday()) % 7 or 7)


# -- product and place ------------------------------------------------------------------------------------
def test_a_bookable_product_by_word_or_id_is_taken_and_becomes_the_conversation_topic():
    result, said = validate("appointment_product", "ik wil een paspoort")
    assert result["appointment_product"] == "reispas" and result["product"] == "reispas" and not said
    assert validate("appointment_product", "kids_id")[0]["appointment_product"] == "kids_id"


def test_a_product_without_appointments_is_explained_and_asked_again():
    result, said = validate("appointment_product", "bewonerskaart")
    assert result["appointment_product"] is None
    assert "geen afspraak" in said[0] and "Bewonerskaart".lower() in said[0].lower()


def test_an_unknown_product_gets_examples():
    result, said = validate("appointment_product", "een fiets")
    assert result["appointment_product"] is None and "reispas" in said[0]


def test_a_product_offered_in_one_place_skips_the_place_question():
    result, _ = validate("appointment_product", "trouwen")
    assert result["appointment_product"] == "huwelijk" and result["appointment_location"] == "stadskantoor"


def test_only_places_that_offer_the_product_are_accepted():
    tracker = make_tracker({"appointment_product": "rijbewijs"})
    assert validate("appointment_location", "rabot", tracker)[0]["appointment_location"] == "rabot"
    result, said = validate("appointment_location", "wijkkantoor oostakker", tracker)
    assert result["appointment_location"] is None
    assert "Oostakker" in said[0] and "Wijkkantoor Rabot" in said[0]


# -- day and slot -------------------------------------------------------------------------------------------
def place(product: str = "reispas", location: str = "stadskantoor") -> Tracker:
    return make_tracker({"appointment_product": product, "appointment_location": location})


def test_as_soon_as_possible_is_a_date_request_with_free_slots():
    result, said = validate("appointment_date", "zo snel mogelijk", place())
    assert DateRequest.from_dict(result["appointment_date"]).asap and not said
    assert validate("appointment_date", "asap", place())[0]["appointment_date"]["asap"]  # the button


def test_past_unknown_and_closed_days_get_clear_dutch_answers():
    result, said = validate("appointment_date", "gisteren", place())
    assert result["appointment_date"] is None and "voorbij" in said[0]
    result, said = validate("appointment_date", "als de kat van huis is", place())
    assert result["appointment_date"] is None and "zo snel mogelijk" in said[0]
    sunday = next_weekday(6)
    result, said = validate("appointment_date", f"{sunday.day} {MONTHS_NL[sunday.month - 1]}", place())
    assert result["appointment_date"] is None and "gesloten" in said[0] and "zondag" in said[0]


def test_a_holiday_is_refused_with_its_name():
    today = now().date()
    be = holidays.country_holidays("BE", language="nl")
    day = next((today + timedelta(days=n) for n in range(2, 50) if (today + timedelta(days=n)) in be
                and (today + timedelta(days=n)).weekday() < 5), None)
    if day is None:
        pytest.skip("no weekday holiday in the next 7 weeks")
    result, said = validate("appointment_date", f"{day.day} {MONTHS_NL[day.month - 1]}", place())
    assert result["appointment_date"] is None and ("feestdag" in said[0] or "gesloten" in said[0])


def test_a_day_beyond_the_booking_horizon_says_until_when():
    far = now().date() + timedelta(days=120)
    result, said = validate("appointment_date", f"{far.day}/{far.month}/{far.year}", place())
    assert result["appointment_date"] is None and "tot en met" in said[0]


def test_the_offered_slots_can_be_chosen_by_button_number_word_or_time():
    book = appointment_book_from_env()
    offered = book.free_slots("reispas", "stadskantoor", DateRequest(asap=True), limit=5)
    tracker = make_tracker({**booking_slots(appointment_slot=None),
                            "appointment_offered": [s.to_dict() for s in offered]})
    chosen = lambda raw: validate("appointment_slot", raw, tracker)[0]["appointment_slot"]  # noqa: E731
    assert chosen(offered[2].starts_at.isoformat()) == offered[2].to_dict()
    assert chosen("1") == offered[0].to_dict()
    assert chosen("de tweede") == offered[1].to_dict()
    assert chosen("de laatste") == offered[-1].to_dict()
    start = offered[3].starts_at
    assert chosen(f"{start.hour}u{start.minute:02d}") == next(s for s in offered if s.starts_at.time() == start.time()).to_dict()


def test_a_day_with_few_free_moments_also_offers_the_next_days():
    book = appointment_book_from_env()
    wednesday = next_weekday(2)  # the Stadskantoor closes at 16.30; a wedding takes 30 minutes
    while book.closed_reason("stadskantoor", wednesday):
        wednesday += timedelta(days=7)
    slots, used, note = actions.search_slots(book, "huwelijk", "stadskantoor", DateRequest(day=wednesday, after=time(16)))
    assert slots[0].starts_at.date() == wednesday and len(slots) >= 3 and slots[1].starts_at.date() > wednesday
    assert used.from_day == wednesday and used.after == time(16) and note is None


def test_a_stale_button_or_nonsense_is_asked_again_and_a_new_day_replaces_the_wish():
    book = appointment_book_from_env()
    offered = book.free_slots("reispas", "stadskantoor", DateRequest(asap=True), limit=5)
    tracker = make_tracker({**booking_slots(appointment_slot=None), "appointment_offered": [s.to_dict() for s in offered]})
    result, said = validate("appointment_slot", (offered[0].starts_at - timedelta(days=3)).isoformat(), tracker)
    assert result["appointment_slot"] is None and "oudere lijst" in said[0]
    result, said = validate("appointment_slot", "blauw", tracker)
    assert result["appointment_slot"] is None and "typ het nummer (1 tot 5)" in said[0]
    tuesday = next_weekday(1)
    result, _ = validate("appointment_slot", "volgende dinsdag", tracker)
    assert result["appointment_slot"] is None and result["appointment_date"]["day"] >= tuesday.isoformat()


def test_the_slot_question_offers_at_most_five_nearest_slots_and_another_day():
    dispatcher = CollectingDispatcher()
    tracker = place()
    tracker.slots["appointment_date"] = DateRequest(asap=True).to_dict()
    events = run(actions.ActionAskAppointmentSlot().run(dispatcher, tracker, DOMAIN))
    offered = events[0]["value"]
    assert events[0]["name"] == "appointment_offered" and 3 <= len(offered) <= 5
    starts = [Slot.from_dict(item).starts_at for item in offered]
    assert starts == sorted(starts) and starts[0] > now()
    buttons = dispatcher.messages[0]["buttons"]
    assert buttons[0]["payload"].startswith('/choose_option{"option": "') and buttons[-2]["title"] == "Andere dag"


# -- name, contact -----------------------------------------------------------------------------------------
def test_names_and_contact_details_are_checked_with_dutch_messages():
    assert validate("appointment_name", "  Jan   Peeters ")[0]["appointment_name"] == "Jan Peeters"
    result, said = validate("appointment_name", "12345")
    assert result["appointment_name"] is None and "voornaam" in said[0]
    assert validate("appointment_contact", PHONE)[0]["appointment_contact"] == PHONE_E164
    assert validate("appointment_contact", "mijn mail is Jan.Peeters@Example.BE")[0]["appointment_contact"] == "jan.peeters@example.be"
    result, said = validate("appointment_contact", "0470 12")
    assert result["appointment_contact"] is None and "telefoonnummer klopt niet" in said[0]
    result, said = validate("appointment_contact", "jan@")
    assert result["appointment_contact"] is None and "e-mailadres klopt niet" in said[0]


# -- confirmation --------------------------------------------------------------------------------------------
def test_confirming_books_durably_with_the_channel_of_the_conversation():
    slots = booking_slots()
    result, said = validate("appointment_confirmed", True, make_tracker(slots))
    assert result["appointment_confirmed"] is True and not said
    booking = appointment_book_from_env().find(result["appointment_reference"], PHONE)
    assert booking.starts_at == Slot.from_dict(slots["appointment_slot"]).starts_at
    assert (booking.name, booking.phone, booking.channel, booking.conversation_id) == ("Jan Peeters", PHONE_E164, "web", SENDER)


def test_a_slot_taken_meanwhile_is_said_and_new_slots_are_offered():
    slot = first_free("reispas", "oostakker")  # one desk
    appointment_book_from_env().book(slot, "Iemand Anders", phone="0471 23 45 67")
    result, said = validate("appointment_confirmed", True, make_tracker(booking_slots(slot=slot)))
    assert result == {"appointment_slot": None, "appointment_confirmed": None}
    assert "al geboekt" in said[0] and "nieuwe vrije momenten" in said[0]


def test_a_database_failure_is_an_apology_with_gentinfo_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    slots = booking_slots()
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    monkeypatch.setenv("GENTINFO_DATABASE_URL", f"sqlite:///{blocker / 'gentinfo.db'}")
    result, said = validate("appointment_confirmed", True, make_tracker(slots))
    assert result == {"appointment_confirmed": None}
    assert "09 210 10 10" in said[0] and "nog niet geboekt" in said[0]


def test_the_booked_action_confirms_with_reference_address_what_to_bring_and_a_calendar_file():
    slots = booking_slots()
    result, _ = validate("appointment_confirmed", True, make_tracker(slots))
    tracker = make_tracker({**slots, **result}, form=None)
    dispatcher = CollectingDispatcher()
    events = run(actions.ActionAppointmentBooked().run(dispatcher, tracker, DOMAIN))
    text = dispatcher.messages[0]["text"]
    assert result["appointment_reference"] in text and "Woodrow Wilsonplein" in text and "pasfoto" in text
    ics = dispatcher.messages[1]["custom"]
    assert ics["type"] == "ics" and ics["filename"].endswith(".ics") and "BEGIN:VCALENDAR" in ics["content"]
    cleared = {e["name"] for e in events if e["value"] is None}
    assert {"appointment_contact", "appointment_slot", "appointment_reference"} <= cleared


# -- a whole turn, as Rasa runs the validation action ------------------------------------------------------
def test_activation_takes_the_product_from_the_button_and_forgets_an_unfinished_booking():
    tracker = make_tracker({"appointment_name": "Oude Naam", "appointment_confirmed": True,
                            "appointment_reference": "GNT-22222"},
                           text='/book_appointment{"product": "rijbewijs"}', intent="book_appointment",
                           entities=[("product", "rijbewijs")], requested=None)
    values, _ = form_run(tracker)
    assert values["appointment_product"] == "rijbewijs"
    assert values["appointment_name"] is None and values["appointment_confirmed"] is None
    assert values["appointment_reference"] is None


def test_activation_with_a_product_offered_in_one_place_sets_that_place():
    tracker = make_tracker({"appointment_location": "rabot"}, text='/book_appointment{"product": "huwelijk"}',
                           intent="book_appointment", entities=[("product", "huwelijk")])
    values, _ = form_run(tracker)
    assert (values["appointment_product"], values["appointment_location"]) == ("huwelijk", "stadskantoor")


def test_activation_reuses_a_bookable_product_from_the_conversation():
    tracker = make_tracker({"product": "identiteitskaart"}, text="ik wil een afspraak maken", intent="book_appointment")
    assert form_run(tracker)[0]["appointment_product"] == "identiteitskaart"
    tracker = make_tracker({"product": "bewonerskaart"}, text="ik wil een afspraak maken", intent="book_appointment")
    assert form_run(tracker)[0]["appointment_product"] is None


def test_a_question_in_the_middle_is_not_an_answer_so_rasa_can_answer_it():
    tracker = make_tracker(booking_slots(appointment_date=None, appointment_slot=None),
                           text="wat moet ik meebrengen?", intent="ask_documents", requested="appointment_date")
    assert form_run(tracker) == ({}, [])
    stop = make_tracker(booking_slots(appointment_date=None), text="laat maar", intent="stop",
                        requested="appointment_date")
    assert form_run(stop) == ({}, [])


def test_a_date_is_an_answer_even_when_nlu_hears_a_question():
    tracker = make_tracker(booking_slots(appointment_date=None, appointment_slot=None),
                           text="zo snel mogelijk", intent="ask_delivery", requested="appointment_date")
    values, _ = form_run(tracker)
    assert values["appointment_date"]["asap"] is True


def test_corrections_from_the_summary():
    slots = booking_slots()
    day = make_tracker(slots, text='/change_detail{"detail": "day"}', intent="change_detail",
                       entities=[("detail", "day")], requested="appointment_confirmed")
    values, _ = form_run(day)
    assert values["appointment_date"] is None and values["appointment_slot"] is None
    assert values["appointment_confirmed"] is None and values.get("appointment_contact", PHONE_E164) == PHONE_E164
    hour = make_tracker(slots, text="ander uur", intent="change_detail", requested="appointment_confirmed")
    values, _ = form_run(hour)
    chosen_day = Slot.from_dict(slots["appointment_slot"]).starts_at.date()
    assert values["appointment_slot"] is None and values["appointment_date"]["day"] == chosen_day.isoformat()
    number = make_tracker(slots, text="ander nummer", intent="change_detail", requested="appointment_confirmed")
    assert form_run(number)[0]["appointment_contact"] is None
    typed = make_tracker(slots, text="mijn nummer is 0499 11 22 33", intent="inform", requested="appointment_confirmed")
    assert form_run(typed)[0]["appointment_contact"] == "+32499112233"
    no = make_tracker(slots, text="nee", intent="deny", requested="appointment_confirmed")
    values, _ = form_run(no)
    assert values["appointment_confirmed"] is None and values["appointment_menu"] is True


# -- look up, move, cancel -----------------------------------------------------------------------------------
def manage(slots: Dict[str, Any], **kwargs: Any) -> Tracker:
    return make_tracker(slots, form="appointment_manage_form", **kwargs)


def booked(product: str = "reispas", location: str = "stadskantoor"):
    return appointment_book_from_env().book(first_free(product, location), "Jan Peeters", phone=PHONE)


def test_look_up_needs_the_contact_it_was_made_with_and_gives_up_after_three_tries():
    booking = booked()
    form = manage_actions.ValidateAppointmentManageForm()
    slots = {"manage_action": "lookup", "manage_reference": booking.reference}
    result, said = validate("manage_contact", PHONE, manage(slots), form)
    assert result["manage_verified"] is True and result["manage_outcome"] == "shown"
    assert result["manage_booking"]["reference"] == booking.reference and not said
    for attempt in (1, 2):
        result, said = validate("manage_contact", "0499 99 99 99", manage({**slots, "manage_attempts": attempt - 1}), form)
        assert result["manage_reference"] is None and result["manage_attempts"] == attempt and "GNT-7K3Q9" in said[0]
    result, said = validate("manage_contact", "0499 99 99 99", manage({**slots, "manage_attempts": 2}), form)
    assert result["manage_outcome"] == "not_found" and "09 210 10 10" in said[0]


def test_references_are_read_the_way_citizens_type_them():
    form = manage_actions.ValidateAppointmentManageForm()
    assert validate("manage_reference", "gnt 7k3q9", manage({}), form)[0]["manage_reference"] == "GNT-7K3Q9"
    assert validate("manage_reference", "het is GNT-7K3Q9 denk ik", manage({}), form)[0]["manage_reference"] == "GNT-7K3Q9"
    result, said = validate("manage_reference", "geen idee", manage({}), form)
    assert result["manage_reference"] is None and "GNT-7K3Q9" in said[0]


def test_cancel_after_confirmation_frees_the_slot():
    booking = booked("reispas", "oostakker")
    form = manage_actions.ValidateAppointmentManageForm()
    slots = {"manage_action": "cancel", "manage_reference": booking.reference, "manage_contact": PHONE_E164,
             "manage_verified": True}
    result, _ = validate("manage_confirmed", True, manage(slots), form)
    assert result["manage_outcome"] == "cancelled"
    book = appointment_book_from_env()
    assert book.find(booking.reference, PHONE).status is BookingStatus.cancelled
    assert booking.slot in book.free_slots("reispas", "oostakker", booking.starts_at.date(), limit=100)
    again, said = validate("manage_contact", PHONE, manage(slots), form)
    assert again["manage_outcome"] == "closed" and "al geannuleerd" in said[0]


def test_reschedule_to_an_offered_slot_keeps_the_reference():
    booking = booked()
    book = appointment_book_from_env()
    later = book.free_slots("reispas", "stadskantoor", DateRequest(from_day=booking.starts_at.date() + timedelta(days=1)), limit=1)[0]
    form = manage_actions.ValidateAppointmentManageForm()
    slots = {"manage_action": "reschedule", "manage_reference": booking.reference, "manage_contact": PHONE_E164,
             "manage_booking": slot_actions.booking_record(booking), "manage_offered": [later.to_dict()]}
    chosen, _ = validate("manage_slot", "1", manage(slots), form)
    result, _ = validate("manage_confirmed", True, manage({**slots, **chosen}), form)
    assert result["manage_outcome"] == "rescheduled"
    moved = book.find(booking.reference, PHONE)
    assert moved.starts_at == later.starts_at and moved.revision == booking.revision + 1


def test_yes_cancel_is_a_yes_whatever_the_nlu_made_of_it():
    for intent in ("appointment_cancel", "stop"):
        booking = booked()
        slots = {"manage_action": "cancel", "manage_reference": booking.reference, "manage_contact": PHONE_E164,
                 "manage_verified": True, "manage_booking": slot_actions.booking_record(booking)}
        values, _ = form_run(manage(slots, text="ja, annuleer", intent=intent, requested="manage_confirmed"),
                             manage_actions.ValidateAppointmentManageForm())
        assert values["manage_confirmed"] is True and values["manage_outcome"] == "cancelled"
        assert appointment_book_from_env().find(booking.reference, PHONE).status is BookingStatus.cancelled


def test_the_manage_form_asks_more_only_to_move_or_cancel():
    form = manage_actions.ValidateAppointmentManageForm()
    required = lambda slots: run(form.required_slots(["manage_action", "manage_reference", "manage_contact"],  # noqa: E731
                                                     CollectingDispatcher(), manage(slots, requested="manage_contact"), DOMAIN))
    assert required({"manage_action": "lookup"}) == ["manage_action", "manage_reference", "manage_contact"]
    assert required({"manage_action": "cancel"})[-1] == "manage_confirmed"
    assert required({"manage_action": "reschedule"})[-3:] == ["manage_date", "manage_slot", "manage_confirmed"]
    assert required({"manage_action": "cancel", "manage_outcome": "kept"}) == []



def test_whatsapp_gets_no_calendar_file_and_no_sentence_about_one():
    """WhatsApp cannot receive the .ics (media must be a public URL): the text carries the details."""
    slots = booking_slots()
    result, _ = validate("appointment_confirmed", True, make_tracker(slots, sender="whatsapp:+32470123456"))
    tracker = make_tracker({**slots, **result}, form=None, sender="whatsapp:+32470123456")
    dispatcher = CollectingDispatcher()
    run(actions.ActionAppointmentBooked().run(dispatcher, tracker, DOMAIN))
    assert not any(m.get("custom") for m in dispatcher.messages)
    assert not any("agenda" in (m.get("text") or "") for m in dispatcher.messages)
    assert result["appointment_reference"] in dispatcher.messages[0]["text"]
