"""The appointment book on real SQLite and PostgreSQL, with a small fixed catalogue and a frozen clock."""
from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Dict, List, Optional

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.exc import IntegrityError

from bot.core.appointments import (REFERENCE_ALPHABET, AlreadyCancelled, AppointmentBook, AppointmentPassed,
                                   BookConfig, Booking, BookingStatus, ContactMismatch, InvalidName, InvalidSlot,
                                   NotBookable, OutsideHorizon, Slot, SlotTaken, SqlAppointmentBook,
                                   UnknownReference, appointment_book_from_env, appointment_desk_units,
                                   appointments, booking_summary_nl, describe_slot, load_book_config,
                                   normalise_reference, to_ics)
from bot.core.catalogue import Catalogue, get_catalogue
from bot.core.contact import InvalidContact
from bot.core.dates import BRUSSELS, DateRequest
from tests.clock import Clock

MONDAY = datetime(2026, 11, 30, 8, 0, tzinfo=BRUSSELS)  # maandag 30 november 2026, 8 uur
TUESDAY = date(2026, 12, 1)
PHONE = "0470 12 34 56"

_HOURS = {"maandag": ["09:00-12:00", "13:00-16:00"], "dinsdag": ["09:00-12:00", "13:00-16:00"],
          "woensdag": ["09:00-12:00", "13:00-16:00"], "donderdag": ["09:00-12:00", "13:00-16:00"],
          "vrijdag": ["09:00-12:00", "13:00-16:00"], "zaterdag": ["09:00-12:00"]}


def _location(id_: str, name: str, hours: Dict[str, List[str]]) -> dict:
    return {"id": id_, "name": name, "kind": "wijkkantoor", "address": f"{name}straat 1, 9000 Gent",
            "opening_hours": hours, "walk_in": "Onthaal zonder afspraak.", "latitude": 51.05, "longitude": 3.72,
            "url": "https://stad.gent/nl/test"}


def _product(id_: str, minutes: Optional[int], locations: List[str], appointment: str = "required") -> dict:
    return {"id": id_, "name": id_.capitalize(), "synonyms": [], "summary": "Test.", "who": "Iedereen.",
            "bring": ["uw identiteitskaart", "één pasfoto; of twee, als u wilt"], "price": "Gratis",
            "delivery": "Meteen.", "appointment": appointment, "desk": "themabalie Test", "locations": locations,
            "slot_minutes": minutes, "url": "https://stad.gent/nl/test/product"}


CATALOGUE = Catalogue.parse_obj({
    "contact": {"name": "Gentinfo", "phone": "09 210 10 10", "email": "gentinfo@stad.gent", "hours": "altijd",
                "url": "https://stad.gent"},
    "locations": [_location("centrum", "Centrum", _HOURS),
                  _location("wijk", "Wijk", {"dinsdag": ["09:00-12:00"], "donderdag": ["13:00-17:00"]})],
    "products": [_product("pas", 15, ["centrum", "wijk"]), _product("verhuis", 20, ["centrum", "wijk"], "recommended"),
                 _product("huwelijk", 30, ["centrum"]), _product("attest", None, ["centrum"], "not_needed")],
    "closing_days": [{"date": "2026-12-08", "reason": "personeelsdag", "locations": ["wijk"]},
                     {"date": "2026-12-09", "reason": "verhuis van de diensten"}],
})


def _config(**overrides: object) -> BookConfig:
    return BookConfig.parse_obj({
        "services": {"loket": ["pas", "verhuis"], "trouw": ["huwelijk"]},
        "desks": {"centrum": {"loket": {"count": 2, "services": ["loket"]},
                              "trouw": {"count": 1, "services": ["trouw"]}},
                  "wijk": {"balie": {"count": 1, "services": ["loket"]}}},
        **overrides,
    })


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY)


@pytest.fixture
def book(db_engine: Engine, clock: Clock) -> SqlAppointmentBook:
    return SqlAppointmentBook(db_engine, CATALOGUE, _config(), clock=clock)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), BRUSSELS)


def slot(product: str, location: str, start: datetime, minutes: int = 15) -> Slot:
    return Slot(product, location, start, start + timedelta(minutes=minutes))


def starts(slots: List[Slot]) -> List[datetime]:
    return [s.starts_at for s in slots]


# -- configuration -------------------------------------------------------------------------------
def test_shipped_desk_file_fits_the_shipped_catalogue() -> None:
    load_book_config().check(get_catalogue())


