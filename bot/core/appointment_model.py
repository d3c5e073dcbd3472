"""The appointment book's vocabulary: errors (with their citizen texts), the desk configuration, the
values (slot, booking) and references. Split from ``bot/core/appointments.py`` (the book itself),
which re-exports every name here.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, Dict, List, Optional, Protocol, Tuple, Union, runtime_checkable

import yaml
from pydantic import BaseModel, Field, root_validator

from bot.core.catalogue import Catalogue
from bot.core.citizen_text import Copy
from bot.core.dates import DateRequest, format_day, format_moment
from bot.core.texts import say

BOOK_CONFIG_PATH = Path(__file__).resolve().parents[1] / "data" / "content" / "appointment_book.yml"

#: No 0/O/1/I: a reference is read aloud and typed over from a screen or a letter.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
REFERENCE_PREFIX = "GNT"
REFERENCE_LENGTH = 5

Clock = Callable[[], datetime]


# -- errors ---------------------------------------------------------------------------------------
class AppointmentError(Exception):
    """Base class; ``str(error)`` is for logs, ``message_nl`` for the citizen."""

    message_nl = Copy("appointments.error")


class NotBookable(AppointmentError):
    message_nl = Copy("appointments.error_not_bookable")


class InvalidSlot(AppointmentError):
    message_nl = Copy("appointments.error_invalid_slot")


class OutsideHorizon(AppointmentError):
    """The day or slot lies before the lead time or after the last bookable day."""

    def __init__(self, message: str, first_moment: datetime, last_day: date) -> None:
        super().__init__(message)
        self.first_moment = first_moment
        self.last_day = last_day

    @property
    def message_nl(self) -> str:  # type: ignore[override]  # the base's is a class-level Copy descriptor
        return say("appointments.error_outside_horizon", first=format_moment(self.first_moment),
                   last=format_day(self.last_day))


class SlotTaken(AppointmentError):
    message_nl = Copy("appointments.error_slot_taken")


class UnknownReference(AppointmentError):
    #: Same text as ContactMismatch: we never tell whether a reference exists.
    message_nl = Copy("appointments.error_not_found")


class ContactMismatch(AppointmentError):
    message_nl = Copy("appointments.error_not_found")


class AlreadyCancelled(AppointmentError):
    message_nl = Copy("appointments.error_already_cancelled")


class AppointmentPassed(AppointmentError):
    message_nl = Copy("appointments.error_passed")


class InvalidName(AppointmentError):
    message_nl = Copy("appointments.error_invalid_name")


# -- configuration ---------------------------------------------------------------------------------
class DeskGroup(BaseModel):
    count: Annotated[int, Field(ge=1, le=100)]
    services: List[str]


class BookConfig(BaseModel):
    """``appointment_book.yml``; ``check(catalogue)`` verifies it fits the catalogue."""

    slot_grid_minutes: Annotated[int, Field(ge=1, le=60)] = 5
    lead_time_minutes: Annotated[int, Field(ge=0)] = 60
    horizon_days: Annotated[int, Field(ge=1, le=366)] = 56
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
            if product.slot_minutes is None or product.slot_minutes % grid:  # bookable: never None (catalogue)
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
