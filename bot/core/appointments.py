"""The appointment book: free slots, booking, look-up, moving and cancelling desk appointments.

``AppointmentBook`` is the interface the Rasa actions use, so the city's real scheduling system can
replace ``SqlAppointmentBook`` later. Slots come from the catalogue (opening hours, slot length,
where a product is offered) and ``appointment_book.yml`` (desks per location).

No double bookings, by construction: a booking claims every ``slot_grid_minutes`` unit of its desk
time as a row in ``appointment_desk_units`` whose primary key is (location, desk group, desk,
unit start). Two bookings that overlap on one desk, even of different lengths, collide on that key
and the database refuses the second; we never check-then-insert. Cancelling deletes the units, so
the time is free again, while the appointment row stays as history.

Exception messages are for logs (no personal data). Citizens see ``error.message_nl``.
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Protocol, Set, Tuple, Union, runtime_checkable

import holidays
import yaml
from pydantic import BaseModel, conint, root_validator
from sqlalchemy import (CheckConstraint, Column, DateTime, ForeignKey, Index, Integer, String, Table, delete,
                        insert, select, text, update)
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from bot.core import db, reminders
from bot.core.catalogue import Catalogue, Location, Product, get_catalogue
from bot.core.contact import ContactKind, InvalidContact, normalise_contact, normalise_email, normalise_phone
from bot.core.dates import BRUSSELS, DateRequest, format_day, format_moment, now_in_brussels

BOOK_CONFIG_PATH = Path(__file__).resolve().parents[1] / "data" / "content" / "appointment_book.yml"

#: No 0/O/1/I: a reference is read aloud and typed over from a screen or a letter.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
REFERENCE_PREFIX = "GNT"
REFERENCE_LENGTH = 5
_REFERENCE_ATTEMPTS = 8

Clock = Callable[[], datetime]


# -- errors ---------------------------------------------------------------------------------------
class AppointmentError(Exception):
    """Base class; ``str(error)`` is for logs, ``message_nl`` for the citizen."""

    message_nl = "Er ging iets mis met uw afspraak. Probeer het later opnieuw of bel Gentinfo op 09 210 10 10."


class NotBookable(AppointmentError):
    message_nl = "Voor dit product kunt u op die plaats geen afspraak maken."


class InvalidSlot(AppointmentError):
    message_nl = "Dat moment kunt u niet boeken. Kies een van de momenten die ik voorstel."


class OutsideHorizon(AppointmentError):
    """The day or slot lies before the lead time or after the last bookable day."""

    def __init__(self, message: str, first_moment: datetime, last_day: date) -> None:
        super().__init__(message)
        self.first_moment = first_moment
        self.last_day = last_day

    @property
    def message_nl(self) -> str:  # type: ignore[override]
        return (f"U kunt een afspraak maken vanaf {format_moment(self.first_moment)} "
                f"tot en met {format_day(self.last_day)}. Kies een moment in die periode.")


class SlotTaken(AppointmentError):
    message_nl = "Dat moment is intussen al geboekt door iemand anders. Kies een ander moment."


class UnknownReference(AppointmentError):
    #: Same text as ContactMismatch: we never tell whether a reference exists.
    message_nl = ("Ik vind geen afspraak met dat afspraaknummer en die contactgegevens. Kijk het "
                  "afspraaknummer (bijvoorbeeld GNT-7K3Q9) en uw telefoonnummer of e-mailadres na.")


class ContactMismatch(AppointmentError):
    message_nl = UnknownReference.message_nl


class AlreadyCancelled(AppointmentError):
    message_nl = "Deze afspraak is al geannuleerd."


class AppointmentPassed(AppointmentError):
    message_nl = "Deze afspraak is al begonnen of voorbij. U kunt ze niet meer wijzigen of annuleren."


class InvalidName(AppointmentError):
    message_nl = "Geef uw voornaam en uw achternaam, bijvoorbeeld Jan Peeters."


# -- configuration ---------------------------------------------------------------------------------
class DeskGroup(BaseModel):
    count: conint(ge=1, le=100)  # type: ignore[valid-type]
    services: List[str]


class BookConfig(BaseModel):
    """``appointment_book.yml``; ``check(catalogue)`` verifies it fits the catalogue."""

    slot_grid_minutes: conint(ge=1, le=60) = 5  # type: ignore[valid-type]
    lead_time_minutes: conint(ge=0) = 60  # type: ignore[valid-type]
    horizon_days: conint(ge=1, le=366) = 56  # type: ignore[valid-type]
    services: Dict[str, List[str]]
    desks: Dict[str, Dict[str, DeskGroup]]

    @root_validator(skip_on_failure=True)
    def _services_resolve(cls, values: dict) -> dict:
        seen: Dict[str, str] = {}
        for service, products in values["services"].items():
            for product in products:
                if seen.setdefault(product, service) != service:
                    raise ValueError(f"product {product} is in services {seen[product]} and {service}")
        for location, groups in values["desks"].items():
            for name, group in groups.items():
                unknown = set(group.services) - set(values["services"])
                if unknown:
                    raise ValueError(f"desks {location}/{name}: unknown services {sorted(unknown)}")
        return values

    def service_of(self, product_id: str) -> Optional[str]:
        return next((s for s, products in self.services.items() if product_id in products), None)

    def desk_group(self, product_id: str, location_id: str) -> Tuple[str, int]:
        """(group name, number of desks) that serves a product at a location; KeyError if none."""
        service = self.service_of(product_id)
        groups = [(name, g.count) for name, g in self.desks.get(location_id, {}).items() if service in g.services]
        if len(groups) != 1:
            raise KeyError(f"{product_id} at {location_id}: {len(groups)} desk groups")
        return groups[0]

    def check(self, catalogue: Catalogue) -> None:
        """Raise ValueError listing every mismatch with the catalogue (run at start-up and in tests)."""
        problems: List[str] = []
        grid = self.slot_grid_minutes
        bookable = {p.id: p for p in catalogue.bookable_products()}
        for service, products in self.services.items():
            problems += [f"service {service}: {p} is not a bookable product" for p in products if p not in bookable]
        for product in bookable.values():
            if self.service_of(product.id) is None:
                problems.append(f"product {product.id} is in no service")
                continue
            if product.slot_minutes % grid:  # type: ignore[operator]
                problems.append(f"product {product.id}: slot_minutes is not a multiple of {grid}")
            for location_id in product.locations:
                try:
                    self.desk_group(product.id, location_id)
                except KeyError as error:
                    problems.append(f"needs exactly one desk group: {error.args[0]}")
        for location_id, groups in self.desks.items():
            location = catalogue.location(location_id)
            if location is None:
                problems.append(f"desks: unknown location {location_id}")
                continue
            for name, group in groups.items():
                served = [p for s in group.services for p in self.services[s] if p in bookable
                          and location_id in bookable[p].locations]
                if not served:
                    problems.append(f"desks {location_id}/{name} serve no product offered there")
            for weekday in range(7):
                for start, end in location.hours_on(weekday):
                    if (start.hour * 60 + start.minute) % grid or (end.hour * 60 + end.minute) % grid:
                        problems.append(f"{location_id}: opening hours not on the {grid}-minute grid")
        if problems:
            raise ValueError("appointment book does not fit the catalogue:\n- " + "\n- ".join(sorted(set(problems))))


def load_book_config(path: Path = BOOK_CONFIG_PATH) -> BookConfig:
    with path.open(encoding="utf-8") as handle:
        return BookConfig.parse_obj(yaml.safe_load(handle))


# -- values ---------------------------------------------------------------------------------------
class BookingStatus(str, Enum):
    booked = "booked"
    cancelled = "cancelled"


@dataclass(frozen=True)
class Slot:
    """A bookable moment; times are aware, Europe/Brussels."""

    product_id: str
    location_id: str
    starts_at: datetime
    ends_at: datetime

    def to_dict(self) -> Dict[str, str]:
        """JSON-friendly form, to keep offered slots in a Rasa slot between turns."""
        return {"product_id": self.product_id, "location_id": self.location_id,
                "starts_at": self.starts_at.isoformat(), "ends_at": self.ends_at.isoformat()}

    @classmethod
    def from_dict(cls, data: Dict[str, str]) -> "Slot":
        return cls(data["product_id"], data["location_id"],
                   datetime.fromisoformat(data["starts_at"]), datetime.fromisoformat(data["ends_at"]))


@dataclass(frozen=True)
class Booking:
    """A stored appointment; ``phone``/``email`` are normalised, times aware Europe/Brussels."""

    reference: str
    product_id: str
    location_id: str
    starts_at: datetime
    ends_at: datetime
    name: str
    phone: Optional[str]
    email: Optional[str]
    channel: Optional[str]
    conversation_id: Optional[str]
    status: BookingStatus
    revision: int  # +1 on every change; the ICS SEQUENCE, so calendars replace the old event
    created_at: datetime
    updated_at: datetime

    @property
    def slot(self) -> Slot:
        return Slot(self.product_id, self.location_id, self.starts_at, self.ends_at)


@runtime_checkable
class AppointmentBook(Protocol):
    """What the assistant needs from a scheduling system."""

    def free_slots(self, product_id: str, location_id: Optional[str] = None,
                   request: Union[DateRequest, date, None] = None, limit: int = 5) -> List[Slot]: ...

    def book(self, slot: Slot, name: str, *, phone: Optional[str] = None, email: Optional[str] = None,
             channel: Optional[str] = None, conversation_id: Optional[str] = None) -> Booking: ...

    def find(self, reference: str, contact: str) -> Booking: ...

    def reschedule(self, reference: str, contact: str, new_slot: Slot) -> Booking: ...

    def cancel(self, reference: str, contact: str) -> Booking: ...

    def closed_reason(self, location_id: str, day: date) -> Optional[str]: ...


# -- storage --------------------------------------------------------------------------------------
appointments = Table(
    "appointments",
    db.metadata,
    Column("id", Integer, primary_key=True),
    Column("reference", String(12), nullable=False, unique=True),
    Column("product_id", String(64), nullable=False),
    Column("location_id", String(64), nullable=False),
    Column("desk_group", String(64), nullable=False),
    Column("desk_no", Integer, nullable=False),
    Column("starts_at", DateTime, nullable=False),  # UTC, naive: the same on SQLite and PostgreSQL
    Column("ends_at", DateTime, nullable=False),
    Column("name", String(120), nullable=False),
    Column("phone", String(20)),
    Column("email", String(254)),
    Column("channel", String(40)),
    Column("conversation_id", String(255)),
    Column("status", String(12), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    CheckConstraint("phone IS NOT NULL OR email IS NOT NULL", name="ck_appointments_contact"),
)

_ACTIVE_IN_A_CONVERSATION = text("status = 'booked' AND conversation_id IS NOT NULL")
#: A conversation books a slot for a name once: a confirmation repeated after a crash (or delivered
#: twice) returns the booking it made instead of taking a second desk.
Index(
    "uq_appointments_conversation_slot_name",
    appointments.c.conversation_id, appointments.c.product_id, appointments.c.location_id,
    appointments.c.starts_at, appointments.c.name,
    unique=True,
    sqlite_where=_ACTIVE_IN_A_CONVERSATION,
    postgresql_where=_ACTIVE_IN_A_CONVERSATION,
)

#: One row per grid unit of desk time an active booking holds; the primary key forbids overlap.
appointment_desk_units = Table(
    "appointment_desk_units",
    db.metadata,
    Column("location_id", String(64), primary_key=True),
    Column("desk_group", String(64), primary_key=True),
    Column("desk_no", Integer, primary_key=True),
    Column("unit_start", DateTime, primary_key=True),  # UTC, naive
    Column("appointment_id", Integer, ForeignKey("appointments.id", ondelete="CASCADE"), nullable=False, index=True),
)


def new_reference() -> str:
    return f"{REFERENCE_PREFIX}-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))


def normalise_reference(text: str) -> Optional[str]:
    """'gnt 7k3q9', 'GNT-7K3Q9' or '7K3Q9' -> 'GNT-7K3Q9'; None if it cannot be a reference."""
    code = "".join(ch for ch in text.upper() if ch.isalnum())
    if len(code) == len(REFERENCE_PREFIX) + REFERENCE_LENGTH and code.startswith(REFERENCE_PREFIX):
        code = code[len(REFERENCE_PREFIX):]
    if len(code) != REFERENCE_LENGTH or any(ch not in REFERENCE_ALPHABET for ch in code):
        return None
    return f"{REFERENCE_PREFIX}-{code}"


class SqlAppointmentBook:
    """``AppointmentBook`` on the project database (SQLite or PostgreSQL).

    ``clock`` returns the current aware time; tests pass a fixed one.
    """

    def __init__(self, engine: Engine, catalogue: Catalogue, config: BookConfig, *,
                 clock: Clock = now_in_brussels) -> None:
        config.check(catalogue)
        self._engine = engine
        self._catalogue = catalogue
        self._config = config
        self._clock = clock
        self._holidays = holidays.country_holidays("BE", language="nl")
        self._grid = timedelta(minutes=config.slot_grid_minutes)

    @property
    def engine(self) -> Engine:
        """The database, for the reminder opt-in (``bot.core.reminders.opt_in``)."""
        return self._engine

    # -- calendar ----------------------------------------------------------------------------------
    def window(self) -> Tuple[datetime, date]:
        """(earliest bookable start, last bookable day) as of now."""
        now = self._now()
        return now + timedelta(minutes=self._config.lead_time_minutes), \
            now.date() + timedelta(days=self._config.horizon_days)

    def closed_reason(self, location_id: str, day: date) -> Optional[str]:
        """Why a location takes no appointments on a day, in Dutch for the citizen; None if open."""
        location = self._location(location_id)
        for closing in self._catalogue.closing_days:
            if closing.date == day and (not closing.locations or location_id in closing.locations):
                return f"Op {format_day(day)} zijn de loketten gesloten: {closing.reason}."
        holiday = self._holidays.get(day)
        if holiday:
            return f"{format_day(day).capitalize()} is een feestdag ({holiday}). Dan zijn de loketten gesloten."
        if not location.hours_on(day.weekday()):
            return f"{location.name} is op {format_day(day).split()[0]} gesloten."
        return None

    def _starts(self, product: Product, location: Location, day: date) -> List[datetime]:
        """Every start the opening hours allow on a day; a slot never runs past closing (or into lunch)."""
        if self.closed_reason(location.id, day):
            return []
        length = timedelta(minutes=product.slot_minutes or 0)
        starts = []
        for opens, closes in location.hours_on(day.weekday()):
            moment = datetime.combine(day, opens, BRUSSELS)
            end = datetime.combine(day, closes, BRUSSELS)
            while moment + length <= end:
                starts.append(moment)
                moment += length
        return starts

    # -- free slots --------------------------------------------------------------------------------
    def free_slots(self, product_id: str, location_id: Optional[str] = None,
                   request: Union[DateRequest, date, None] = None, limit: int = 5) -> List[Slot]:
        """Free slots, nearest first; ``location_id=None`` searches every location of the product.

        ``request.day`` restricts to that day (OutsideHorizon if it cannot be booked at all);
        otherwise the search starts at ``request.from_day`` or today and runs to the horizon.
        """
        product = self._product(product_id)
        locations = [self._offered_at(product, location_id)] if location_id else \
            [self._location(loc) for loc in product.locations]
        if not isinstance(request, DateRequest):
            request = DateRequest(day=request)
        earliest, last_day = self.window()
        if request.day is not None:
            if not earliest.date() <= request.day <= last_day:
                raise OutsideHorizon(f"day {request.day} outside window", earliest, last_day)
            days: Iterable[date] = [request.day]
        else:
            first = max(earliest.date(), request.from_day or earliest.date())
            if first > last_day:
                raise OutsideHorizon(f"from_day {first} after horizon", earliest, last_day)
            days = (first + timedelta(days=n) for n in range((last_day - first).days + 1))
        found: List[Slot] = []
        for day in days:
            for location in locations:
                found += self._free_on(product, location, day, request, earliest)
            if len(found) >= limit:
                break
        found.sort(key=lambda s: s.starts_at)  # stable: ties keep the catalogue's location order
        return found[:limit]

    def _free_on(self, product: Product, location: Location, day: date, request: DateRequest,
                 earliest: datetime) -> List[Slot]:
        starts = [s for s in self._starts(product, location, day) if s >= earliest and request.accepts(s.time())]
        if not starts:
            return []
        group, count = self._config.desk_group(product.id, location.id)
        length = self._length(product)
        taken = self._taken_units(location.id, group, starts[0], starts[-1] + length)
        return [Slot(product.id, location.id, s, s + length) for s in starts
                if self._free_desks(s, s + length, count, taken)]

    def _taken_units(self, location_id: str, group: str, start: datetime, end: datetime) -> Set[Tuple[int, datetime]]:
        units = appointment_desk_units.c
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(units.desk_no, units.unit_start).where(
                    units.location_id == location_id, units.desk_group == group,
                    units.unit_start >= _to_db(start), units.unit_start < _to_db(end)))
            return {(row.desk_no, row.unit_start) for row in rows}

    def _free_desks(self, start: datetime, end: datetime, count: int, taken: Set[Tuple[int, datetime]]) -> List[int]:
        units = [_to_db(u) for u in self._units(start, end)]
        return [desk for desk in range(1, count + 1) if not any((desk, u) in taken for u in units)]

    def _units(self, start: datetime, end: datetime) -> List[datetime]:
        moments, moment = [], start
        while moment < end:
            moments.append(moment)
            moment += self._grid
        return moments

    # -- booking -----------------------------------------------------------------------------------
    def book(self, slot: Slot, name: str, *, phone: Optional[str] = None, email: Optional[str] = None,
             channel: Optional[str] = None, conversation_id: Optional[str] = None) -> Booking:
        """Book a free desk for the slot; SlotTaken when every desk is gone, InvalidContact/InvalidName
        for bad details. At least one of phone and e-mail is required. Idempotent per conversation:
        the same conversation booking the same slot for the same name gets its existing booking."""
        name = _clean_name(name)
        phone = normalise_phone(phone) if phone and phone.strip() else None
        email = normalise_email(email) if email and email.strip() else None
        if not phone and not email:
            raise InvalidContact(ContactKind.phone, "no phone or e-mail given")
        slot, group, desks = self._checked(slot)
        now = _to_db(self._now())
        values = dict(product_id=slot.product_id, location_id=slot.location_id, desk_group=group,
                      starts_at=_to_db(slot.starts_at), ends_at=_to_db(slot.ends_at), name=name, phone=phone,
                      email=email, channel=channel, conversation_id=conversation_id,
                      status=BookingStatus.booked.value, revision=0, created_at=now, updated_at=now)
        existing = self._booked_in_conversation(values)
        if existing:
            return existing
        for desk in desks:
            for _ in range(_REFERENCE_ATTEMPTS):
                reference = new_reference()
                try:
                    with self._engine.begin() as connection:
                        result = connection.execute(insert(appointments).values(reference=reference, desk_no=desk, **values))
                        self._claim(connection, result.inserted_primary_key[0], slot, group, desk)
                        return self._read(connection, reference)
                except IntegrityError:
                    existing = self._booked_in_conversation(values)
                    if existing:
                        return existing  # the same confirmation, handled at the same moment
                    if not self._reference_exists(reference):
                        break  # the desk was taken meanwhile: try the next one
        raise SlotTaken(f"{slot.product_id} at {slot.location_id} {slot.starts_at.isoformat()}: no desk left")

    def _booked_in_conversation(self, values: Dict[str, Any]) -> Optional[Booking]:
        if not values["conversation_id"]:
            return None
        keys = ("conversation_id", "product_id", "location_id", "starts_at", "name")
        with self._engine.connect() as connection:
            row = connection.execute(
                select(appointments).where(
                    appointments.c.status == BookingStatus.booked.value,
                    *(appointments.c[key] == values[key] for key in keys),
                )
            ).first()
        return _booking(row) if row else None

    def _checked(self, slot: Slot) -> Tuple[Slot, str, List[int]]:
        """The slot as the book would offer it, its desk group and the desks that look free now."""
        product = self._product(slot.product_id)
        location = self._offered_at(product, slot.location_id)
        if slot.starts_at.tzinfo is None:
            raise InvalidSlot("slot time without time zone")
        start = slot.starts_at.astimezone(BRUSSELS)
        earliest, last_day = self.window()
        if start < earliest or start.date() > last_day:
            raise OutsideHorizon(f"slot {start.isoformat()} outside window", earliest, last_day)
        if start not in self._starts(product, location, start.date()):
            raise InvalidSlot(f"{start.isoformat()} is not a slot of {product.id} at {location.id}")
        end = start + self._length(product)
        group, count = self._config.desk_group(product.id, location.id)
        free = self._free_desks(start, end, count, self._taken_units(location.id, group, start, end))
        return Slot(product.id, location.id, start, end), group, free

    def _claim(self, connection: Connection, appointment_id: int, slot: Slot, group: str, desk: int) -> None:
        connection.execute(insert(appointment_desk_units), [
            {"location_id": slot.location_id, "desk_group": group, "desk_no": desk,
             "unit_start": _to_db(unit), "appointment_id": appointment_id}
            for unit in self._units(slot.starts_at, slot.ends_at)])

    def _reference_exists(self, reference: str) -> bool:
        with self._engine.connect() as connection:
            return connection.execute(
                select(appointments.c.id).where(appointments.c.reference == reference)).first() is not None

    # -- look-up, reschedule, cancel ---------------------------------------------------------------
    def find(self, reference: str, contact: str) -> Booking:
        """The booking (also when cancelled: see ``status``), only for the contact it was made with."""
        with self._engine.connect() as connection:
            row = self._row(connection, reference)
        _check_contact(row, contact)
        return _booking(row)

    def reschedule(self, reference: str, contact: str, new_slot: Slot) -> Booking:
        """Move a booking, keeping its reference. The new desk time is claimed before the old is
        released, in one transaction: if the new slot is taken, the original booking is untouched."""
        current = self.find(reference, contact)
        self._changeable(current.reference, current.status.value, current.starts_at)
        if new_slot.product_id != current.product_id:
            raise InvalidSlot(f"reschedule of {current.reference} to another product")
        slot, group, desks = self._checked(new_slot)
        if (slot.location_id, slot.starts_at) == (current.location_id, current.starts_at):
            return current
        for desk in desks:
            try:
                with self._engine.begin() as connection:
                    row = self._lock(connection, current.reference, contact)
                    self._claim(connection, row.id, slot, group, desk)
                    connection.execute(delete(appointment_desk_units).where(
                        appointment_desk_units.c.appointment_id == row.id,
                        appointment_desk_units.c.location_id == row.location_id,
                        appointment_desk_units.c.desk_group == row.desk_group,
                        appointment_desk_units.c.desk_no == row.desk_no,
                        appointment_desk_units.c.unit_start >= row.starts_at,
                        appointment_desk_units.c.unit_start < row.ends_at))
                    connection.execute(update(appointments).where(appointments.c.id == row.id).values(
                        location_id=slot.location_id, desk_group=group, desk_no=desk,
                        starts_at=_to_db(slot.starts_at), ends_at=_to_db(slot.ends_at)))
                    reminders.on_rescheduled(connection, row.id, slot.starts_at, self._now())  # new day
                    return self._read(connection, current.reference)
            except IntegrityError:
                continue
        raise SlotTaken(f"reschedule of {current.reference}: no desk left at {slot.starts_at.isoformat()}")

    def cancel(self, reference: str, contact: str) -> Booking:
        """Cancel and free the desk time at once; the row stays with status ``cancelled``."""
        with self._engine.begin() as connection:
            row = self._lock(connection, reference, contact)
            connection.execute(delete(appointment_desk_units).where(appointment_desk_units.c.appointment_id == row.id))
            connection.execute(update(appointments).where(appointments.c.id == row.id).values(
                status=BookingStatus.cancelled.value))
            reminders.on_cancelled(connection, row.id, self._now())  # no stale reminder
            return self._read(connection, row.reference)

    def _lock(self, connection: Connection, reference: str, contact: str) -> Row:
        """Start the transaction with a write on the row: it locks the row in PostgreSQL and takes
        SQLite's write lock before we read, so two changes of one booking cannot interleave."""
        canonical = normalise_reference(reference)
        changed = canonical and connection.execute(update(appointments).where(
            appointments.c.reference == canonical).values(
            revision=appointments.c.revision + 1, updated_at=_to_db(self._now()))).rowcount
        if not changed:
            raise UnknownReference("no such reference")
        row = self._row(connection, reference)
        _check_contact(row, contact)
        self._changeable(row.reference, row.status, _from_db(row.starts_at))
        return row

    def _changeable(self, reference: str, status: str, starts_at: datetime) -> None:
        if status == BookingStatus.cancelled.value:
            raise AlreadyCancelled(f"{reference} is cancelled")
        if starts_at <= self._now():
            raise AppointmentPassed(f"{reference} has started")

    def _row(self, connection: Connection, reference: str) -> Row:
        canonical = normalise_reference(reference)
        row = canonical and connection.execute(
            select(appointments).where(appointments.c.reference == canonical)).first()
        if not row:
            raise UnknownReference("no such reference")
        return row

    def _read(self, connection: Connection, reference: str) -> Booking:
        return _booking(self._row(connection, reference))

    # -- helpers -----------------------------------------------------------------------------------
    def _now(self) -> datetime:
        return self._clock().astimezone(BRUSSELS)

    def _product(self, product_id: str) -> Product:
        product = self._catalogue.product(product_id)
        if product is None or not product.bookable:
            raise NotBookable(f"product {product_id} cannot be booked")
        return product

    def _location(self, location_id: str) -> Location:
        location = self._catalogue.location(location_id)
        if location is None:
            raise NotBookable(f"unknown location {location_id}")
        return location

    def _offered_at(self, product: Product, location_id: str) -> Location:
        if location_id not in product.locations:
            raise NotBookable(f"{product.id} is not offered at {location_id}")
        return self._location(location_id)

    @staticmethod
    def _length(product: Product) -> timedelta:
        return timedelta(minutes=product.slot_minutes or 0)