def test_config_check_names_a_product_without_desks_at_one_of_its_locations() -> None:
    config = _config(desks={"centrum": {"loket": {"count": 2, "services": ["loket"]},
                                        "trouw": {"count": 1, "services": ["trouw"]}}})
    with pytest.raises(ValueError, match="pas at wijk"):
        config.check(CATALOGUE)


def test_config_check_refuses_slot_lengths_off_the_grid() -> None:
    with pytest.raises(ValueError, match="not a multiple of 10"):
        _config(slot_grid_minutes=10).check(CATALOGUE)


def test_factory_builds_a_book_on_the_configured_database(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GENTINFO_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    book = appointment_book_from_env()
    assert isinstance(book, AppointmentBook)
    assert book.free_slots("reispas", "stadskantoor", limit=1)


# -- slot generation -------------------------------------------------------------------------------
def test_slots_follow_opening_hours_and_slot_length_with_a_lunch_gap(book: SqlAppointmentBook) -> None:
    fifteen = book.free_slots("pas", "centrum", TUESDAY, limit=100)
    assert starts(fifteen) == [at(TUESDAY, 9) + timedelta(minutes=15 * i) for i in range(12)] + \
        [at(TUESDAY, 13) + timedelta(minutes=15 * i) for i in range(12)]
    assert all(s.ends_at - s.starts_at == timedelta(minutes=15) for s in fifteen)
    twenty = book.free_slots("verhuis", "centrum", TUESDAY, limit=100)
    assert starts(twenty)[8:10] == [at(TUESDAY, 11, 40), at(TUESDAY, 13)]  # none runs into lunch
    assert twenty[-1].ends_at == at(TUESDAY, 16)


def test_saturday_has_morning_slots_only(book: SqlAppointmentBook) -> None:
    saturday = book.free_slots("huwelijk", "centrum", date(2026, 12, 5), limit=100)
    assert starts(saturday) == [at(date(2026, 12, 5), 9) + timedelta(minutes=30 * i) for i in range(6)]


@pytest.mark.parametrize("day, location, reason", [
    (date(2026, 12, 6), "centrum", "zondag"),
    (date(2026, 12, 25), "centrum", "Kerstmis"),  # Belgian public holiday
    (date(2026, 12, 9), "centrum", "verhuis van de diensten"),  # catalogue closing day, everywhere
    (date(2026, 12, 8), "wijk", "personeelsdag"),  # catalogue closing day, one location
    (date(2026, 12, 2), "wijk", "woensdag"),  # no opening hours that weekday
])
def test_closed_days_give_no_slots_and_a_dutch_reason(book: SqlAppointmentBook, day: date, location: str,
                                                      reason: str) -> None:
    assert book.free_slots("pas", location, day, limit=10) == []
    assert reason in (book.closed_reason(location, day) or "")


def test_a_closing_day_for_one_location_leaves_the_others_open(book: SqlAppointmentBook) -> None:
    assert book.closed_reason("centrum", date(2026, 12, 8)) is None
    assert book.free_slots("pas", "centrum", date(2026, 12, 8), limit=1)


def test_no_slots_within_the_lead_time_or_in_the_past(book: SqlAppointmentBook, clock: Clock) -> None:
    clock.now = at(MONDAY.date(), 10, 50)
    assert book.free_slots("pas", "centrum", limit=1)[0].starts_at == at(MONDAY.date(), 13)  # 11.45 < 11.50
    with pytest.raises(OutsideHorizon):
        book.free_slots("pas", "centrum", MONDAY.date() - timedelta(days=1))
    with pytest.raises(OutsideHorizon):
        book.book(slot("pas", "centrum", at(MONDAY.date(), 11, 45)), "Jan Peeters", phone=PHONE)


def test_no_slots_beyond_the_horizon(db_engine: Engine, clock: Clock) -> None:
    book = SqlAppointmentBook(db_engine, CATALOGUE, _config(horizon_days=2), clock=clock)
    everything = book.free_slots("pas", None, limit=10_000)
    assert max(s.starts_at.date() for s in everything) == date(2026, 12, 2)
    with pytest.raises(OutsideHorizon) as error:
        book.free_slots("pas", "centrum", date(2026, 12, 3))
    assert "woensdag 2 december" in error.value.message_nl
    with pytest.raises(OutsideHorizon):
        book.book(slot("pas", "centrum", at(date(2026, 12, 3), 9)), "Jan Peeters", phone=PHONE)


def test_default_horizon_is_eight_weeks(book: SqlAppointmentBook) -> None:
    assert book.free_slots("pas", "centrum", MONDAY.date() + timedelta(weeks=8), limit=1)
    with pytest.raises(OutsideHorizon):
        book.free_slots("pas", "centrum", MONDAY.date() + timedelta(weeks=8, days=1))


def test_nearest_first_across_locations_and_days(book: SqlAppointmentBook, clock: Clock) -> None:
    clock.now = at(MONDAY.date(), 15, 0)  # today only 16.00 would be left: nothing
    found = book.free_slots("pas", None, limit=6)
    assert starts(found) == sorted(starts(found))
    assert [(s.location_id, s.starts_at) for s in found[:3]] == [
        ("centrum", at(TUESDAY, 9)), ("wijk", at(TUESDAY, 9)), ("centrum", at(TUESDAY, 9, 15))]


def test_time_and_from_day_wishes_filter_the_slots(book: SqlAppointmentBook) -> None:
    afternoon = book.free_slots("pas", "centrum", DateRequest(after=time(14, 30)), limit=3)
    assert starts(afternoon) == [at(MONDAY.date(), 14, 30), at(MONDAY.date(), 14, 45), at(MONDAY.date(), 15)]
    morning = book.free_slots("pas", "centrum", DateRequest(day=TUESDAY, before=time(9, 30)), limit=10)
    assert starts(morning) == [at(TUESDAY, 9), at(TUESDAY, 9, 15)]
    later = book.free_slots("pas", "wijk", DateRequest(from_day=date(2026, 12, 2)), limit=1)
    assert starts(later) == [at(date(2026, 12, 3), 13)]  # wijk is closed on Wednesday


def test_only_bookable_products_at_their_own_locations(book: SqlAppointmentBook) -> None:
    with pytest.raises(NotBookable):
        book.free_slots("attest", "centrum")
    with pytest.raises(NotBookable):
        book.free_slots("huwelijk", "wijk")
    with pytest.raises(NotBookable):
        book.free_slots("bestaat_niet", None)
    with pytest.raises(NotBookable):
        book.book(slot("huwelijk", "wijk", at(TUESDAY, 9), 30), "Jan Peeters", phone=PHONE)


def test_a_moment_that_is_not_a_slot_cannot_be_booked(book: SqlAppointmentBook) -> None:
    for wrong in (slot("pas", "centrum", at(TUESDAY, 9, 5)), slot("pas", "centrum", at(TUESDAY, 12)),
                  slot("pas", "centrum", at(TUESDAY, 9).replace(tzinfo=None))):
        with pytest.raises(InvalidSlot):
            book.book(wrong, "Jan Peeters", phone=PHONE)


# -- booking and look-up --------------------------------------------------------------------------------
def test_book_then_find_with_the_contact_in_another_notation(book: SqlAppointmentBook) -> None:
    booked = book.book(slot("pas", "centrum", at(TUESDAY, 9)), "  Jan   Peeters ", phone=PHONE,
                       email="Jan@Example.be", channel="telegram", conversation_id="conv-1")
    assert re.fullmatch(rf"GNT-[{REFERENCE_ALPHABET}]{{5}}", booked.reference)
    assert (booked.name, booked.phone, booked.email, booked.status) == \
        ("Jan Peeters", "+32470123456", "jan@example.be", BookingStatus.booked)
    assert booked.starts_at == at(TUESDAY, 9) and booked.ends_at == at(TUESDAY, 9, 15)
    assert booked.created_at == MONDAY
    for contact in ("+32470123456", "0032 470 12 34 56", "jan@example.be"):
        assert book.find(booked.reference.lower().replace("-", " "), contact) == booked


def test_wrong_contact_is_refused_for_every_operation(book: SqlAppointmentBook) -> None:
    booked = book.book(slot("pas", "centrum", at(TUESDAY, 9)), "Jan Peeters", phone=PHONE)
    other = slot("pas", "centrum", at(TUESDAY, 10))
    for contact in ("0470 12 34 57", "jan@example.be", "geen idee"):
        with pytest.raises(ContactMismatch):
            book.find(booked.reference, contact)
        with pytest.raises(ContactMismatch):
            book.cancel(booked.reference, contact)
        with pytest.raises(ContactMismatch):
            book.reschedule(booked.reference, contact, other)
    assert book.find(booked.reference, PHONE) == booked


def test_unknown_and_malformed_references_are_refused(book: SqlAppointmentBook) -> None:
    for reference in ("GNT-22222", "GNT-OOOOO", "hallo", ""):
        with pytest.raises(UnknownReference):
            book.find(reference, PHONE)
        with pytest.raises(UnknownReference):
            book.cancel(reference, PHONE)
    assert UnknownReference.message_nl == ContactMismatch.message_nl  # never reveal which one was wrong


def test_reference_normalisation() -> None:
    assert normalise_reference("gnt 7k3q9") == normalise_reference("7K3Q9") == "GNT-7K3Q9"
    assert normalise_reference("GNT-7K3Q0") is None and normalise_reference("GNT-7K3Q") is None


def test_booking_needs_a_name_and_a_valid_contact(book: SqlAppointmentBook) -> None:
    free = slot("pas", "centrum", at(TUESDAY, 9))
    with pytest.raises(InvalidName):
        book.book(free, "  ", phone=PHONE)
    with pytest.raises(InvalidContact):
        book.book(free, "Jan Peeters")
    with pytest.raises(InvalidContact):
        book.book(free, "Jan Peeters", phone="12345")
    with pytest.raises(InvalidContact):
        book.book(free, "Jan Peeters", email="jan@gent")
    assert book.free_slots("pas", "centrum", TUESDAY, limit=1)[0] == free


def test_capacity_is_the_number_of_desks(book: SqlAppointmentBook) -> None:
    nine = slot("pas", "centrum", at(TUESDAY, 9))
    book.book(nine, "Jan Peeters", phone=PHONE)
    assert book.free_slots("pas", "centrum", TUESDAY, limit=1)[0] == nine  # one desk left
    book.book(nine, "An Claes", email="an@example.be")
    assert book.free_slots("pas", "centrum", TUESDAY, limit=1)[0].starts_at == at(TUESDAY, 9, 15)
    with pytest.raises(SlotTaken):
        book.book(nine, "Piet Janssens", phone="0470 99 99 99")


def test_appointments_of_different_length_never_overlap_at_one_desk(book: SqlAppointmentBook) -> None:
    book.book(slot("verhuis", "wijk", at(TUESDAY, 9), 20), "Jan Peeters", phone=PHONE)  # 9.00-9.20
    assert starts(book.free_slots("pas", "wijk", TUESDAY, limit=1)) == [at(TUESDAY, 9, 30)]
    with pytest.raises(SlotTaken):
        book.book(slot("pas", "wijk", at(TUESDAY, 9, 15)), "An Claes", phone="0470 99 99 99")


def test_cancelled_slot_is_free_again(book: SqlAppointmentBook) -> None:
    nine = slot("pas", "wijk", at(TUESDAY, 9))
    booked = book.book(nine, "Jan Peeters", phone=PHONE)
    cancelled = book.cancel(booked.reference, "+32470123456")
    assert cancelled.status is BookingStatus.cancelled and cancelled.revision == 1
    assert book.find(booked.reference, PHONE).status is BookingStatus.cancelled
    assert book.free_slots("pas", "wijk", TUESDAY, limit=1) == [nine]
    assert book.book(nine, "An Claes", phone="0470 99 99 99").starts_at == nine.starts_at
    with pytest.raises(AlreadyCancelled):
        book.cancel(booked.reference, PHONE)
    with pytest.raises(AlreadyCancelled):
        book.reschedule(booked.reference, PHONE, slot("pas", "wijk", at(TUESDAY, 10)))


def test_reschedule_moves_the_booking_and_frees_the_old_slot(book: SqlAppointmentBook) -> None:
    nine, ten = slot("pas", "wijk", at(TUESDAY, 9)), slot("pas", "centrum", at(TUESDAY, 10))
    booked = book.book(nine, "Jan Peeters", phone=PHONE)
    moved = book.reschedule(booked.reference, PHONE, ten)
    assert (moved.reference, moved.location_id, moved.starts_at, moved.revision) == \
        (booked.reference, "centrum", ten.starts_at, 1)
    assert book.find(booked.reference, PHONE) == moved
    assert book.free_slots("pas", "wijk", TUESDAY, limit=1) == [nine]
    assert book.reschedule(booked.reference, PHONE, ten) == moved  # same slot: nothing to do


def test_reschedule_to_a_taken_slot_leaves_the_original_booking_intact(book: SqlAppointmentBook) -> None:
    nine, ten = slot("pas", "wijk", at(TUESDAY, 9)), slot("pas", "wijk", at(TUESDAY, 10))
    mine = book.book(nine, "Jan Peeters", phone=PHONE)
    book.book(ten, "An Claes", phone="0470 99 99 99")
    with pytest.raises(SlotTaken):
        book.reschedule(mine.reference, PHONE, ten)
    assert book.find(mine.reference, PHONE) == mine
    with pytest.raises(SlotTaken):  # 9.00 is still held by the original booking
        book.book(nine, "Piet Janssens", phone="0470 88 88 88")


def test_reschedule_keeps_the_product(book: SqlAppointmentBook) -> None:
    booked = book.book(slot("pas", "centrum", at(TUESDAY, 9)), "Jan Peeters", phone=PHONE)
    with pytest.raises(InvalidSlot):
        book.reschedule(booked.reference, PHONE, slot("huwelijk", "centrum", at(TUESDAY, 10), 30))


def test_started_appointments_can_no_longer_be_changed(book: SqlAppointmentBook, clock: Clock) -> None:
    booked = book.book(slot("pas", "centrum", at(TUESDAY, 9)), "Jan Peeters", phone=PHONE)
    clock.now = at(TUESDAY, 9)
    with pytest.raises(AppointmentPassed):
        book.cancel(booked.reference, PHONE)
    with pytest.raises(AppointmentPassed):
        book.reschedule(booked.reference, PHONE, slot("pas", "centrum", at(TUESDAY, 13)))
    assert book.find(booked.reference, PHONE).status is BookingStatus.booked


def test_slot_survives_a_round_trip_through_a_rasa_slot(book: SqlAppointmentBook) -> None:
    offered = book.free_slots("pas", "centrum", TUESDAY, limit=1)[0]
    assert Slot.from_dict(offered.to_dict()) == offered
    assert book.book(Slot.from_dict(offered.to_dict()), "Jan Peeters", phone=PHONE).starts_at == offered.starts_at


def test_dutch_texts_for_slot_and_confirmation(book: SqlAppointmentBook) -> None:
    offered = book.free_slots("pas", "wijk", TUESDAY, limit=1)[0]
    assert describe_slot(offered, CATALOGUE, with_location=True) == "dinsdag 1 december om 9 uur in Wijk"
    summary = booking_summary_nl(book.book(offered, "Jan Peeters", phone=PHONE), CATALOGUE)
    assert "dinsdag 1 december om 9 uur" in summary and "Wijkstraat 1, 9000 Gent" in summary
    assert "Neem mee: uw identiteitskaart" in summary


# -- calendar file --------------------------------------------------------------------------------------
def _unfold(ics: str) -> Dict[str, str]:
    assert ics.endswith("\r\n") and "\n" not in ics.replace("\r\n", "")
    physical = ics.split("\r\n")[:-1]
    assert all(len(line.encode("utf-8")) <= 75 for line in physical)
    logical: List[str] = []
    for line in physical:
        if line.startswith(" "):
            logical[-1] += line[1:]
        else:
            logical.append(line)
    assert [l for l in logical if l.startswith(("BEGIN:", "END:"))] == \
        ["BEGIN:VCALENDAR", "BEGIN:VEVENT", "END:VEVENT", "END:VCALENDAR"]
    return dict(line.split(":", 1) for line in logical if not line.startswith(("BEGIN:", "END:")))


def test_ics_is_a_well_formed_rfc5545_event(book: SqlAppointmentBook) -> None:
    booked = book.book(slot("pas", "wijk", at(TUESDAY, 9)), "Jan Peeters", phone=PHONE)
    ics = to_ics(booked, CATALOGUE, now=MONDAY)
    props = _unfold(ics)
    assert props["VERSION"] == "2.0" and props["PRODID"]
    assert props["UID"] == f"{booked.reference}@gentinfo.stad.gent"
    assert props["DTSTAMP"] == "20261130T070000Z"
    assert (props["DTSTART"], props["DTEND"]) == ("20261201T080000Z", "20261201T081500Z")
    assert props["SUMMARY"] == "Afspraak Stad Gent: Pas"
    assert props["LOCATION"] == "Wijk\\, Wijkstraat 1\\, 9000 Gent"
    assert "\\n- één pasfoto\\; of twee\\, als u wilt\\n" in props["DESCRIPTION"]
    assert booked.reference in props["DESCRIPTION"]
    assert props["STATUS"] == "CONFIRMED" and props["SEQUENCE"] == "0"
    assert len(ics.split("\r\n")) > len(props) + 4  # the description was folded


def test_ics_of_a_cancelled_booking_cancels_the_event(book: SqlAppointmentBook) -> None:
    booked = book.book(slot("pas", "wijk", at(TUESDAY, 9)), "Jan Peeters", phone=PHONE)
    props = _unfold(to_ics(book.cancel(booked.reference, PHONE), CATALOGUE, now=MONDAY))
    assert (props["METHOD"], props["STATUS"], props["SEQUENCE"]) == ("CANCEL", "CANCELLED", "1")


# -- concurrency --------------------------------------------------------------------------------------------
def test_concurrent_bookings_never_double_book(db_engine: Engine, book: SqlAppointmentBook) -> None:
    """200 threads at once at 4 slots of 2 desks: exactly 8 succeed, the rest hear SlotTaken.

    Many threads see a desk free before others commit, so the race really reaches the database:
    only its constraint stands between them and a double booking (counted via ``handle_error``).
    """
    violations: List[bool] = []

    def count_violation(context: ExceptionContext) -> None:
        violations.append(isinstance(context.sqlalchemy_exception, IntegrityError))

    event.listen(db_engine, "handle_error", count_violation)
    targets = [slot("pas", "centrum", at(TUESDAY, 9) + timedelta(minutes=15 * i)) for i in range(4)]
    capacity, attempts = 2 * len(targets), 200
    start = threading.Barrier(attempts)
    outcomes: List[object] = [None] * attempts

    def attempt(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = book.book(targets[i % len(targets)], f"Burger {i}", phone=f"0470 00 {i // 100:02d} {i % 100:02d}")
        except Exception as error:  # noqa: BLE001 - every outcome is inspected below
            outcomes[i] = error

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    event.remove(db_engine, "handle_error", count_violation)
    assert any(violations), "no attempt reached the unique constraint: the test proved nothing"
    kinds = Counter(type(o).__name__ for o in outcomes)
    assert kinds == {"Booking": capacity, "SlotTaken": attempts - capacity}, kinds
    booked = [o for o in outcomes if isinstance(o, Booking)]
    assert Counter(b.starts_at for b in booked) == {t.starts_at: 2 for t in targets}
    with db_engine.connect() as connection:
        per_desk = connection.execute(
            select(appointments.c.desk_no, appointments.c.starts_at, func.count())
            .group_by(appointments.c.desk_no, appointments.c.starts_at)).all()
        units = connection.execute(select(func.count()).select_from(appointment_desk_units)).scalar_one()
    assert len(per_desk) == capacity and all(count == 1 for *_, count in per_desk)
    assert units == capacity * 3  # 15 minutes = 3 units of 5


def test_a_repeated_confirmation_in_one_conversation_returns_the_same_booking(
    db_engine: Engine, book: SqlAppointmentBook
) -> None:
    """'ja, bevestig' handled twice (retry after a crash, two deliveries at once) books one desk."""
    target = slot("pas", "centrum", at(TUESDAY, 10))
    attempts = 20
    start = threading.Barrier(attempts)
    outcomes: List[object] = [None] * attempts

    def confirm(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = book.book(target, "Jan Peeters", phone=PHONE, conversation_id="web:one")
        except Exception as error:  # noqa: BLE001 - every outcome is inspected below
            outcomes[i] = error

    threads = [threading.Thread(target=confirm, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert {getattr(o, "reference", o) for o in outcomes} == {outcomes[0].reference}
    again = book.book(target, "Jan Peeters", phone=PHONE, conversation_id="web:one")
    assert again.reference == outcomes[0].reference
    # another name in the same conversation (a second child) and another conversation: own desks
    sibling = book.book(target, "Lien Peeters", phone=PHONE, conversation_id="web:one")
    assert sibling.reference != again.reference
    with pytest.raises(SlotTaken):
        book.book(target, "Jan Peeters", phone=PHONE, conversation_id="web:other")
    # once cancelled, the same conversation may book that slot again
    book.cancel(again.reference, PHONE)
    assert book.book(target, "Jan Peeters", phone=PHONE, conversation_id="web:one").reference != again.reference
