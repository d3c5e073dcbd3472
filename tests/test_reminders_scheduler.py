"""The reminder scheduler on SQLite and PostgreSQL, sending with the real SDKs to the local fakes.

Bookings are made with the real appointment book and catalogue under a settable clock; the
scheduler runs under the same clock. Telegram and Twilio are the fakes in tests/fakes, e-mail goes
to a local aiosmtpd server.
"""
from __future__ import annotations

import asyncio
import json
import socket
import threading
from datetime import date, datetime, time, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Dict, Iterator, List, Optional

import pytest
from aiosmtpd.controller import Controller
from prometheus_client import REGISTRY
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from bot import metrics
from bot.core import reminders
from bot.core.appointments import Booking, SqlAppointmentBook, load_book_config
from bot.core.catalogue import get_catalogue
from bot.core.dates import BRUSSELS
from bot.core.kafka import KafkaRegister
from bot.core.reminder_scheduler import Scheduler, Settings
from connectors.notify import ChannelNotifier
from connectors.state import RedisState
from tests.clock import Clock
from tests.fakes.telegram_api import CHAT_ID, FakeTelegram
from tests.fakes.twilio_api import FakeTwilio

MONDAY_MORNING = datetime(2026, 11, 30, 8, 0, tzinfo=BRUSSELS)
TUESDAY, THURSDAY = date(2026, 12, 1), date(2026, 12, 3)
PHONE, EMAIL = "+32470123456", "jan@example.be"
SMS_FROM = "+32460000000"
TEMPLATE_SID = "HX" + "0" * 32
TELEGRAM = f"telegram:{CHAT_ID}"
WHATSAPP = f"whatsapp:{PHONE}"


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), BRUSSELS)


