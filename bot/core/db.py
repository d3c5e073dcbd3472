"""One place that turns configuration into a SQLAlchemy engine for the relational stores.

Appointments and KAFKA suggestions live in the same database: a SQLite file under ``var/`` by
default (the embedded profile needs no server), PostgreSQL when ``GENTINFO_DATABASE_URL`` says so.
SQLAlchemy is 1.4 here (Rasa 3.6 pins it); we use its 2.0-style API (``future=True``).
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Optional

from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.future import create_engine

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SQLITE_PATH = ROOT / "var" / "gentinfo.db"

#: All tables of the project register on this metadata, so ``create_schema`` makes them all.
metadata = MetaData()
#: Modules that define tables on ``metadata`` (imported by ``create_schema``).
TABLE_MODULES = ("bot.core.appointments", "bot.core.kafka", "bot.core.reminders")


def database_url() -> str:
    return os.environ.get("GENTINFO_DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}"


def make_engine(url: Optional[str] = None, schema: Optional[str] = None) -> Engine:
    """Create an engine; ``schema`` (PostgreSQL only) isolates e.g. a test run in its own schema."""
    url = url or database_url()
    schema = schema or os.environ.get("GENTINFO_DB_SCHEMA") or None
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL lets readers work while one writer commits; foreign keys are off by default in SQLite.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    connect_args = {"options": f"-csearch_path={schema}"} if schema else {}
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args=connect_args)


def create_schema(engine: Engine) -> None:
    """Create every table that is missing (idempotent; safe to call at each start-up)."""
    # Tables register on ``metadata`` when their module is imported; the reminder jobs refer to
    # the appointments and KAFKA tables, so all three must be known whoever calls first.
    for module in TABLE_MODULES:
        importlib.import_module(module)

    metadata.create_all(engine)
