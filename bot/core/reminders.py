"""Reminder jobs: the day-before rule, the citizen's opt-in and the hooks that keep jobs current.

A job is a row in ``reminder_jobs`` in the project database, so it survives restarts and every
worker replica sees the same list (``bot.core.reminder_scheduler`` sends them). Two kinds:

- ``appointment``: one row per appointment (``appointment_id`` is unique); the row *is* the opt-in.
  It is planned for the day before the appointment at ``GENTINFO_REMINDER_HOUR`` (Europe/Brussels),
  whatever day that is (Sunday, holiday, closing day: the citizen is at home, the message still
  goes). ``planned_for`` is the appointment start the job was planned for: a job whose appointment
  was moved or cancelled meanwhile is never sent (the scheduler checks it at send time, and the
  appointment book's ``cancel``/``reschedule`` update the job in their own transaction).
- ``kafka_status``: one row per status change of a KAFKA suggestion whose author gave contact
  details and consent; due at once. A newer change supersedes an unsent older one.

States: ``pending`` -> ``sending`` (claimed, committed before the network call) -> ``sent``; or
``failed`` (gave up), ``cancelled`` (appointment cancelled, or moved too late for a reminder),
``off`` (citizen switched reminders off), ``skipped`` (too late to remind when planned),
``expired`` (appointment started before the job could go), ``superseded`` (KAFKA), ``unknown``
(a worker died during the send: it may have gone out, so it is not sent again).

Times are stored as naive UTC (as ``appointments`` does), the same on SQLite and PostgreSQL.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Mapping, Optional

from sqlalchemy import CheckConstraint, Column, DateTime, ForeignKey, Index, Integer, String, Table, and_, insert, select, update
from sqlalchemy.engine import Connection, Engine, Row

from bot.core import db
from bot.core.dates import BRUSSELS

HOUR_ENV = "GENTINFO_REMINDER_HOUR"
DEFAULT_HOUR = time(18, 0)

KIND_APPOINTMENT = "appointment"
KIND_KAFKA = "kafka_status"

PENDING, SENDING, SENT = "pending", "sending", "sent"
FAILED, CANCELLED, OFF, SKIPPED, EXPIRED, SUPERSEDED, UNKNOWN = (
    "failed", "cancelled", "off", "skipped", "expired", "superseded", "unknown")
STATES = (PENDING, SENDING, SENT, FAILED, CANCELLED, OFF, SKIPPED, EXPIRED, SUPERSEDED, UNKNOWN)
#: States a moved appointment's job is planned again from (``off`` stays off).
_REPLANNABLE = (PENDING, SENDING, SENT, FAILED, CANCELLED, SKIPPED, EXPIRED, UNKNOWN)

_STATE_VALUES = ", ".join(f"'{state}'" for state in STATES)

reminder_jobs = Table(
    "reminder_jobs",
    db.metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("appointment_id", Integer, ForeignKey("appointments.id", ondelete="CASCADE"), unique=True),
    Column("suggestion_id", Integer, ForeignKey("kafka_suggestion.id", ondelete="CASCADE"), index=True),
    Column("detail", String(40)),  # KAFKA: the new status
    Column("planned_for", DateTime),  # appointment start (UTC) this job was planned for
    Column("due_at", DateTime, nullable=False),  # next moment to try (UTC); moves on with back-off
    Column("state", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claim_token", String(32)),
    Column("claimed_until", DateTime),
    Column("channel", String(20)),  # how it went out: telegram, whatsapp, whatsapp_template, sms, email
    Column("last_error", String(120)),  # error class or provider code, never personal data
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    CheckConstraint(f"state IN ({_STATE_VALUES})", name="ck_reminder_jobs_state"),
    CheckConstraint("(appointment_id IS NULL) <> (suggestion_id IS NULL)", name="ck_reminder_jobs_subject"),
)
Index("ix_reminder_jobs_due", reminder_jobs.c.state, reminder_jobs.c.due_at)


class ReminderConfigError(ValueError):
    """A reminder setting in the environment is wrong (message names the variable and the fix)."""


def send_hour_from_env(environ: Mapping[str, str] = os.environ) -> time:
    """``GENTINFO_REMINDER_HOUR`` as ``18`` or ``18:30`` (local Ghent time); default 18:00."""
    raw = (environ.get(HOUR_ENV) or "").strip()
    if not raw:
        return DEFAULT_HOUR
    hours, _, minutes = raw.partition(":")
    if not (hours.isdigit() and (not minutes or minutes.isdigit())):
        raise ReminderConfigError(f"{HOUR_ENV} must look like 18 or 18:30 (got {raw!r})")
    hour, minute = int(hours), int(minutes or 0)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ReminderConfigError(f"{HOUR_ENV} must be a time of day between 00:00 and 23:59 (got {raw!r})")
    return time(hour, minute)


def to_db(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: reminders only take timezone-aware datetimes")
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def from_db(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc)


def reminder_moment(starts_at: datetime, hour: time = DEFAULT_HOUR) -> datetime:
    """When the day-before reminder of an appointment goes out (aware, Europe/Brussels).

    The calendar day before the appointment's *local* day, at ``hour`` local time: across a DST
    change the UTC offset of the reminder is that of its own day, not of the appointment. A local
    time that does not exist (02:30 on the spring change) is moved forward by the gap.
    """
    local_day: date = starts_at.astimezone(BRUSSELS).date() - timedelta(days=1)
    naive = datetime.combine(local_day, hour)
    # zoneinfo resolves a nonexistent wall time with fold=0 to the offset before the gap; a round
    # trip through UTC gives the real instant, which lies just after the gap.
    return naive.replace(tzinfo=BRUSSELS).astimezone(timezone.utc).astimezone(BRUSSELS)


@dataclass(frozen=True)
class Plan:
    """What ``plan`` decided: the state and the due moment (aware)."""

    state: str
    due_at: datetime


def plan(starts_at: datetime, now: datetime, hour: time = DEFAULT_HOUR) -> Plan:
    """A reminder only makes sense while its moment is still ahead; booking (or moving to) an
    appointment for tomorrow after the send hour gets none: the confirmation was just read."""
    due = reminder_moment(starts_at, hour)
    return Plan(PENDING if due > now and starts_at > now else SKIPPED, due)


# -- opt-in and switching off ----------------------------------------------------------------------
def _appointment_row(connection: Connection, reference: str) -> Optional[Row]:
    from bot.core.appointments import appointments  # the book imports this module

    return connection.execute(select(appointments.c.id, appointments.c.starts_at, appointments.c.status)
                              .where(appointments.c.reference == reference)).first()


def opt_in(engine: Engine, reference: str, enabled: bool = True, *, now: Optional[datetime] = None,
           hour: Optional[time] = None) -> Optional[str]:
    """Store the citizen's answer to "Wilt u de dag voordien een herinnering?" with the appointment.

    Returns the job's state (``pending``, ``skipped`` when it is too late, ``off``), or None for an
    unknown reference. Idempotent: answering again updates the same row.
    """
    now = now or datetime.now(timezone.utc)
    hour = hour or send_hour_from_env()
    with engine.begin() as connection:
        row = _appointment_row(connection, reference)
        if row is None:
            return None
        if row.status != "booked":
            state, due = CANCELLED, from_db(row.starts_at)
        elif enabled:
            decided = plan(from_db(row.starts_at), now, hour)
            state, due = decided.state, decided.due_at
        else:
            state, due = OFF, from_db(row.starts_at)
        values = {"state": state, "due_at": to_db(due), "planned_for": row.starts_at, "attempts": 0,
                  "claim_token": None, "claimed_until": None, "last_error": None, "updated_at": to_db(now)}
        changed = connection.execute(update(reminder_jobs).where(
            reminder_jobs.c.appointment_id == row.id, reminder_jobs.c.state != SENT).values(**values)).rowcount
        if changed:
            return state
        stored = connection.execute(select(reminder_jobs.c.state).where(
            reminder_jobs.c.appointment_id == row.id)).scalar()
        if stored is not None:
            return str(stored)  # already sent: a late second answer changes nothing
        connection.execute(insert(reminder_jobs).values(kind=KIND_APPOINTMENT, appointment_id=row.id,
                                                        created_at=to_db(now), **values))
        return state


def switch_off(engine: Engine, conversation_id: str, *, now: Optional[datetime] = None) -> int:
    """Switch off the coming reminders of every appointment booked in this conversation.

    The conversation id is the citizen's own channel address (WhatsApp number, Telegram chat), so
    it needs no reference or contact check; it only ever stops messages. Returns how many.
    """
    from bot.core.appointments import appointments

    now = now or datetime.now(timezone.utc)
    ids = select(appointments.c.id).where(appointments.c.conversation_id == conversation_id,
                                          appointments.c.status == "booked",
                                          appointments.c.starts_at > to_db(now))
    with engine.begin() as connection:
        return int(connection.execute(update(reminder_jobs).where(
            reminder_jobs.c.appointment_id.in_(ids), reminder_jobs.c.state.in_((PENDING, SKIPPED, FAILED)))
            .values(state=OFF, updated_at=to_db(now))).rowcount)


def job_state(engine: Engine, reference: str) -> Optional[str]:
    """The reminder state of an appointment (None: the citizen was never asked)."""
    from bot.core.appointments import appointments

    with engine.connect() as connection:
        return connection.execute(select(reminder_jobs.c.state).join(
            appointments, appointments.c.id == reminder_jobs.c.appointment_id).where(
            appointments.c.reference == reference)).scalar()


# -- hooks, called inside the appointment book's and the KAFKA register's own transactions ---------
def on_cancelled(connection: Connection, appointment_id: int, now: datetime) -> None:
    """The appointment is cancelled: its reminder must never go out (also when being claimed now:
    the scheduler only marks ``sent`` a job that is still ``sending`` under its own claim)."""
    connection.execute(update(reminder_jobs).where(
        reminder_jobs.c.appointment_id == appointment_id,
        reminder_jobs.c.state.in_((PENDING, SENDING, SKIPPED, FAILED))).values(
        state=CANCELLED, claim_token=None, updated_at=to_db(now)))


def on_rescheduled(connection: Connection, appointment_id: int, starts_at: datetime, now: datetime,
                   hour: Optional[time] = None) -> None:
    """The appointment moved: plan its reminder again for the new day (a reminder already sent for
    the old day does not count for the new one). A citizen who switched it off keeps it off."""
    decided = plan(starts_at, now, hour or send_hour_from_env())
    connection.execute(update(reminder_jobs).where(
        reminder_jobs.c.appointment_id == appointment_id, reminder_jobs.c.state.in_(_REPLANNABLE)).values(
        state=decided.state, due_at=to_db(decided.due_at), planned_for=to_db(starts_at), attempts=0,
        claim_token=None, claimed_until=None, last_error=None, sent_at=None, channel=None,
        updated_at=to_db(now)))


def on_kafka_status(connection: Connection, suggestion_id: int, status: str, now: datetime) -> None:
    """A suggestion's status changed: notify its author if they gave contact details and consent.

    The check happens again at send time (the retention purge may erase the contact meanwhile).
    """
    from bot.core.kafka import suggestions

    row = connection.execute(select(suggestions.c.consent, suggestions.c.contact_email, suggestions.c.contact_phone)
                             .where(suggestions.c.id == suggestion_id)).first()
    if row is None or not row.consent or not (row.contact_email or row.contact_phone):
        return
    connection.execute(update(reminder_jobs).where(and_(
        reminder_jobs.c.suggestion_id == suggestion_id, reminder_jobs.c.state == PENDING)).values(
        state=SUPERSEDED, updated_at=to_db(now)))
    connection.execute(insert(reminder_jobs).values(
        kind=KIND_KAFKA, suggestion_id=suggestion_id, detail=status, due_at=to_db(now), state=PENDING,
        attempts=0, created_at=to_db(now), updated_at=to_db(now)))