def appointment_book_from_env() -> SqlAppointmentBook:
    """The book on the configured database (``GENTINFO_DATABASE_URL``), tables created if missing."""
    engine = db.make_engine()
    db.create_schema(engine)
    return SqlAppointmentBook(engine, get_catalogue(), load_book_config())


def _check_contact(row: Row, contact: str) -> None:
    """The contact must equal the stored phone or e-mail, both normalised; a typo is just a mismatch."""
    try:
        given = normalise_contact(contact).value
    except InvalidContact as error:
        raise ContactMismatch(f"contact for {row.reference} is not valid") from error
    if not any(stored and hmac.compare_digest(stored, given) for stored in (row.phone, row.email)):
        raise ContactMismatch(f"contact does not match {row.reference}")


def _booking(row: Row) -> Booking:
    return Booking(
        reference=row.reference, product_id=row.product_id, location_id=row.location_id,
        starts_at=_from_db(row.starts_at), ends_at=_from_db(row.ends_at), name=row.name, phone=row.phone,
        email=row.email, channel=row.channel, conversation_id=row.conversation_id,
        status=BookingStatus(row.status), revision=row.revision,
        created_at=_from_db(row.created_at), updated_at=_from_db(row.updated_at))


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not 2 <= len(cleaned) <= 120 or not any(ch.isalpha() for ch in cleaned):
        raise InvalidName("name missing or too long")
    return cleaned


