"""The durable reminder scheduler: claims due jobs from ``reminder_jobs`` and sends each once.

Exactly once, with any number of workers and across restarts:

1. **Claim** (own transaction, committed): one due ``pending`` job becomes ``sending`` with this
   run's claim token and a lease. PostgreSQL picks it with ``SELECT … FOR UPDATE SKIP LOCKED``, so
   workers never wait for or take each other's job; the ``UPDATE … WHERE state = 'pending'`` guard
   makes the claim atomic on SQLite too (run one worker there: SQLite has one writer anyway).
2. **Send** (second transaction): on PostgreSQL the appointment row is held ``FOR SHARE`` while the
   message goes out, so a cancellation or move waits for the send and then re-plans or cancels;
   the job is re-read and only sent if it is still ours, still ``sending`` and its appointment is
   still booked at the time the reminder was planned for.
3. **Confirm**: ``sent``, guarded by the claim token. A provider refusal is ``failed`` at once
   (invalid number, blocked bot) or retried with exponential back-off (network, 5xx, 429).

A worker killed between 1 and 3 leaves its job ``sending``; when the lease has run out the next
run marks it ``unknown`` and does not send it again: the message may well have gone out, and a
reminder received twice is worse than a reminder whose fate is marked for staff (metrics count
every ``unknown``). Everything else is sent exactly once.
"""
from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Protocol

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine, Row

from bot.core import reminders as r
from bot.core.appointments import appointments
from bot.core.catalogue import Catalogue, get_catalogue
from bot.core.dates import format_moment
from bot.core.kafka import STATUS_LABELS, Status, suggestions
from bot.core.texts import say

logger = logging.getLogger(__name__)

#: Routes a notifier may offer (``Notifier.routes``).
TELEGRAM, WHATSAPP, WHATSAPP_TEMPLATE, SMS, EMAIL = "telegram", "whatsapp", "whatsapp_template", "sms", "email"
#: WhatsApp free text is only delivered within 24 hours of the citizen's last message; keep a margin.
WHATSAPP_WINDOW = timedelta(hours=23, minutes=45)
#: Outcome when no configured route reaches the citizen (job state ``failed``).
NO_ROUTE = "no_route"

APPOINTMENT_SID_ENV = "GENTINFO_REMINDER_CONTENT_SID"
KAFKA_SID_ENV = "GENTINFO_KAFKA_STATUS_CONTENT_SID"

Clock = Callable[[], datetime]
#: (kind, outcome) for metrics: sent | retry | failed | cancelled | expired | unknown | no_route
Outcome = Callable[[str, str], None]


class SendError(Exception):
    """A notifier could not send; ``code`` is for logs and metrics (no personal data)."""

    def __init__(self, code: str, retryable: bool) -> None:
        super().__init__(code)
        self.code = code
        self.retryable = retryable


@dataclass(frozen=True)
class Notice:
    """One message to one citizen, already routed. ``address``: Telegram chat id, E.164 phone or
    e-mail address (never logged)."""

    kind: str
    route: str
    address: str
    text: str
    buttons: List[Dict[str, str]] = field(default_factory=list)
    subject: Optional[str] = None
    content_sid: Optional[str] = None
    content_variables: Dict[str, str] = field(default_factory=dict)


class Notifier(Protocol):
    """What the scheduler needs from the channel SDKs (``connectors.notify``)."""

    routes: FrozenSet[str]

    def send(self, notice: Notice) -> str:
        """Send; return the provider's message id; raise ``SendError``."""


@dataclass(frozen=True)
class Settings:
    hour: time = r.DEFAULT_HOUR
    appointment_content_sid: Optional[str] = None  # approved WhatsApp template, outside the window
    kafka_content_sid: Optional[str] = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Settings":
        return cls(r.send_hour_from_env(environ), environ.get(APPOINTMENT_SID_ENV) or None,
                   environ.get(KAFKA_SID_ENV) or None)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def quick_answers(reference: str) -> List[Dict[str, str]]:
    """"Ik kom" / "Verplaatsen" / "Annuleren": the latter two start the normal manage form with the
    reference already known (the contact check still applies). Under Telegram's 64-byte limit."""
    entity = '{"reference":"%s"}' % reference
    return [{"title": say("reminders.button_coming"), "payload": f"/reminder_confirm{entity}"},
            {"title": say("reminders.button_reschedule"), "payload": f"/appointment_reschedule{entity}"},
            {"title": say("reminders.button_cancel"), "payload": f"/appointment_cancel{entity}"}]