class Mailbox:
    """aiosmtpd handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: List[EmailMessage] = []
        self.recipients: List[List[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def smtp() -> Iterator[Controller]:
    controller = Controller(Mailbox(), hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def mailbox(smtp: Controller) -> Mailbox:
    box: Mailbox = smtp.handler
    box.messages.clear()
    box.recipients.clear()
    return box


@pytest.fixture
def env(fake_telegram: FakeTelegram, fake_twilio: FakeTwilio, smtp: Controller) -> Dict[str, str]:
    fake_telegram.clear()
    fake_twilio.clear()
    return {**fake_telegram.env(), **fake_twilio.env(), "TWILIO_SMS_FROM": SMS_FROM,
            "GENTINFO_SMTP_HOST": "127.0.0.1", "GENTINFO_SMTP_PORT": str(smtp.port),
            "GENTINFO_SMTP_SECURITY": "none", "GENTINFO_SMTP_FROM": "afspraken@stad.gent"}


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY_MORNING)


@pytest.fixture
def book(db_engine: Engine, clock: Clock) -> SqlAppointmentBook:
    return SqlAppointmentBook(db_engine, get_catalogue(), load_book_config(), clock=clock)


class Run:
    """A scheduler with a real notifier under the test clock; ``outcomes`` records every outcome."""

    def __init__(self, engine: Engine, clock: Clock, env: Dict[str, str], settings: Optional[Settings] = None,
                 **options: Any) -> None:
        self.notifier = ChannelNotifier(env)
        self.outcomes: List[str] = []

        def record(kind: str, outcome: str) -> None:
            self.outcomes.append(outcome)
            metrics.reminder(kind, outcome)

        self.scheduler = Scheduler(engine, self.notifier, clock=clock, on_outcome=record,
                                   settings=settings or Settings(hour=time(18)), **options)

    def __call__(self) -> Dict[str, int]:
        return self.scheduler.run_once()


@pytest.fixture
def run(db_engine: Engine, clock: Clock, env: Dict[str, str]) -> Iterator[Run]:
    runner = Run(db_engine, clock, env)
    yield runner
    runner.notifier.close()


def book_on(book: SqlAppointmentBook, day: date, conversation: Optional[str], *, phone: Optional[str] = PHONE,
            email: Optional[str] = None, product: str = "reispas", index: int = 0) -> Booking:
    slot = book.free_slots(product, "stadskantoor", day, limit=index + 1)[index]
    channel = conversation.partition(":")[0] if conversation else "web"
    return book.book(slot, "Jan Peeters", phone=phone, email=email, channel=channel, conversation_id=conversation)


def opt_in(book: SqlAppointmentBook, booking: Booking, clock: Clock, enabled: bool = True) -> Optional[str]:
    return reminders.opt_in(book.engine, booking.reference, enabled, now=clock(), hour=time(18))


def payloads(call: Any) -> List[str]:
    return [row[0]["callback_data"] for row in call.params["reply_markup"]["inline_keyboard"]]


# -- the day before, once ---------------------------------------------------------------------------
def test_reminder_is_sent_once_the_day_before_at_the_send_hour_on_telegram(
        book: SqlAppointmentBook, clock: Clock, run: Run, fake_telegram: FakeTelegram) -> None:
    booking = book_on(book, TUESDAY, TELEGRAM)
    assert opt_in(book, booking, clock) == reminders.PENDING
    clock.now = at(date(2026, 11, 30), 17, 59)
    assert run() == {} and fake_telegram.sent() == []
    clock.now = at(date(2026, 11, 30), 18, 0)
    assert run() == {"sent": 1}
    clock.now = at(date(2026, 11, 30), 18, 5)
    assert run() == {}
    [call] = fake_telegram.sent()
    assert call.params["chat_id"] == str(CHAT_ID)
    assert booking.reference in call.params["text"] and "morgen" in call.params["text"]
    reference = json.dumps({"reference": booking.reference}, separators=(",", ":"))
    assert payloads(call) == [f"/reminder_confirm{reference}", f"/appointment_reschedule{reference}",
                              f"/appointment_cancel{reference}"]
    assert reminders.job_state(book.engine, booking.reference) == reminders.SENT


def test_answering_again_updates_the_one_stored_answer_until_the_reminder_went_out(
        book: SqlAppointmentBook, clock: Clock, run: Run) -> None:
    booking = book_on(book, TUESDAY, TELEGRAM)
    assert opt_in(book, booking, clock, enabled=False) == reminders.OFF
    assert opt_in(book, booking, clock) == reminders.PENDING
    clock.now = at(date(2026, 11, 30), 18)
    assert run() == {"sent": 1}
    assert opt_in(book, booking, clock, enabled=False) == reminders.SENT
    with book.engine.connect() as connection:
        assert len(connection.execute(select(reminders.reminder_jobs)).all()) == 1


def test_no_answer_means_no_reminder_and_no_means_off(book: SqlAppointmentBook, clock: Clock, run: Run,
                                                      fake_telegram: FakeTelegram) -> None:
    asked_no = book_on(book, TUESDAY, TELEGRAM)
    never_asked = book_on(book, TUESDAY, TELEGRAM, index=1)
    assert opt_in(book, asked_no, clock, enabled=False) == reminders.OFF
    clock.now = at(date(2026, 11, 30), 18)
    assert run() == {} and fake_telegram.sent() == []
    assert reminders.job_state(book.engine, never_asked.reference) is None


def test_cancelled_appointment_never_gets_its_reminder(book: SqlAppointmentBook, clock: Clock, run: Run,
                                                       fake_telegram: FakeTelegram) -> None:
    booking = book_on(book, TUESDAY, TELEGRAM)
    opt_in(book, booking, clock)
    book.cancel(booking.reference, PHONE)
    clock.now = at(date(2026, 11, 30), 18)
    assert run() == {} and fake_telegram.sent() == []
    assert reminders.job_state(book.engine, booking.reference) == reminders.CANCELLED


def test_moved_appointment_is_reminded_the_day_before_its_new_day_only(
        book: SqlAppointmentBook, clock: Clock, run: Run, fake_telegram: FakeTelegram) -> None:
    booking = book_on(book, TUESDAY, TELEGRAM)
    opt_in(book, booking, clock)
    new_slot = book.free_slots("reispas", "stadskantoor", THURSDAY, limit=1)[0]
    book.reschedule(booking.reference, PHONE, new_slot)
    clock.now = at(date(2026, 11, 30), 18)
    assert run() == {}
    clock.now = at(date(2026, 12, 2), 18)
    assert run() == {"sent": 1}
    [call] = fake_telegram.sent()
    assert "donderdag 3 december" in call.params["text"]


def test_appointment_moved_after_its_reminder_gets_a_new_one_for_the_new_day(
        book: SqlAppointmentBook, clock: Clock, run: Run, fake_telegram: FakeTelegram) -> None:
    booking = book_on(book, TUESDAY, TELEGRAM)
    opt_in(book, booking, clock)
    clock.now = at(date(2026, 11, 30), 18)
    assert run() == {"sent": 1}
    clock.now = at(date(2026, 11, 30), 19)
    book.reschedule(booking.reference, PHONE, book.free_slots("reispas", "stadskantoor", THURSDAY, limit=1)[0])
    clock.now = at(date(2026, 12, 2), 18)
    assert run() == {"sent": 1}
    assert ["dinsdag 1 december" in c.params["text"] for c in fake_telegram.sent()] == [True, False]


def test_job_claimed_then_cancelled_before_the_send_is_not_sent(
        book: SqlAppointmentBook, clock: Clock, run: Run, fake_telegram: FakeTelegram) -> None:
    booking = book_on(book, TUESDAY, TELEGRAM)
    opt_in(book, booking, clock)
    clock.now = at(date(2026, 11, 30), 18)
    job = run.scheduler._claim()  # a worker took the job ...
    assert job is not None
    book.cancel(booking.reference, PHONE)  # ... and the citizen cancels before it sends
    assert run.scheduler._process(job) == reminders.CANCELLED
    assert fake_telegram.sent() == []


def test_reminder_for_an_appointment_that_already_started_is_dropped(
        book: SqlAppointmentBook, clock: Clock, run: Run, fake_telegram: FakeTelegram) -> None:
    booking = book_on(book, TUESDAY, TELEGRAM)
    opt_in(book, booking, clock)
    clock.now = booking.starts_at + timedelta(minutes=1)  # the worker was down for a day
    assert run() == {"expired": 1} and fake_telegram.sent() == []


def test_switching_off_stops_the_coming_reminders_of_that_conversation_only(
        book: SqlAppointmentBook, clock: Clock, run: Run, fake_telegram: FakeTelegram) -> None:
    mine = book_on(book, TUESDAY, TELEGRAM)
    other = book_on(book, TUESDAY, "telegram:555", index=1)
    opt_in(book, mine, clock)
    opt_in(book, other, clock)
    assert reminders.switch_off(book.engine, TELEGRAM, now=clock()) == 1
    clock.now = at(date(2026, 11, 30), 18)
    assert run() == {"sent": 1}
    assert [c.params["chat_id"] for c in fake_telegram.sent()] == ["555"]
    assert reminders.job_state(book.engine, mine.reference) == reminders.OFF


# -- WhatsApp: free text inside the 24-hour window, else the approved template ---------------------
def test_whatsapp_inside_the_window_is_free_text_with_numbered_quick_answers(
        book: SqlAppointmentBook, clock: Clock, db_engine: Engine, env: Dict[str, str], fake_twilio: FakeTwilio,
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    booking = book_on(book, TUESDAY, WHATSAPP)  # booked Monday 8:00: the window is open until Tuesday 8:00
    opt_in(book, booking, clock)
    clock.now = at(date(2026, 11, 30), 18)
    runner = Run(db_engine, clock, env, settings=Settings(hour=time(18), appointment_content_sid=TEMPLATE_SID))
    try:
        assert runner() == {"sent": 1}
    finally:
        runner.notifier.close()
    [call] = fake_twilio.calls
    assert call.params["To"] == WHATSAPP and "ContentSid" not in call.params
    assert booking.reference in call.params["Body"]
    assert "1. Ik kom\n2. Verplaatsen\n3. Annuleren" in call.params["Body"]
    # the Rasa server maps the citizen's "2" with the buttons remembered in the shared Redis
    offered = asyncio.run(RedisState(redis_url).offered_buttons(WHATSAPP))
    assert offered[1]["payload"] == '/appointment_reschedule{"reference":"%s"}' % booking.reference


def test_whatsapp_outside_the_window_sends_the_approved_template(
        book: SqlAppointmentBook, clock: Clock, db_engine: Engine, env: Dict[str, str],
        fake_twilio: FakeTwilio) -> None:
    booking = book_on(book, THURSDAY, WHATSAPP)
    opt_in(book, booking, clock)
    clock.now = at(date(2026, 12, 2), 18)  # 58 hours after the booking message
    runner = Run(db_engine, clock, env, settings=Settings(hour=time(18), appointment_content_sid=TEMPLATE_SID))
    try:
        assert runner() == {"sent": 1}
    finally:
        runner.notifier.close()
    [call] = fake_twilio.calls
    assert call.status == 201 and call.params["To"] == WHATSAPP and "Body" not in call.params
    assert call.params["ContentSid"] == TEMPLATE_SID
    variables = json.loads(call.params["ContentVariables"])
    assert variables["1"].startswith("donderdag 3 december om") and variables["4"] == booking.reference


def test_whatsapp_outside_the_window_without_template_falls_back_to_sms(
        book: SqlAppointmentBook, clock: Clock, run: Run, fake_twilio: FakeTwilio) -> None:
    booking = book_on(book, THURSDAY, WHATSAPP)
    opt_in(book, booking, clock)
    clock.now = at(date(2026, 12, 2), 18)
    assert run() == {"sent": 1}
    [call] = fake_twilio.calls
    assert (call.params["To"], call.params["From"]) == (PHONE, SMS_FROM)
    assert booking.reference in call.params["Body"] and len(call.params["Body"]) <= 320


# -- web chat: e-mail or SMS ------------------------------------------------------------------------
def test_web_booking_with_an_email_address_gets_the_reminder_by_email(
        book: SqlAppointmentBook, clock: Clock, run: Run, mailbox: Mailbox) -> None:
    booking = book_on(book, TUESDAY, "web:4f0c", phone=None, email=EMAIL)
    opt_in(book, booking, clock)
    clock.now = at(date(2026, 11, 30), 18)
    assert run() == {"sent": 1}
    [message] = mailbox.messages
    assert mailbox.recipients == [[EMAIL]]
    assert message["Subject"].startswith("Herinnering: uw afspraak op dinsdag 1 december om ")
    assert message["Auto-Submitted"] == "auto-generated" and message["Message-ID"]
    body = message.get_content()
    assert booking.reference in body and "09 210 10 10" in body


def test_web_booking_with_a_phone_number_only_gets_an_sms(book: SqlAppointmentBook, clock: Clock, run: Run,
                                                          fake_twilio: FakeTwilio, mailbox: Mailbox) -> None:
    booking = book_on(book, TUESDAY, "web:4f0c")
    opt_in(book, booking, clock)
    clock.now = at(date(2026, 11, 30), 18)
    assert run() == {"sent": 1}
    [call] = fake_twilio.calls
    assert call.params["To"] == PHONE and booking.reference in call.params["Body"]
    assert mailbox.messages == []


def test_citizen_no_configured_channel_reaches_is_failed_not_retried(
        book: SqlAppointmentBook, clock: Clock, db_engine: Engine, fake_telegram: FakeTelegram) -> None:
    booking = book_on(book, TUESDAY, "web:4f0c")  # phone only, and no SMS configured
    opt_in(book, booking, clock)
    clock.now = at(date(2026, 11, 30), 18)
    runner = Run(db_engine, clock, fake_telegram.env())
    try:
        assert runner() == {"no_route": 1}
        assert runner() == {}
    finally:
        runner.notifier.close()
    assert reminders.job_state(db_engine, booking.reference) == reminders.FAILED


# -- failures: back-off, giving up, metrics ---------------------------------------------------------
def _sample(outcome: str) -> float:
    return REGISTRY.get_sample_value("gentinfo_reminders_total", {"kind": "appointment", "outcome": outcome}) or 0.0


def test_unreachable_api_is_retried_with_growing_back_off_then_given_up_and_counted(
        book: SqlAppointmentBook, clock: Clock, db_engine: Engine, fake_telegram: FakeTelegram) -> None:
    booking = book_on(book, TUESDAY, TELEGRAM)
    opt_in(book, booking, clock)
    unreachable = {**fake_telegram.env(), "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{_free_port()}/bot"}
    retries, failures = _sample("retry"), _sample("failed")
    runner = Run(db_engine, clock, unreachable, max_attempts=3, backoff=timedelta(minutes=2))
    jobs = reminders.reminder_jobs.c
    due: List[datetime] = []
    try:
        clock.now = at(date(2026, 11, 30), 18)
        for _ in range(3):
            assert runner() in ({"retry": 1}, {"failed": 1})
            with db_engine.connect() as connection:
                due.append(reminders.from_db(connection.execute(select(jobs.due_at)).scalar_one()))
            clock.now = due[-1]
    finally:
        runner.notifier.close()
    start = at(date(2026, 11, 30), 18)
    assert [d - start for d in due[:2]] == [timedelta(minutes=2), timedelta(minutes=2 + 4)]
    assert reminders.job_state(db_engine, booking.reference) == reminders.FAILED
    assert (_sample("retry") - retries, _sample("failed") - failures) == (2, 1)


def test_refused_message_is_failed_at_once(book: SqlAppointmentBook, clock: Clock, db_engine: Engine,
                                           fake_telegram: FakeTelegram) -> None:
    booking = book_on(book, TUESDAY, TELEGRAM)
    opt_in(book, booking, clock)
    wrong_token = {**fake_telegram.env(), "TELEGRAM_BOT_TOKEN": "1:wrong"}
    runner = Run(db_engine, clock, wrong_token)
    try:
        clock.now = at(date(2026, 11, 30), 18)
        assert runner() == {"failed": 1}
    finally:
        runner.notifier.close()
    with db_engine.connect() as connection:
        row = connection.execute(select(reminders.reminder_jobs)).one()
    assert (row.state, row.attempts, row.last_error) == (reminders.FAILED, 1, "telegram_InvalidToken")


def test_job_of_a_worker_that_died_mid_send_is_marked_unknown_and_never_resent(
        book: SqlAppointmentBook, clock: Clock, run: Run, fake_telegram: FakeTelegram) -> None:
    booking = book_on(book, TUESDAY, TELEGRAM)
    opt_in(book, booking, clock)
    clock.now = at(date(2026, 11, 30), 18)
    assert run.scheduler._claim() is not None  # claimed, then the process "dies"
    clock.now = at(date(2026, 11, 30), 18, 6)  # lease (5 minutes) over
    assert run() == {"unknown": 1}
    assert run() == {} and fake_telegram.sent() == []
    assert reminders.job_state(book.engine, booking.reference) == reminders.UNKNOWN


def test_two_schedulers_at_once_send_every_reminder_exactly_once(
        book: SqlAppointmentBook, clock: Clock, db_engine: Engine, env: Dict[str, str],
        fake_telegram: FakeTelegram) -> None:
    bookings = [book_on(book, TUESDAY, f"telegram:{1000 + n}", index=n) for n in range(12)]
    for booking in bookings:
        opt_in(book, booking, clock)
    clock.now = at(date(2026, 11, 30), 18)
    runners = [Run(db_engine, clock, env) for _ in range(2)]
    threads = [threading.Thread(target=runner) for runner in runners]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for runner in runners:
            runner.notifier.close()
    chats = sorted(int(c.params["chat_id"]) for c in fake_telegram.sent())
    assert chats == list(range(1000, 1012))
    assert sum(len(runner.outcomes) for runner in runners) == 12


# -- KAFKA status notifications ---------------------------------------------------------------------
def test_kafka_status_change_notifies_a_consenting_author_and_no_one_else(
        db_engine: Engine, clock: Clock, run: Run, mailbox: Mailbox) -> None:
    register = KafkaRegister(db_engine, clock=clock)
    named = register.file_suggestion("Het formulier voor een parkeerkaart is veel te lang", consent=True,
                                     contact_name="An", contact_email=EMAIL, channel="web",
                                     conversation_id="web:4f0c")
    anonymous = register.file_suggestion("Te veel papieren nodig voor een verhuis", anonymous=True)
    register.update_status(named.reference, "in_behandeling")
    register.update_status(named.reference, "doorgestuurd")  # supersedes the unsent first change
    register.update_status(anonymous.reference, "uitgevoerd")
    assert run() == {"sent": 1}
    [message] = mailbox.messages
    assert mailbox.recipients == [[EMAIL]]
    assert message["Subject"] == f"Uw melding {named.reference}: Doorgestuurd naar de juiste dienst"
    assert named.reference in message.get_content()
    with db_engine.connect() as connection:
        states = sorted(connection.execute(select(reminders.reminder_jobs.c.state)).scalars())
    assert states == [reminders.SENT, reminders.SUPERSEDED]


def test_kafka_notification_is_dropped_when_retention_erased_the_contact(
        db_engine: Engine, clock: Clock, run: Run, mailbox: Mailbox) -> None:
    register = KafkaRegister(db_engine, clock=clock)
    named = register.file_suggestion("Het formulier voor een parkeerkaart is veel te lang", consent=True,
                                     contact_email=EMAIL)
    register.update_status(named.reference, "uitgevoerd")
    clock.now += timedelta(seconds=1)
    assert register.purge_contact_details(older_than_days=0) == 1
    assert run() == {"cancelled": 1} and mailbox.messages == []


def test_opt_in_for_an_unknown_reference_stores_nothing(db_engine: Engine, clock: Clock) -> None:
    assert reminders.opt_in(db_engine, "GNT-22222", True, now=clock()) is None
    with db_engine.connect() as connection:
        assert connection.execute(select(reminders.reminder_jobs)).first() is None
    with db_engine.begin() as connection:  # hooks on unknown ids are harmless no-ops
        reminders.on_cancelled(connection, 424242, clock())
        connection.execute(update(reminders.reminder_jobs).values(state=reminders.OFF))


def test_kafka_status_reaches_a_consenting_telegram_author_in_their_chat(
        db_engine: Engine, clock: Clock, run: Run, fake_telegram: FakeTelegram, mailbox: Mailbox) -> None:
    register = KafkaRegister(db_engine, clock=clock)
    named = register.file_suggestion("Het formulier voor een parkeerkaart is veel te lang", consent=True,
                                     contact_email=EMAIL, channel="telegram", conversation_id=TELEGRAM)
    register.update_status(named.reference, "uitgevoerd", note="intern: niet voor de burger")
    assert run() == {"sent": 1}
    [call] = fake_telegram.sent()
    assert call.params["chat_id"] == str(CHAT_ID) and "reply_markup" not in call.params
    assert named.reference in call.params["text"] and "'Uitgevoerd'" in call.params["text"]
    assert "intern" not in call.params["text"] and mailbox.messages == []


def test_kafka_status_outside_the_whatsapp_window_uses_its_own_template(
        db_engine: Engine, clock: Clock, env: Dict[str, str], fake_twilio: FakeTwilio) -> None:
    register = KafkaRegister(db_engine, clock=clock)
    named = register.file_suggestion("Het formulier voor een parkeerkaart is veel te lang", consent=True,
                                     contact_phone=PHONE, channel="whatsapp", conversation_id=WHATSAPP)
    register.update_status(named.reference, "afgewezen")
    runner = Run(db_engine, clock, env, settings=Settings(hour=time(18), kafka_content_sid=TEMPLATE_SID))
    try:
        assert runner() == {"sent": 1}
    finally:
        runner.notifier.close()
    [call] = fake_twilio.calls
    assert (call.params["To"], call.params["ContentSid"]) == (WHATSAPP, TEMPLATE_SID)
    assert json.loads(call.params["ContentVariables"]) == {"1": named.reference, "2": "Afgewezen"}