def _to_db(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _from_db(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc).astimezone(BRUSSELS)


# -- texts and calendar file for the citizen ----------------------------------------------------------
def describe_slot(slot: Slot, catalogue: Catalogue, with_location: bool = False) -> str:
    """'dinsdag 1 december om 9.30 uur' (+ ' in Stadskantoor'), e.g. for a button."""
    text = format_moment(slot.starts_at)
    location = catalogue.location(slot.location_id)
    return f"{text} in {location.name}" if with_location and location else text


def booking_summary_nl(booking: Booking, catalogue: Catalogue) -> str:
    """The confirmation a citizen reads after booking or moving an appointment (B1, "u")."""
    product, location = _catalogue_entries(booking, catalogue)
    lines = [f"Uw afspraak voor {product.name} staat vast: {format_moment(booking.starts_at)}.",
             f"Waar: {location.name}, {location.address} ({product.desk}).",
             f"Uw afspraaknummer is {booking.reference}. Dat hebt u nodig om de afspraak te verplaatsen of te annuleren."]
    if product.bring:
        lines.append("Neem mee: " + "; ".join(product.bring) + ".")
    return "\n".join(lines)


def to_ics(booking: Booking, catalogue: Optional[Catalogue] = None, now: Optional[datetime] = None) -> str:
    """An RFC 5545 calendar file for the booking (times in UTC, so no VTIMEZONE is needed).

    ``SEQUENCE`` is the booking's revision and ``UID`` its reference: after a move or a cancellation a
    new file replaces the old event in the citizen's calendar.
    """
    catalogue = catalogue or get_catalogue()
    product, location = _catalogue_entries(booking, catalogue)
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    description = [f"Afspraaknummer: {booking.reference}", f"Balie: {product.desk}"]
    if product.bring:
        description += ["Neem mee:", *(f"- {item}" for item in product.bring)]
    description += ["Verplaatsen of annuleren? Dat kan met uw afspraaknummer via de chat of Gentinfo"
                    f" ({catalogue.contact.phone}).", f"Meer informatie: {product.url}"]
    description_text = "\n".join(description)
    cancelled = booking.status is BookingStatus.cancelled
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Stad Gent//Gentinfo assistent//NL", "CALSCALE:GREGORIAN",
        f"METHOD:{'CANCEL' if cancelled else 'PUBLISH'}",
        "BEGIN:VEVENT",
        f"UID:{booking.reference}@gentinfo.stad.gent",
        f"SEQUENCE:{booking.revision}",
        f"DTSTAMP:{_ics_time(stamp)}",
        f"DTSTART:{_ics_time(booking.starts_at)}",
        f"DTEND:{_ics_time(booking.ends_at)}",
        f"SUMMARY:{_ics_text(f'Afspraak Stad Gent: {product.name}')}",
        f"LOCATION:{_ics_text(f'{location.name}, {location.address}')}",
        f"GEO:{location.latitude};{location.longitude}",
        f"DESCRIPTION:{_ics_text(description_text)}",
        f"URL:{location.url}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
        "END:VEVENT", "END:VCALENDAR",
    ]
    return "".join(_ics_fold(line) + "\r\n" for line in lines)


def _catalogue_entries(booking: Booking, catalogue: Catalogue) -> Tuple[Product, Location]:
    product, location = catalogue.product(booking.product_id), catalogue.location(booking.location_id)
    if product is None or location is None:
        raise NotBookable(f"{booking.reference}: product or location left the catalogue")
    return product, location


def _ics_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _ics_text(value: str) -> str:
    """TEXT escaping of RFC 5545 3.3.11: backslash, semicolon, comma and newline."""
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\n").replace("\n", "\\n"))


def _ics_fold(line: str, limit: int = 75) -> str:
    """Fold at 75 octets (RFC 5545 3.1) without splitting a UTF-8 character."""
    parts, current, size = [], "", 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size = " ", 1
        current += char
        size += width
    parts.append(current)
    return "\r\n".join(parts)
