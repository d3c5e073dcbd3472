"""How the assistant does, as numbers: recorded as small events, kept as daily aggregates in SQL.

No message text and no identifiers are stored: an event is a kind, a day, a channel and one key
(office, product, topic, handoff reason), with a number for waits and CSAT; a conversation id only
becomes a one-way hash to count each conversation once a day. :func:`record` writes the raw event
(one insert); :func:`rollup` claims every unrolled event in one ``UPDATE … SET batch`` (so two
processes never count an event twice) and *adds* them to ``insight_daily``. The dashboard reads only
``insight_daily`` (about 50 rows a day), so a year answers in milliseconds. Raw events are deleted
``GENTINFO_INSIGHTS_RAW_DAYS`` (default 35) after they were rolled up.

Waits for an agent are kept as a histogram (bucket edges below), so median and 95th percentile of any
period come from summed buckets (interpolated inside one bucket).

Event kinds and their key: ``conversation`` (first message of a conversation, once a day),
``message`` (each citizen message), ``fallback`` (not understood), ``handoff`` (reason, once per
conversation and day), ``agent_wait`` (value = seconds, agent), ``booking`` / ``reschedule`` /
``cancellation`` (office), ``kafka_report`` (product), ``topic`` (topic id), ``csat`` (topic,
value 1–5, agent).

Tables: ``insight_events``, ``insight_daily`` (bot/core/db.py).
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import secrets
import threading
from datetime import date, datetime, timedelta, timezone
from typing import Any, Dict, Iterable, List, Optional, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.core import db
from bot.core.db import insight_daily, insight_events

logger = logging.getLogger(__name__)

CITY_TZ = ZoneInfo("Europe/Brussels")
RAW_DAYS_ENV = "GENTINFO_INSIGHTS_RAW_DAYS"
DEFAULT_RAW_DAYS = 35

KINDS = ("conversation", "message", "fallback", "handoff", "agent_wait", "booking", "reschedule",
         "cancellation", "kafka_report", "topic", "csat")
#: Kinds counted once per conversation and day (the conversation id is needed, and only hashed).
ONCE_A_DAY = ("conversation", "handoff")
#: Upper edges (seconds) of the wait histogram; the last bucket is open.
WAIT_EDGES = (10, 20, 30, 45, 60, 90, 120, 180, 240, 300, 420, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 14400)
_OPEN = 999_999


def _bucket(seconds: float) -> str:
    return f"{next((edge for edge in WAIT_EDGES if seconds <= edge), _OPEN):06d}"


def _hash(conversation: str) -> str:
    return hashlib.sha256(conversation.encode("utf-8")).hexdigest()[:32]


def _insert(connection: Connection):  # type: ignore[no-untyped-def]
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def record(engine: Engine, kind: str, *, channel: str = "", key: str = "", value: Optional[float] = None,
           agent: str = "", conversation: Optional[str] = None, at: Optional[datetime] = None) -> bool:
    """Store one event; False when it was a repeat of a once-a-day event."""
    if kind not in KINDS:
        raise ValueError(f"unknown insight kind {kind!r}")
    moment = at or datetime.now(timezone.utc)
    day = moment.astimezone(CITY_TZ).date()
    dedupe = None
    if kind in ONCE_A_DAY:
        if not conversation:
            raise ValueError(f"{kind} events need the conversation id (it is only stored hashed)")
        dedupe = f"{kind[0]}:{day.isoformat()}:{_hash(conversation)}"
    values = {"at": moment, "day": day, "kind": kind, "channel": channel[:20], "key": key[:120],
              "value": value, "agent": agent[:64], "dedupe": dedupe}
    with engine.begin() as connection:
        statement = _insert(connection)(insight_events).values(**values).on_conflict_do_nothing()
        return bool(connection.execute(statement).rowcount)


_engine_lock = threading.Lock()
_engine: Optional[Engine] = None


def default_engine() -> Engine:
    """The process's database (``GENTINFO_DATABASE_URL``), tables created once."""
    global _engine
    with _engine_lock:
        if _engine is None:
            engine = db.make_engine()
            db.create_schema(engine)
            _engine = engine
        return _engine


