"""KAFKA-meldpunt, what the register works with: limits, statuses, errors, value objects, references.

Split from ``bot/core/kafka.py`` (the register itself); that module re-exports every name here, so
``from bot.core import kafka; kafka.Status`` keeps working.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from enum import Enum
from typing import Mapping, Optional, Tuple, Union

from bot.core import contact
from bot.core.dates import BRUSSELS
from bot.core.texts import say

#: Dates in references, filters and exports are Ghent's local dates.
CITY_TZ = BRUSSELS

# -- limits (characters are Unicode code points, as Python's len() counts them) ------------------
MIN_PROBLEM_WORDS = 3
MAX_PROBLEM_CHARS = 4000
MAX_PROPOSAL_CHARS = 4000
MAX_PRODUCT_OTHER_CHARS = 200
MAX_NAME_CHARS = 200
MAX_EMAIL_CHARS = 254
MAX_NOTE_CHARS = 4000
MAX_CONVERSATION_ID_CHARS = 255
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

#: Channels a suggestion can come from (the prefixes of ``connectors.outbound`` conversation ids).
CHANNELS = ("whatsapp", "telegram", "web")
#: Filter value for suggestions about "iets anders", i.e. without a catalogue product.
PRODUCT_OTHER = "anders"
#: Filter dates outside this range are refused (they overflow time-zone arithmetic).
MIN_FILTER_DATE = date(2000, 1, 1)
MAX_FILTER_DATE = date(9998, 12, 31)

RETENTION_ENV = "GENTINFO_KAFKA_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 365


class Status(str, Enum):
    """Where a suggestion is in the city's follow-up; the value is what the database and API use."""

    nieuw = "nieuw"
    in_behandeling = "in_behandeling"
    doorgestuurd = "doorgestuurd"
    uitgevoerd = "uitgevoerd"
    afgewezen = "afgewezen"

    @property
    def label(self) -> str:
        """Dutch (B1) label, fit to show to the citizen."""
        return say(f"kafka.status_{self.value}")




# -- exceptions ------------------------------------------------------------------------------------
class KafkaError(Exception):
    """Base of everything this module raises on purpose."""


