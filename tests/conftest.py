"""Shared fixtures: real Redis and real databases, each test isolated and cleaned up."""
from __future__ import annotations

import os
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.core import db

if TYPE_CHECKING:
    from tests.assistant import Assistant

pytest_plugins = ["tests.fakes.fixtures"]

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
#: Tests use their own Redis database index so they never touch data of a running assistant.
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or REDIS_URL.rsplit("/", 1)[0] + "/15"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_available() -> bool:
    try:
        engine = db.make_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def db_engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """An engine with all project tables, on SQLite and on PostgreSQL (own schema, dropped after)."""
    if request.param == "sqlite":
        engine = db.make_engine(f"sqlite:///{tmp_path / 'test.db'}")
        db.create_schema(engine)
        yield engine
        engine.dispose()
        return
    if os.environ.get("CI") and not _postgres_available():
        pytest.fail(f"PostgreSQL not reachable at {POSTGRES_URL} (scripts/test starts it)")
    if not _postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'create schema "{schema}"'))
    engine = db.make_engine(POSTGRES_URL, schema=schema)
    db.create_schema(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()


@pytest.fixture(autouse=True)
def wiring() -> Iterator[Callable[..., None]]:
    """The one override of the shared services (``bot/wiring.py``): each test starts with none built.

    ``wiring(REDIS_URL=url)`` builds the services of this test from those variables instead of the
    process environment (``REDIS_URL=""`` means no Redis); everything is forgotten after the test.
    """
    from bot import wiring as services

    with ExitStack() as overrides:
        services.reset()
        yield lambda **values: overrides.enter_context(services.override(values))
    services.reset()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """URL of a real Redis database reserved for tests; emptied before and after each test."""
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield TEST_REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The assistant's model, trained once when the data changed (Rasa's fingerprint cache)."""
    from bot.model import ensure_model

    return ensure_model()


@pytest.fixture(scope="session")
def assistant(request: pytest.FixtureRequest, trained_model, tmp_path_factory) -> Iterator["Assistant"]:
    """The real assistant (Rasa server + action server) with every channel pointed at local fakes."""
    from tests.assistant import start_assistant

    env = {
        "GENTINFO_DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('assistant') / 'gentinfo.db'}",
        "REDIS_URL": TEST_REDIS_URL,
    }
    for fake in ("fake_twilio", "fake_telegram"):
        try:
            env.update(request.getfixturevalue(fake).env())
        except pytest.FixtureLookupError:
            pass
    running = start_assistant(trained_model, env)
    yield running
    running.stop()
