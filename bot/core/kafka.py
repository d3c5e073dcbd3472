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

import logging
from dataclasses import fields
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

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

from bot.core.catalogue import Catalogue, get_catalogue
from bot.core.db import metadata
from bot.core.kafka_export import (
    CSV_COLUMNS,
    export_csv,
    export_json,
    safe_json_dumps,
    spreadsheet_safe,
    to_record,
)
from bot.core.kafka_model import (
    CHANNELS,
    CITY_TZ,
    DEFAULT_PAGE_SIZE,
    DEFAULT_RETENTION_DAYS,
    MAX_CONVERSATION_ID_CHARS,
    MAX_EMAIL_CHARS,
    MAX_FILTER_DATE,
    MAX_NAME_CHARS,
    MAX_NOTE_CHARS,
    MAX_PAGE_SIZE,
    MAX_PROBLEM_CHARS,
    MAX_PRODUCT_OTHER_CHARS,
    MAX_PROPOSAL_CHARS,
    MIN_FILTER_DATE,
    MIN_PROBLEM_WORDS,
    PRODUCT_OTHER,
    RETENTION_ENV,
    WORD,
    ContactNotAllowed,
    Filters,
    InvalidEmail,
    InvalidFilter,
    InvalidPhone,
    InvalidReference,
    InvalidSuggestion,
    KafkaError,
    Status,
    StatusChange,
    StatusInfo,
    Suggestion,
    TooLong,
    TooShort,
    UnknownProduct,
    UnknownReference,
    UnknownStatus,
    UnstorableText,
    check_storable,
    format_reference,
    given,
    normalise_email,
    normalise_phone,
    optional_text,
    parse_reference,
    parse_status,
    retention_days_from_env,
    start_of_local_day,
    utc_now,
)

logger = logging.getLogger(__name__)

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


# -- the register ----------------------------------------------------------------------------------
class KafkaRegister:
    """Files, finds and follows up suggestions in the project database (SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: Engine,
        *,
        catalogue: Optional[Catalogue] = None,
        clock: Callable[[], datetime] = utc_now,
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
        check_storable("problem", problem)
        if len(problem) > MAX_PROBLEM_CHARS:
            raise TooLong("problem", MAX_PROBLEM_CHARS)
        if len(WORD.findall(problem)) < MIN_PROBLEM_WORDS:
            raise TooShort("problem", MIN_PROBLEM_WORDS)
        proposal = optional_text("proposal", proposal, MAX_PROPOSAL_CHARS)
        product_other = optional_text("product_other", product_other, MAX_PRODUCT_OTHER_CHARS)
        if product_id is not None and self.catalogue.product(product_id) is None:
            raise UnknownProduct(product_id)

        name = optional_text("contact_name", contact_name, MAX_NAME_CHARS)
        email = given("contact_email", contact_email)
        phone = given("contact_phone", contact_phone)
        has_contact = any(value is not None for value in (name, email, phone))
        if anonymous and (has_contact or consent):
            raise ContactNotAllowed("anonymous")
        if has_contact and not consent:
            raise ContactNotAllowed("no_consent")
        name = name.strip() if name else None
        email = normalise_email(email) if email else None
        phone = normalise_phone(phone) if phone else None

        if anonymous:
            channel = conversation_id = None
        else:
            if channel is not None and channel not in CHANNELS:
                raise ValueError(f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
            if conversation_id is not None and len(conversation_id) > MAX_CONVERSATION_ID_CHARS:
                raise ValueError(f"conversation id longer than {MAX_CONVERSATION_ID_CHARS} characters")

        now = self._now()
        year = now.astimezone(CITY_TZ).year
        values: Dict[str, Any] = {
            "created_at": now,
            "updated_at": now,
            "status": Status.nieuw.value,
            "problem": problem,
            "product_id": product_id,
            "product_other": product_other,
            "proposal": proposal,
            "anonymous": anonymous,
            "consent": consent,
            "consent_at": now if consent else None,
            "contact_name": name,
            "contact_email": email,
            "contact_phone": phone,
            "channel": channel,
            "conversation_id": conversation_id,
            "internal_note": None,
            "contact_purged_at": None,
        }
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
        note = optional_text("note", note, MAX_NOTE_CHARS)
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
        conditions.append(suggestions.c.created_at >= start_of_local_day(filters.date_from))
    if filters.date_to:
        conditions.append(suggestions.c.created_at < start_of_local_day(filters.date_to + timedelta(days=1)))
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

#: Everything callers use as ``kafka.<name>``, also what now lives in kafka_model and kafka_export.
__all__ = [
    "CHANNELS", "CITY_TZ", "CSV_COLUMNS", "ContactNotAllowed", "DEFAULT_PAGE_SIZE", "DEFAULT_RETENTION_DAYS",
    "Filters", "InvalidEmail", "InvalidFilter", "InvalidPhone", "InvalidReference", "InvalidSuggestion",
    "KafkaError", "MAX_CONVERSATION_ID_CHARS", "MAX_EMAIL_CHARS", "MAX_FILTER_DATE", "MAX_NAME_CHARS",
    "MAX_NOTE_CHARS", "MAX_PAGE_SIZE", "MAX_PROBLEM_CHARS", "MAX_PRODUCT_OTHER_CHARS", "MAX_PROPOSAL_CHARS",
    "MIN_FILTER_DATE", "MIN_PROBLEM_WORDS", "PRODUCT_OTHER", "RETENTION_ENV", "Status",
    "StatusChange", "StatusInfo", "Suggestion", "TooLong", "TooShort", "UnknownProduct", "UnknownReference",
    "UnknownStatus", "UnstorableText", "export_csv", "export_json", "format_reference", "parse_reference",
    "parse_status", "retention_days_from_env", "safe_json_dumps", "spreadsheet_safe", "to_record",
    "KafkaRegister", "suggestions", "status_changes", "reference_counters",
]