def note(kind: str, **values: Any) -> None:
    """:func:`record` on the process's database for the actions, connectors and console: a failing
    statistic is logged and never breaks a conversation."""
    try:
        record(default_engine(), kind, **values)
    except (SQLAlchemyError, OSError) as error:
        logger.warning("insights: %s event not recorded (%s)", kind, type(error).__name__)


def record_many(engine: Engine, events: Iterable[Dict[str, Any]]) -> int:
    """Bulk insert of prepared rows (the benchmark's seed); same columns as :func:`record` writes."""
    rows = list(events)
    with engine.begin() as connection:
        connection.execute(insight_events.insert(), rows)
    return len(rows)


def _metrics(kind: str, channel: str, key: str, agent: str) -> List[Tuple[str, str]]:
    return {
        "conversation": [("conversations", channel)],
        "message": [("messages", channel)],
        "fallback": [("fallbacks", channel)],
        "handoff": [("handoffs", channel), ("handoff_reason", key)],
        "booking": [("bookings", key)],
        "reschedule": [("reschedules", key)],
        "cancellation": [("cancellations", key)],
        "kafka_report": [("kafka", key)],
        "topic": [("topics", key)],
        "csat": [("csat_topic", key), ("csat_agent", agent)],
    }.get(kind, [])


def rollup(engine: Engine) -> int:
    """Add every event not yet rolled up to the daily aggregates; returns how many events."""
    batch = secrets.token_hex(8)
    sums: Dict[Tuple[date, str, str], List[float]] = {}

    def add(day: date, metric: str, key: str, count: int, total: float) -> None:
        entry = sums.setdefault((day, metric, key), [0, 0.0])
        entry[0] += count
        entry[1] += total

    e = insight_events.c
    with engine.begin() as connection:
        claimed = connection.execute(update(insight_events).where(e.batch.is_(None)).values(batch=batch)).rowcount
        if not claimed:
            return 0
        grouped = connection.execute(
            select(e.day, e.kind, e.channel, e.key, e.agent, func.count(), func.coalesce(func.sum(e.value), 0.0))
            .where(e.batch == batch, e.kind != "agent_wait").group_by(e.day, e.kind, e.channel, e.key, e.agent))
        for day, kind, channel, key, agent, count, total in grouped:
            for metric, metric_key in _metrics(kind, channel, key, agent):
                add(day, metric, metric_key, int(count), float(total))
        waits = connection.execute(select(e.day, e.value, func.count()).where(e.batch == batch, e.kind == "agent_wait")
                                   .group_by(e.day, e.value))
        for day, value, count in waits:
            add(day, "wait", _bucket(float(value or 0)), int(count), float(value or 0) * int(count))
        if sums:
            rows = [{"day": d, "metric": m, "key": k, "count": int(c), "total": t} for (d, m, k), (c, t) in sums.items()]
            statement = _insert(connection)(insight_daily)
            connection.execute(statement.on_conflict_do_update(
                index_elements=["day", "metric", "key"],
                set_={"count": insight_daily.c.count + statement.excluded.count,
                      "total": insight_daily.c.total + statement.excluded.total}), rows)
    return int(claimed)


def purge(engine: Engine, today: Optional[date] = None, days: Optional[int] = None) -> int:
    """Delete raw events rolled up more than the raw retention ago (the aggregates stay)."""
    raw = os.environ.get(RAW_DAYS_ENV, "").strip()
    keep = days or (int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_RAW_DAYS)
    cutoff = (today or datetime.now(CITY_TZ).date()) - timedelta(days=keep)
    e = insight_events.c
    with engine.begin() as connection:
        return int(connection.execute(delete(insight_events).where(e.batch.is_not(None), e.day < cutoff)).rowcount)


# --- the dashboard ---------------------------------------------------------------------------------


