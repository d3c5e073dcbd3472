"""The reminder worker as a real process: kill -9 in the middle of a send run (SQLite and PostgreSQL),
and two workers side by side (PostgreSQL). Each reminder reaches Telegram (the local fake) exactly once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine

from bot.core import reminders
from bot.core.appointments import SqlAppointmentBook, load_book_config
from bot.core.catalogue import get_catalogue
from bot.core.dates import DateRequest
from tests.conftest import POSTGRES_URL
from tests.fakes.telegram_api import FakeTelegram

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def telegram(fake_telegram: FakeTelegram) -> Iterator[FakeTelegram]:
    fake_telegram.clear()
    yield fake_telegram
    fake_telegram.delay = 0.0


def due_reminders(engine: Engine, count: int, first_chat: int) -> List[int]:
    """``count`` Telegram bookings with a reminder that is due now; returns their chat ids."""
    book = SqlAppointmentBook(engine, get_catalogue(), load_book_config())
    slots = book.free_slots("reispas", None, DateRequest(asap=True), limit=count)
    chats = [first_chat + n for n in range(count)]
    for chat, slot in zip(chats, slots, strict=True):
        booking = book.book(slot, "Jan Peeters", phone="0470 12 34 56", channel="telegram",
                            conversation_id=f"telegram:{chat}")
        reminders.opt_in(engine, booking.reference, True)
    now = datetime.now(timezone.utc)
    with engine.begin() as connection:  # the day before has come (whatever the time of this run)
        connection.execute(update(reminders.reminder_jobs).values(
            state=reminders.PENDING, due_at=reminders.to_db(now - timedelta(minutes=1))))
    return chats


def start_worker(engine: Engine, telegram: FakeTelegram) -> "subprocess.Popen[bytes]":
    database = {"GENTINFO_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            database.update(GENTINFO_DATABASE_URL=POSTGRES_URL,
                            GENTINFO_DB_SCHEMA=connection.execute(text("select current_schema()")).scalar_one())
    env: Dict[str, str] = {
        **{k: v for k, v in os.environ.items() if k != "GENTINFO_DB_SCHEMA"}, **telegram.env(), **database,
        "PYTHONPATH": str(ROOT), "GENTINFO_REMINDER_POLL_SECONDS": "0.2",
        "GENTINFO_REMINDER_LEASE_SECONDS": "2", "GENTINFO_REMINDER_METRICS_PORT": "off",
    }
    for name in ("TWILIO_ACCOUNT_SID", "GENTINFO_SMTP_HOST", "REDIS_URL"):
        env.pop(name, None)
    return subprocess.Popen([sys.executable, "-m", "connectors.reminder_worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def states(engine: Engine) -> Counter:
    with engine.connect() as connection:
        return Counter(connection.execute(select(reminders.reminder_jobs.c.state)).scalars())


def wait_until_settled(engine: Engine, total: int, timeout: float = 60.0) -> Counter:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = states(engine)
        if current[reminders.SENT] + current[reminders.UNKNOWN] == total:
            return current
        time.sleep(0.2)
    raise AssertionError(f"jobs not settled: {states(engine)}")


def stop(worker: "subprocess.Popen[bytes]") -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        assert worker.wait(20) == 0
    finally:
        if worker.poll() is None:
            worker.kill()


def test_worker_killed_during_a_send_run_leaves_every_reminder_sent_exactly_once(
        db_engine: Engine, telegram: FakeTelegram) -> None:
    engine = db_engine  # SQLite: its one worker restarted; PostgreSQL: the same, with row locks
    chats = due_reminders(engine, 10, first_chat=3000)
    telegram.delay = 0.5  # every answer is held back: the kill lands while a message is in flight
    first = start_worker(engine, telegram)
    try:
        telegram.wait_for(4, timeout=60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert first.returncode == -signal.SIGKILL
    in_flight = states(engine)
    assert in_flight[reminders.SENDING] == 1 and in_flight[reminders.SENT] == 3

    telegram.delay = 0.0
    second = start_worker(engine, telegram)
    try:
        settled = wait_until_settled(engine, len(chats))
    finally:
        stop(second)
    sent = Counter(int(call.params["chat_id"]) for call in telegram.sent())
    assert sorted(sent) == chats and set(sent.values()) == {1}
    # the interrupted one reached Telegram before the kill; it is marked, not sent again
    assert settled == Counter({reminders.SENT: 9, reminders.UNKNOWN: 1})


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)  # several workers: PostgreSQL only
def test_two_workers_side_by_side_send_each_reminder_once(db_engine: Engine, telegram: FakeTelegram) -> None:
    engine = db_engine
    chats = due_reminders(engine, 16, first_chat=4000)
    telegram.delay = 0.05
    workers = [start_worker(engine, telegram) for _ in range(2)]
    try:
        settled = wait_until_settled(engine, len(chats))
    finally:
        for worker in workers:
            stop(worker)
    sent = Counter(int(call.params["chat_id"]) for call in telegram.sent())
    assert sorted(sent) == chats and set(sent.values()) == {1}
    assert settled == Counter({reminders.SENT: 16})