class InvalidSuggestion(KafkaError, ValueError):
    """Input the citizen can correct: ``field`` names what to ask again, ``citizen_message`` how (Dutch)."""

    def __init__(self, field_name: str, message: str, citizen_message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.citizen_message = citizen_message


class TooShort(InvalidSuggestion):
    def __init__(self, field_name: str, min_words: int) -> None:
        super().__init__(
            field_name,
            f"fewer than {min_words} words",
            say("kafka.error_too_short", min_words=min_words),
        )
        self.min_words = min_words


class TooLong(InvalidSuggestion):
    def __init__(self, field_name: str, limit: int) -> None:
        super().__init__(
            field_name,
            f"longer than {limit} characters",
            say("kafka.error_too_long", limit=limit),
        )
        self.limit = limit


class ContactNotAllowed(InvalidSuggestion):
    """Contact details without consent (``reason == "no_consent"``) or on an anonymous suggestion."""

    def __init__(self, reason: str) -> None:
        citizen = {"no_consent": "kafka.error_no_consent", "anonymous": "kafka.error_anonymous"}[reason]
        super().__init__("consent", f"contact details refused ({reason})", say(citizen))
        self.reason = reason


class InvalidEmail(InvalidSuggestion):
    """Refused by ``bot.core.contact.normalise_email``; the citizen message is that module's."""

    def __init__(self, citizen_message: str) -> None:
        super().__init__("contact_email", "not a valid e-mail address", citizen_message)


class InvalidPhone(InvalidSuggestion):
    """Refused by ``bot.core.contact.normalise_phone`` (Belgian mobile or fixed numbers only)."""

    def __init__(self, citizen_message: str) -> None:
        super().__init__("contact_phone", "not a valid phone number", citizen_message)


class UnknownProduct(InvalidSuggestion):
    def __init__(self, product_id: str) -> None:
        super().__init__(
            "product_id",
            f"{product_id!r} is not in the catalogue",
            say("kafka.error_unknown_product"),
        )
        self.product_id = product_id


class UnstorableText(InvalidSuggestion):
    """NUL characters or broken Unicode, which PostgreSQL cannot store."""

    def __init__(self, field_name: str) -> None:
        super().__init__(
            field_name,
            "contains NUL or invalid Unicode",
            say("kafka.error_unstorable"),
        )


class InvalidReference(KafkaError, ValueError):
    """Text that contains no reference of the form KAFKA-<year>-<number>."""


class UnknownReference(KafkaError, LookupError):
    """A well-formed reference that is not in the register."""


class UnknownStatus(KafkaError, ValueError):
    """A status value that is not one of ``Status``."""


class InvalidFilter(KafkaError, ValueError):
    """Filters or paging that make no sense (``from`` after ``to``, negative offset, ...)."""


# -- value objects ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatusChange:
    status: Status
    changed_at: datetime
    note: Optional[str]


@dataclass(frozen=True)
class Suggestion:
    """One suggestion as stored; datetimes are timezone-aware UTC."""

    reference: str
    created_at: datetime
    updated_at: datetime
    status: Status
    problem: str
    product_id: Optional[str]
    product_other: Optional[str]
    proposal: Optional[str]
    anonymous: bool
    consent: bool
    consent_at: Optional[datetime]
    contact_name: Optional[str]
    contact_email: Optional[str]
    contact_phone: Optional[str]
    channel: Optional[str]
    conversation_id: Optional[str]
    internal_note: Optional[str]
    contact_purged_at: Optional[datetime]
    history: Tuple[StatusChange, ...] = ()


@dataclass(frozen=True)
class StatusInfo:
    """What a citizen may learn about a suggestion from its reference alone: nothing personal."""

    reference: str
    status: Status
    label: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Filters:
    """Selection for ``list``/``count``/exports. Dates are Ghent dates, both ends inclusive."""

    date_from: Optional[date] = None
    date_to: Optional[date] = None
    #: a catalogue product id, or ``PRODUCT_OTHER`` for suggestions without product
    product_id: Optional[str] = None
    status: Optional[Status] = None

    def __post_init__(self) -> None:
        for value in (self.date_from, self.date_to):
            if value is not None and not MIN_FILTER_DATE <= value <= MAX_FILTER_DATE:
                raise InvalidFilter(f"dates must lie between {MIN_FILTER_DATE} and {MAX_FILTER_DATE}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidFilter("'from' is after 'to'")
        if self.status is not None:
            object.__setattr__(self, "status", parse_status(self.status))


# -- references and small parsers ------------------------------------------------------------------
_REFERENCE = re.compile(r"(?<![a-z0-9])kafka[\s_-]*(\d{4})[\s_-]*(\d{1,9})(?!\d)", re.IGNORECASE)


def format_reference(year: int, number: int) -> str:
    return f"KAFKA-{year}-{number:06d}"


def parse_reference(value: str) -> str:
    """The canonical reference in what a citizen typed ("kafka 2026 123" -> "KAFKA-2026-000123")."""
    match = _REFERENCE.search(value or "")
    if not match:
        raise InvalidReference("no reference of the form KAFKA-<year>-<number> found")
    return format_reference(int(match.group(1)), int(match.group(2)))


def parse_status(value: Union[Status, str]) -> Status:
    try:
        return Status(value)
    except ValueError:
        raise UnknownStatus(f"unknown status {value!r}; use one of {', '.join(s.value for s in Status)}") from None


def retention_days_from_env(environ: Mapping[str, str] = os.environ) -> int:
    """Days contact details are kept (``GENTINFO_KAFKA_RETENTION_DAYS``, default 365)."""
    raw = environ.get(RETENTION_ENV, "").strip()
    if not raw:
        return DEFAULT_RETENTION_DAYS
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{RETENTION_ENV} must be a whole number of days, at least 1 (got {raw!r})")
    return int(raw)


# -- checks of the citizen's text (the register's, shared with the chat) --------------------------
WORD = re.compile(r"\w+")


def check_storable(field_name: str, value: str) -> None:
    if "\x00" in value:
        raise UnstorableText(field_name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UnstorableText(field_name) from None


def given(field_name: str, value: Optional[str]) -> Optional[str]:
    """None for absent or blank input, else the value as given once it is known to be storable."""
    if value is None or not value.strip():
        return None
    check_storable(field_name, value)
    return value


def optional_text(field_name: str, value: Optional[str], limit: int) -> Optional[str]:
    value = given(field_name, value)
    if value is not None and len(value) > limit:
        raise TooLong(field_name, limit)
    return value


def normalise_email(value: str) -> str:
    """Lower case, IDN domain as punycode: the same rules as everywhere in the assistant."""
    try:
        return contact.normalise_email(value)
    except contact.InvalidContact as error:
        raise InvalidEmail(error.message_nl) from None


def normalise_phone(value: str) -> str:
    """E.164 (``+32470123456``); only Belgian mobile and fixed numbers, as for appointments."""
    try:
        return contact.normalise_phone(value)
    except contact.InvalidContact as error:
        raise InvalidPhone(error.message_nl) from None


def start_of_local_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=CITY_TZ).astimezone(timezone.utc)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
