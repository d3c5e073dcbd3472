"""KAFKA-meldpunt: the register of citizens' suggestions for administrative simplification.

The chatbot's form files a suggestion here and announces the reference only after
``file_suggestion`` returned, i.e. after the commit. The city's staff read, follow up and export the
register through ``channels.kafka_api``. Personal data is kept minimal by design, and the database
enforces it too: contact details only with consent, channel ids only when the citizen did not choose
to stay anonymous, and ``purge_contact_details`` erases both after the retention period while the
suggestion itself stays for policy work.

Text is stored exactly as the citizen typed it (HTML stays plain text); escaping happens on the way
out, in ``export_csv`` (spreadsheet formulas) and ``safe_json_dumps`` (embedding in HTML).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.types import TypeDecorator

from bot.core import contact, reminders
from bot.core.catalogue import Catalogue, get_catalogue
from bot.core.db import metadata

logger = logging.getLogger(__name__)

#: Dates in references, filters and exports are Ghent's local dates.
CITY_TZ = ZoneInfo("Europe/Brussels")

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
        return STATUS_LABELS[self]


STATUS_LABELS: Dict[Status, str] = {
    Status.nieuw: "Ontvangen",
    Status.in_behandeling: "In behandeling",
    Status.doorgestuurd: "Doorgestuurd naar de juiste dienst",
    Status.uitgevoerd: "Uitgevoerd",
    Status.afgewezen: "Afgewezen",
}


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
            f"Beschrijf het in minstens {min_words} woorden, zodat we goed begrijpen wat er misloopt.",
        )
        self.min_words = min_words


class TooLong(InvalidSuggestion):
    def __init__(self, field_name: str, limit: int) -> None:
        super().__init__(
            field_name,
            f"longer than {limit} characters",
            f"Uw tekst is te lang. U kunt maximaal {limit} tekens gebruiken. Maak hem wat korter.",
        )
        self.limit = limit


class ContactNotAllowed(InvalidSuggestion):
    """Contact details without consent (``reason == "no_consent"``) or on an anonymous suggestion."""

    def __init__(self, reason: str) -> None:
        citizen = {
            "no_consent": "We bewaren uw contactgegevens alleen als u daar toestemming voor geeft.",
            "anonymous": "U koos om anoniem te blijven. Dan bewaren we geen contactgegevens.",
        }[reason]
        super().__init__("consent", f"contact details refused ({reason})", citizen)
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
            "Over welke dienst gaat het? Kies er een uit de lijst, of kies 'iets anders'.",
        )
        self.product_id = product_id


class UnstorableText(InvalidSuggestion):
    """NUL characters or broken Unicode, which PostgreSQL cannot store."""

    def __init__(self, field_name: str) -> None:
        super().__init__(
            field_name,
            "contains NUL or invalid Unicode",
            "Uw tekst bevat tekens die we niet kunnen bewaren. Wilt u hem opnieuw typen?",
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


# -- tables ----------------------------------------------------------------------------------------
class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both backends (SQLite keeps them naive, in UTC, so they sort)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the register only stores timezone-aware datetimes")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


_STATUS_VALUES = ", ".join(f"'{s.value}'" for s in Status)

suggestions = Table(
    "kafka_suggestion",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("reference", String(24), nullable=False, unique=True),
    Column("year", Integer, nullable=False),
    Column("number", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False, index=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("problem", Text, nullable=False),
    Column("product_id", String(64), index=True),
    Column("product_other", String(MAX_PRODUCT_OTHER_CHARS)),
    Column("proposal", Text),
    Column("anonymous", Boolean, nullable=False),
    Column("consent", Boolean, nullable=False),
    Column("consent_at", UtcDateTime()),
    Column("contact_name", String(MAX_NAME_CHARS)),
    Column("contact_email", String(MAX_EMAIL_CHARS)),
    Column("contact_phone", String(32)),
    Column("channel", String(16)),
    Column("conversation_id", String(MAX_CONVERSATION_ID_CHARS)),
    Column("internal_note", Text),
    Column("contact_purged_at", UtcDateTime()),
    UniqueConstraint("year", "number", name="uq_kafka_suggestion_year_number"),
    CheckConstraint(f"status IN ({_STATUS_VALUES})", name="ck_kafka_suggestion_status"),
    # The privacy rules hold even for code that bypasses file_suggestion.
    CheckConstraint(
        "consent OR (contact_name IS NULL AND contact_email IS NULL AND contact_phone IS NULL)",
        name="ck_kafka_suggestion_contact_needs_consent",
    ),
    CheckConstraint(
        "NOT anonymous OR (NOT consent AND channel IS NULL AND conversation_id IS NULL)",
        name="ck_kafka_suggestion_anonymous",
    ),
)

status_changes = Table(
    "kafka_status_change",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("suggestion_id", Integer, ForeignKey("kafka_suggestion.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("note", Text),
    Column("changed_at", UtcDateTime(), nullable=False),
)

#: One row per year; incrementing it inside the filing transaction serialises reference numbers.
reference_counters = Table(
    "kafka_reference_counter",
    metadata,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("last_number", Integer, nullable=False),
)


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


_WORD = re.compile(r"\w+")


def _check_storable(field_name: str, value: str) -> None:
    if "\x00" in value:
        raise UnstorableText(field_name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UnstorableText(field_name) from None


def _given(field_name: str, value: Optional[str]) -> Optional[str]:
    """None for absent or blank input, else the value as given once it is known to be storable."""
    if value is None or not value.strip():
        return None
    _check_storable(field_name, value)
    return value


def _optional_text(field_name: str, value: Optional[str], limit: int) -> Optional[str]:
    value = _given(field_name, value)
    if value is not None and len(value) > limit:
        raise TooLong(field_name, limit)
    return value


def _normalise_email(value: str) -> str:
    """Lower case, IDN domain as punycode: the same rules as everywhere in the assistant."""
    try:
        return contact.normalise_email(value)
    except contact.InvalidContact as error:
        raise InvalidEmail(error.message_nl) from None


def _normalise_phone(value: str) -> str:
    """E.164 (``+32470123456``); only Belgian mobile and fixed numbers, as for appointments."""
    try:
        return contact.normalise_phone(value)
    except contact.InvalidContact as error:
        raise InvalidPhone(error.message_nl) from None


def _start_of_local_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=CITY_TZ).astimezone(timezone.utc)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


# -- the register ----------------------------------------------------------------------------------
class KafkaRegister:
    """Files, finds and follows up suggestions in the project database (SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: Engine,
        *,
        catalogue: Optional[Catalogue] = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(f"the KAFKA register supports SQLite and PostgreSQL, not {engine.dialect.name}")
        self.engine = engine
        self.catalogue = catalogue or get_catalogue()
        self._clock = clock

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("clock must return timezone-aware datetimes")
        return now.astimezone(timezone.utc)

    # -- filing ------------------------------------------------------------------------------------
    def file_suggestion(
        self,
        problem: Optional[str],
        *,
        product_id: Optional[str] = None,
        product_other: Optional[str] = None,
        proposal: Optional[str] = None,
        anonymous: bool = False,
        consent: bool = False,
        contact_name: Optional[str] = None,
        contact_email: Optional[str] = None,
        contact_phone: Optional[str] = None,
        channel: Optional[str] = None,
        conversation_id: Optional[str] = None,
    ) -> Suggestion:
        """Validate and durably store a suggestion; when this returns, the reference may be announced.

        ``channel`` and ``conversation_id`` may always be passed: they are dropped for anonymous
        suggestions. Blank optional texts count as absent; a missing problem (None) as empty.
        """
        problem = problem or ""
        _check_storable("problem", problem)
        if len(problem) > MAX_PROBLEM_CHARS:
            raise TooLong("problem", MAX_PROBLEM_CHARS)
        if len(_WORD.findall(problem)) < MIN_PROBLEM_WORDS:
            raise TooShort("problem", MIN_PROBLEM_WORDS)
        proposal = _optional_text("proposal", proposal, MAX_PROPOSAL_CHARS)
        product_other = _optional_text("product_other", product_other, MAX_PRODUCT_OTHER_CHARS)
        if product_id is not None and self.catalogue.product(product_id) is None:
            raise UnknownProduct(product_id)

        name = _optional_text("contact_name", contact_name, MAX_NAME_CHARS)
        email = _given("contact_email", contact_email)
        phone = _given("contact_phone", contact_phone)
        has_contact = any(value is not None for value in (name, email, phone))
        if anonymous and (has_contact or consent):
            raise ContactNotAllowed("anonymous")
        if has_contact and not consent:
            raise ContactNotAllowed("no_consent")
        name = name.strip() if name else None
        email = _normalise_email(email) if email else None
        phone = _normalise_phone(phone) if phone else None

        if anonymous:
            channel = conversation_id = None
        else:
            if channel is not None and channel not in CHANNELS:
                raise ValueError(f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
            if conversation_id is not None and len(conversation_id) > MAX_CONVERSATION_ID_CHARS:
                raise ValueError(f"conversation id longer than {MAX_CONVERSATION_ID_CHARS} characters")

        now = self._now()
        year = now.astimezone(CITY_TZ).year
        values: Dict[str, Any] = dict(
            created_at=now,
            updated_at=now,
            status=Status.nieuw.value,
            problem=problem,
            product_id=product_id,
            product_other=product_other,
            proposal=proposal,
            anonymous=anonymous,
            consent=consent,
            consent_at=now if consent else None,
            contact_name=name,
            contact_email=email,
            contact_phone=phone,
            channel=channel,
            conversation_id=conversation_id,
            internal_note=None,
            contact_purged_at=None,
        )
        with self.engine.begin() as connection:
            number = _next_number(connection, year)
            reference = format_reference(year, number)
            result = connection.execute(
                suggestions.insert().values(reference=reference, year=year, number=number, **values)
            )
            connection.execute(
                status_changes.insert().values(
                    suggestion_id=result.inserted_primary_key[0], status=Status.nieuw.value, note=None, changed_at=now
                )
            )
        logger.info("KAFKA suggestion %s filed (product %s, anonymous %s)", reference, product_id or PRODUCT_OTHER, anonymous)
        values["status"] = Status.nieuw
        return Suggestion(reference=reference, history=(StatusChange(Status.nieuw, now, None),), **values)

    # -- reading -----------------------------------------------------------------------------------
    def get(self, reference: str) -> Suggestion:
        """The full suggestion (staff only: it holds contact details)."""
        reference = parse_reference(reference)
        with self.engine.connect() as connection:
            row = connection.execute(select(suggestions).where(suggestions.c.reference == reference)).first()
            if row is None:
                raise UnknownReference(reference)
            return _with_history(connection, [row])[0]

    def status_of(self, reference: str) -> StatusInfo:
        """Answer to the citizen's "how far is my suggestion?"; accepts the reference as typed."""
        reference = parse_reference(reference)
        columns = (suggestions.c.status, suggestions.c.created_at, suggestions.c.updated_at)
        with self.engine.connect() as connection:
            row = connection.execute(select(*columns).where(suggestions.c.reference == reference)).first()
        if row is None:
            raise UnknownReference(reference)
        status = Status(row.status)
        return StatusInfo(reference, status, status.label, row.created_at, row.updated_at)

    def list(
        self, filters: Filters = Filters(), *, limit: Optional[int] = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> List[Suggestion]:
        """Matching suggestions, newest first; ``limit=None`` returns all (exports)."""
        if limit is not None and not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidFilter(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        if offset < 0:
            raise InvalidFilter("offset must not be negative")
        query = (
            select(suggestions)
            .where(*_conditions(filters))
            .order_by(suggestions.c.created_at.desc(), suggestions.c.id.desc())
            .offset(offset)
        )
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return _with_history(connection, connection.execute(query).all())

    def count(self, filters: Filters = Filters()) -> int:
        query = select(func.count()).select_from(suggestions).where(*_conditions(filters))
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def ping(self) -> None:
        """Raise if the database cannot be reached (health check)."""
        with self.engine.connect() as connection:
            connection.execute(text("select 1"))

    # -- follow-up ---------------------------------------------------------------------------------
    def update_status(self, reference: str, status: Union[Status, str], note: Optional[str] = None) -> Suggestion:
        """Set the status, record it in the history; a note also becomes the current internal note."""
        status = parse_status(status)
        reference = parse_reference(reference)
        note = _optional_text("note", note, MAX_NOTE_CHARS)
        now = self._now()
        changes: Dict[str, Any] = {"status": status.value, "updated_at": now}
        if note is not None:
            changes["internal_note"] = note
        with self.engine.begin() as connection:
            # Writing first takes the write lock at once (SQLite) / the row lock (PostgreSQL).
            result = connection.execute(update(suggestions).where(suggestions.c.reference == reference).values(**changes))
            if result.rowcount == 0:
                raise UnknownReference(reference)
            suggestion_id = connection.execute(
                select(suggestions.c.id).where(suggestions.c.reference == reference)
            ).scalar_one()
            connection.execute(
                status_changes.insert().values(suggestion_id=suggestion_id, status=status.value, note=note, changed_at=now)
            )
            reminders.on_kafka_status(connection, suggestion_id, status.value, now)  # notify a consenting author
        logger.info("KAFKA suggestion %s: status %s", reference, status.value)
        return self.get(reference)

    def purge_contact_details(self, older_than_days: int) -> int:
        """Erase name, e-mail, phone and conversation id of suggestions filed more than N days ago.

        The suggestion, product, status and history stay. Returns how many suggestions were purged.
        """
        if older_than_days < 0:
            raise ValueError("older_than_days must not be negative")
        now = self._now()
        personal = (suggestions.c.contact_name, suggestions.c.contact_email, suggestions.c.contact_phone, suggestions.c.conversation_id)
        with self.engine.begin() as connection:
            result = connection.execute(
                update(suggestions)
                .where(
                    suggestions.c.created_at < now - timedelta(days=older_than_days),
                    or_(*(column.is_not(None) for column in personal)),
                )
                .values(
                    contact_name=None, contact_email=None, contact_phone=None, conversation_id=None, contact_purged_at=now
                )
            )
        logger.info("KAFKA retention: contact details erased from %d suggestions older than %d days", result.rowcount, older_than_days)
        return int(result.rowcount)


def _next_number(connection: Connection, year: int) -> int:
    """Next per-year number; the counter row stays locked until the filing transaction ends.

    The insert comes first on purpose: on SQLite a transaction that starts with a write waits for
    the write lock (busy timeout) instead of failing on a stale read snapshot.
    """
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(
        dialect_insert(reference_counters).values(year=year, last_number=0).on_conflict_do_nothing(index_elements=["year"])
    )
    connection.execute(
        update(reference_counters)
        .where(reference_counters.c.year == year)
        .values(last_number=reference_counters.c.last_number + 1)
    )
    return int(
        connection.execute(select(reference_counters.c.last_number).where(reference_counters.c.year == year)).scalar_one()
    )


def _conditions(filters: Filters) -> List[Any]:
    conditions: List[Any] = []
    if filters.date_from:
        conditions.append(suggestions.c.created_at >= _start_of_local_day(filters.date_from))
    if filters.date_to:
        conditions.append(suggestions.c.created_at < _start_of_local_day(filters.date_to + timedelta(days=1)))
    if filters.product_id == PRODUCT_OTHER:
        conditions.append(suggestions.c.product_id.is_(None))
    elif filters.product_id:
        conditions.append(suggestions.c.product_id == filters.product_id)
    if filters.status:
        conditions.append(suggestions.c.status == filters.status.value)
    return conditions


def _with_history(connection: Connection, rows: Sequence[Row]) -> List[Suggestion]:
    history: Dict[int, List[StatusChange]] = {row.id: [] for row in rows}
    ids = list(history)
    for start in range(0, len(ids), 500):
        changes = connection.execute(
            select(status_changes)
            .where(status_changes.c.suggestion_id.in_(ids[start : start + 500]))
            .order_by(status_changes.c.id)
        )
        for change in changes:
            history[change.suggestion_id].append(StatusChange(Status(change.status), change.changed_at, change.note))
    names = {f.name for f in fields(Suggestion)} - {"status", "history"}
    return [
        Suggestion(
            status=Status(row.status),
            history=tuple(history[row.id]),
            **{name: value for name, value in row._mapping.items() if name in names},
        )
        for row in rows
    ]


# -- exports ---------------------------------------------------------------------------------------
CSV_COLUMNS = (
    "reference",
    "created_at",
    "updated_at",
    "status",
    "status_label",
    "product_id",
    "product_name",
    "product_other",
    "problem",
    "proposal",
    "anonymous",
    "consent",
    "consent_at",
    "contact_name",
    "contact_email",
    "contact_phone",
    "channel",
    "internal_note",
    "contact_purged_at",
)

#: First characters that make Excel/LibreOffice read a cell as a formula (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_JSON_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_HTML_UNSAFE = re.compile("[<>&\u2028\u2029]")


def _iso(value: Optional[datetime]) -> Optional[str]:
    """Ghent local time with its offset, to the second: unambiguous and readable for staff."""
    return value.astimezone(CITY_TZ).isoformat(timespec="seconds") if value else None


def to_record(
    suggestion: Suggestion, *, catalogue: Optional[Catalogue] = None, include_conversation: bool = False
) -> Dict[str, Any]:
    """JSON-ready dict for staff. The conversation id (a phone number on WhatsApp) only on request."""
    product = catalogue.product(suggestion.product_id) if catalogue and suggestion.product_id else None
    record: Dict[str, Any] = {
        "reference": suggestion.reference,
        "created_at": _iso(suggestion.created_at),
        "updated_at": _iso(suggestion.updated_at),
        "status": suggestion.status.value,
        "status_label": suggestion.status.label,
        "product_id": suggestion.product_id,
        "product_name": product.name if product else None,
        "product_other": suggestion.product_other,
        "problem": suggestion.problem,
        "proposal": suggestion.proposal,
        "anonymous": suggestion.anonymous,
        "consent": suggestion.consent,
        "consent_at": _iso(suggestion.consent_at),
        "contact_name": suggestion.contact_name,
        "contact_email": suggestion.contact_email,
        "contact_phone": suggestion.contact_phone,
        "channel": suggestion.channel,
        "internal_note": suggestion.internal_note,
        "contact_purged_at": _iso(suggestion.contact_purged_at),
        "history": [
            {"status": c.status.value, "status_label": c.status.label, "changed_at": _iso(c.changed_at), "note": c.note}
            for c in suggestion.history
        ],
    }
    if include_conversation:
        record["conversation_id"] = suggestion.conversation_id
    return record


def spreadsheet_safe(value: str) -> str:
    """Prefix an apostrophe when a spreadsheet would otherwise evaluate the cell as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def export_csv(suggestions_: Iterable[Suggestion], *, catalogue: Optional[Catalogue] = None) -> str:
    """CSV (RFC 4180 via the csv module, one header row ``CSV_COLUMNS``), safe to open in Excel."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for suggestion in suggestions_:
        record = to_record(suggestion, catalogue=catalogue)
        cells = []
        for column in CSV_COLUMNS:
            value = record[column]
            if isinstance(value, bool):
                value = "true" if value else "false"
            cells.append("" if value is None else spreadsheet_safe(str(value)))
        writer.writerow(cells)
    return buffer.getvalue()


def safe_json_dumps(value: Any) -> str:
    """JSON that can be pasted inside an HTML ``<script>`` block: ``<``, ``>``, ``&`` become \\u escapes."""
    dumped = json.dumps(value, ensure_ascii=False)
    return _JSON_HTML_UNSAFE.sub(lambda match: _JSON_HTML_ESCAPES[match.group(0)], dumped)


def export_json(suggestions_: Iterable[Suggestion], *, catalogue: Optional[Catalogue] = None) -> str:
    """``{"count": n, "suggestions": [record, ...]}``, HTML-safe (see ``safe_json_dumps``)."""
    records = [to_record(s, catalogue=catalogue) for s in suggestions_]
    return safe_json_dumps({"count": len(records), "suggestions": records})
