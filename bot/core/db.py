"""One place that turns configuration into a SQLAlchemy engine for the relational stores.

Appointments and KAFKA suggestions live in the same database: a SQLite file under ``var/`` by
default (the embedded profile needs no server), PostgreSQL when ``GENTINFO_DATABASE_URL`` says so.
SQLAlchemy is 1.4 here (Rasa 3.6 pins it); we use its 2.0-style API (``future=True``).
"""
from __future__ import annotations

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
    metadata.create_all(engine)


# --- content studio, unanswered questions and insights (bot/core/content_store.py, unanswered.py,
# insights.py). Defined here so that ``create_schema`` makes them whoever calls it first.

from sqlalchemy import (  # noqa: E402 - kept with the tables below so merges stay clean
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

#: One row per publish or rollback; its id is the content version every process polls.
content_releases = Table(
    "content_releases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("author", String(64), nullable=False),
    Column("note", String(500), nullable=False, default=""),
    Column("rollback_of", Integer, nullable=True),  # the release whose content this one restored
)

#: The documents a release changed (JSON); a document's content at release R is its newest row <= R.
content_documents = Table(
    "content_documents",
    metadata,
    Column("release_id", Integer, ForeignKey("content_releases.id"), primary_key=True),
    Column("name", String(80), primary_key=True),
    Column("body", Text, nullable=False),
    Column("digest", String(64), nullable=False),
)

#: The team's working copy of a document (one draft per document), not yet published.
content_drafts = Table(
    "content_drafts",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("body", Text, nullable=False),
    Column("base_release", Integer, nullable=False),
    Column("author", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Questions the assistant could not answer, scrubbed of personal data before the insert.
unanswered_questions = Table(
    "unanswered_questions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asked_at", DateTime(timezone=True), nullable=False, index=True),
    Column("text", String(500), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("reason", String(20), nullable=False),
    Column("topic_guess", String(80), nullable=True),
    Column("status", String(10), nullable=False, default="open"),  # open | used | dismissed
    Column("resolved_topic", String(80), nullable=True),
    Column("resolved_by", String(64), nullable=True),
)

#: Raw insight events (no message text); rolled up into ``insight_daily`` and then purged.
insight_events = Table(
    "insight_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("day", Date, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("channel", String(20), nullable=False, default=""),
    Column("key", String(120), nullable=False, default=""),  # office, product, topic, reason, agent
    Column("value", Float, nullable=True),  # wait seconds, CSAT score
    Column("agent", String(64), nullable=False, default=""),
    Column("dedupe", String(80), nullable=True, unique=True),  # once per conversation and day
    Column("batch", String(32), nullable=True),  # NULL until a rollup claimed the row
)
Index("insight_events_batch", insight_events.c.batch)

#: Daily aggregates the dashboard reads: (day, metric, key) -> count and total.
insight_daily = Table(
    "insight_daily",
    metadata,
    Column("day", Date, primary_key=True),
    Column("metric", String(30), primary_key=True),
    Column("key", String(120), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("total", Float, nullable=False),
)
Index("insight_daily_metric_day", insight_daily.c.metric, insight_daily.c.day)