class Scheduler:
    def __init__(self, engine: Engine, notifier: Notifier, *, clock: Clock = _utc_now,
                 settings: Optional[Settings] = None, catalogue: Optional[Catalogue] = None,
                 lease: timedelta = timedelta(minutes=5), max_attempts: int = 5,
                 backoff: timedelta = timedelta(minutes=2), on_outcome: Optional[Outcome] = None) -> None:
        self._engine = engine
        self._notifier = notifier
        self._clock = clock
        self._settings = settings or Settings.from_env()
        self._catalogue = catalogue or get_catalogue()
        self._lease = lease
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._on_outcome = on_outcome or (lambda kind, outcome: None)
        self._postgres = engine.dialect.name == "postgresql"

    def _now(self) -> datetime:
        return self._clock().astimezone(timezone.utc)

    # -- one run ---------------------------------------------------------------------------------
    def run_once(self, limit: int = 100) -> Dict[str, int]:
        """Send what is due (at most ``limit`` jobs); returns a count per outcome."""
        counts: Dict[str, int] = {}

        def count(kind: str, outcome: str) -> None:
            counts[outcome] = counts.get(outcome, 0) + 1
            self._on_outcome(kind, outcome)

        for kind in self._recover():
            count(kind, r.UNKNOWN)
        for _ in range(limit):
            job = self._claim()
            if job is None:
                break
            count(job.kind, self._process(job))
        return counts

    def _recover(self) -> List[str]:
        """Jobs whose worker died mid-send (lease over): ``unknown``, never sent twice."""
        now = r.to_db(self._now())
        jobs = r.reminder_jobs.c
        with self._engine.begin() as connection:
            rows = connection.execute(select(jobs.id, jobs.kind).where(
                jobs.state == r.SENDING, jobs.claimed_until < now)).all()
            for row in rows:
                connection.execute(update(r.reminder_jobs).where(jobs.id == row.id, jobs.state == r.SENDING,
                                                                 jobs.claimed_until < now).values(
                    state=r.UNKNOWN, last_error="worker stopped during send", updated_at=now))
        if rows:
            logger.warning("%d reminder job(s) interrupted during sending: marked unknown, not resent", len(rows))
        return [row.kind for row in rows]

    def _claim(self) -> Optional[Row]:
        now = self._now()
        jobs = r.reminder_jobs.c
        token = secrets.token_hex(16)
        with self._engine.begin() as connection:
            query = select(jobs.id).where(jobs.state == r.PENDING, jobs.due_at <= r.to_db(now)) \
                .order_by(jobs.due_at, jobs.id).limit(1)
            if self._postgres:
                query = query.with_for_update(skip_locked=True)
            job_id = connection.execute(query).scalar()
            if job_id is None:
                return None
            claimed = connection.execute(update(r.reminder_jobs).where(jobs.id == job_id, jobs.state == r.PENDING)
                                         .values(state=r.SENDING, claim_token=token, attempts=jobs.attempts + 1,
                                                 claimed_until=r.to_db(now + self._lease),
                                                 updated_at=r.to_db(now))).rowcount
        if not claimed:  # SQLite: another worker was first; the next round takes the next job
            return self._claim()
        with self._engine.connect() as connection:
            return connection.execute(select(r.reminder_jobs).where(jobs.id == job_id)).first()

    def _process(self, job: Row) -> str:
        jobs = r.reminder_jobs.c
        mine = (jobs.id == job.id, jobs.claim_token == job.claim_token, jobs.state == r.SENDING)
        try:
            with self._engine.begin() as connection:
                subject = self._subject(connection, job)
                current = connection.execute(select(r.reminder_jobs).where(*mine).with_for_update()).first()
                if current is None:
                    return r.CANCELLED  # cancelled or moved while we claimed it: the hook re-planned it
                notice, verdict = self._notice(job, subject)
                if notice is None:  # stale, expired, or no channel configured for this citizen
                    connection.execute(update(r.reminder_jobs).where(*mine).values(
                        state=r.FAILED if verdict == NO_ROUTE else verdict, last_error=verdict,
                        updated_at=r.to_db(self._now())))
                    logger.info("reminder job %s not sent: %s", job.id, verdict)
                    return verdict
                self._notifier.send(notice)
                connection.execute(update(r.reminder_jobs).where(*mine).values(
                    state=r.SENT, sent_at=r.to_db(self._now()), channel=notice.route, last_error=None,
                    updated_at=r.to_db(self._now())))
            logger.info("reminder job %s (%s) sent by %s", job.id, job.kind, notice.route)
            return r.SENT
        except SendError as error:
            return self._failed(job, error)

    def _failed(self, job: Row, error: SendError) -> str:
        jobs = r.reminder_jobs.c
        now = self._now()
        retry = error.retryable and job.attempts < self._max_attempts
        values: Dict[str, Any] = {"last_error": error.code[:120], "updated_at": r.to_db(now), "claim_token": None}
        if retry:
            values.update(state=r.PENDING, due_at=r.to_db(now + self._backoff * 2 ** (job.attempts - 1)))
        else:
            values.update(state=r.FAILED)
        with self._engine.begin() as connection:
            connection.execute(update(r.reminder_jobs).where(
                jobs.id == job.id, jobs.claim_token == job.claim_token, jobs.state == r.SENDING).values(**values))
        logger.warning("reminder job %s attempt %d failed (%s): %s", job.id, job.attempts, error.code,
                       "retry later" if retry else "given up")
        return "retry" if retry else r.FAILED

    # -- what to send ----------------------------------------------------------------------------
    def _subject(self, connection: Connection, job: Row) -> Optional[Row]:
        """The appointment (held FOR SHARE on PostgreSQL until the send is confirmed) or suggestion."""
        if job.kind == r.KIND_APPOINTMENT:
            query = select(appointments).where(appointments.c.id == job.appointment_id)
            return connection.execute(query.with_for_update(read=True) if self._postgres else query).first()
        return connection.execute(select(suggestions).where(suggestions.c.id == job.suggestion_id)).first()

    def _notice(self, job: Row, subject: Optional[Row]) -> "tuple[Optional[Notice], str]":
        if subject is None:
            return None, r.CANCELLED
        if job.kind == r.KIND_APPOINTMENT:
            if subject.status != "booked" or subject.starts_at != job.planned_for:
                return None, r.CANCELLED  # cancelled or moved: never a stale reminder
            if r.from_db(subject.starts_at) <= self._now():
                return None, r.EXPIRED
            notice = self._appointment_notice(subject)
        else:
            if not subject.consent or not (subject.contact_email or subject.contact_phone):
                return None, r.CANCELLED  # consent gone or contact purged by retention
            notice = self._kafka_notice(job, subject)
        return (notice, r.SENT) if notice else (None, NO_ROUTE)

    def _route(self, channel: Optional[str], conversation_id: Optional[str], email: Optional[str],
               phone: Optional[str], last_message_at: Optional[datetime], content_sid: Optional[str]) -> Optional[tuple]:
        """(route, address) on the citizen's own channel first, then e-mail, then SMS."""
        routes = self._notifier.routes
        prefix, _, native = (conversation_id or "").partition(":")
        if channel == "telegram" and prefix == "telegram" and native and TELEGRAM in routes:
            return TELEGRAM, native
        if channel == "whatsapp" and prefix == "whatsapp" and native:
            in_window = last_message_at is not None and self._now() - last_message_at < WHATSAPP_WINDOW
            if in_window and WHATSAPP in routes:
                return WHATSAPP, native
            if content_sid and WHATSAPP_TEMPLATE in routes:
                return WHATSAPP_TEMPLATE, native
        if email and EMAIL in routes:
            return EMAIL, email
        if phone and SMS in routes:
            return SMS, phone
        return None

    def _appointment_notice(self, row: Row) -> Optional[Notice]:
        product = self._catalogue.product(row.product_id)
        location = self._catalogue.location(row.location_id)
        values = {"when": format_moment(r.from_db(row.starts_at)), "product": product.name if product else "",
                  "place": f"{location.name}, {location.address}" if location else "", "reference": row.reference}
        # The booking message is the citizen's last one we know of for sure (it opened the window).
        routed = self._route(row.channel, row.conversation_id, row.email, row.phone, r.from_db(row.created_at),
                             self._settings.appointment_content_sid)
        if routed is None:
            return None
        route, address = routed
        kind = r.KIND_APPOINTMENT
        if route == WHATSAPP_TEMPLATE:
            return Notice(kind, route, address, "", content_sid=self._settings.appointment_content_sid,
                          content_variables={"1": values["when"], "2": values["product"], "3": values["place"],
                                             "4": row.reference})
        if route == EMAIL:
            return Notice(kind, route, address, say("reminders.appointment_email", **values),
                          subject=say("reminders.appointment_email_subject", **values))
        if route == SMS:
            return Notice(kind, route, address, say("reminders.appointment_sms", **values))
        return Notice(kind, route, address, say("reminders.appointment", route, **values),
                      buttons=quick_answers(row.reference))

    def _kafka_notice(self, job: Row, row: Row) -> Optional[Notice]:
        status = Status(job.detail) if job.detail in {s.value for s in Status} else None
        values = {"reference": row.reference, "status": STATUS_LABELS[status] if status else job.detail}
        routed = self._route(row.channel, row.conversation_id, row.contact_email, row.contact_phone, None,
                             self._settings.kafka_content_sid)
        if routed is None:
            return None
        route, address = routed
        if route == WHATSAPP_TEMPLATE:
            return Notice(r.KIND_KAFKA, route, address, "", content_sid=self._settings.kafka_content_sid,
                          content_variables={"1": row.reference, "2": values["status"]})
        subject = say("reminders.kafka_email_subject", **values) if route == EMAIL else None
        return Notice(r.KIND_KAFKA, route, address, say("reminders.kafka_status", route, **values), subject=subject)