def _percentile(buckets: Dict[str, int], q: float) -> Optional[float]:
    total = sum(buckets.values())
    if not total:
        return None
    target, seen, lower = q * total, 0, 0.0
    for key in sorted(buckets):
        upper = float(int(key))
        count = buckets[key]
        if seen + count >= target:
            if int(key) == _OPEN:
                return lower
            return round(lower + (upper - lower) * ((target - seen) / count), 1)
        seen += count
        lower = upper
    return lower


def _ratio(part: float, whole: float) -> Optional[float]:
    return round(part / whole, 4) if whole else None


def summary(engine: Engine, start: date, end: date, *, refresh: bool = True) -> Dict[str, Any]:
    """Everything the dashboard shows for ``start``..``end`` (inclusive), from the daily aggregates."""
    if refresh:
        rollup(engine)
    d = insight_daily.c
    period = and_(d.day >= start, d.day <= end)
    with engine.connect() as connection:
        totals = connection.execute(select(d.metric, d.key, func.sum(d.count), func.sum(d.total))
                                    .where(period).group_by(d.metric, d.key)).all()
        daily = connection.execute(select(d.day, d.key, func.sum(d.count))
                                   .where(period, d.metric == "conversations").group_by(d.day, d.key)
                                   .order_by(d.day)).all()
    by: Dict[str, Dict[str, Tuple[int, float]]] = {}
    for metric, key, count, total in totals:
        by.setdefault(metric, {})[key] = (int(count), float(total or 0))

    def counts(metric: str) -> Dict[str, int]:
        return {k: v[0] for k, v in sorted(by.get(metric, {}).items(), key=lambda item: (-item[1][0], item[0]))}

    conversations = sum(counts("conversations").values())
    handoffs = sum(counts("handoffs").values())
    messages = sum(counts("messages").values())
    waits = counts("wait")
    offices = sorted(set(counts("bookings")) | set(counts("reschedules")) | set(counts("cancellations")))

    def averages(metric: str) -> Dict[str, Dict[str, float]]:
        return {k: {"count": c, "average": round(t / c, 2)} for k, (c, t) in sorted(by.get(metric, {}).items()) if c}

    return {
        "start": start.isoformat(), "end": end.isoformat(),
        "conversations": conversations,
        "conversations_per_channel": counts("conversations"),
        "per_day": [{"day": day.isoformat(), "channel": key, "conversations": int(count)} for day, key, count in daily],
        "answered_alone": _ratio(conversations - handoffs, conversations),
        "messages": messages,
        "fallback_rate": _ratio(sum(counts("fallbacks").values()), messages),
        "handoffs": handoffs,
        "handoff_rate": _ratio(handoffs, conversations),
        "handoff_reasons": counts("handoff_reason"),
        "wait_seconds": {"count": sum(waits.values()), "median": _percentile(waits, 0.5), "p95": _percentile(waits, 0.95)},
        "offices": [{"office": o, "bookings": counts("bookings").get(o, 0), "reschedules": counts("reschedules").get(o, 0),
                     "cancellations": counts("cancellations").get(o, 0)} for o in offices],
        "kafka_per_product": counts("kafka"),
        "top_topics": dict(list(counts("topics").items())[:10]),
        "csat_per_topic": averages("csat_topic"),
        "csat_per_agent": {k: v for k, v in averages("csat_agent").items() if k},
    }


def _cell(value: Any) -> str:
    text = str(value)
    # a spreadsheet must not run a key as a formula
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_csv(engine: Engine, start: date, end: date) -> str:
    """The daily aggregates of a period: ``day,metric,key,count,total`` (semicolon-free, UTF-8)."""
    rollup(engine)
    d = insight_daily.c
    with engine.connect() as connection:
        rows = connection.execute(select(d.day, d.metric, d.key, d.count, d.total)
                                  .where(d.day >= start, d.day <= end).order_by(d.day, d.metric, d.key)).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["day", "metric", "key", "count", "total"])
    for day, metric, key, count, total in rows:
        writer.writerow([day.isoformat(), metric, _cell(key), count, round(float(total), 2)])
    return out.getvalue()
