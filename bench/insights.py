#!/usr/bin/env python
"""Benchmark of the insights dashboard on a year of synthetic events (docs/studio.md).

Seeds ``--days`` days (default 365) of events the way the assistant records them, about
``--per-day`` conversations a day (default 500, weekdays busier than weekends): per conversation a
``conversation`` event and 1-8 ``message`` events, 12% of them a ``fallback``, 8% a ``handoff``
with a reason and an ``agent_wait``, a ``topic``, sometimes a booking, reschedule, cancellation,
KAFKA report or CSAT score. Each day is inserted and then rolled up, as in production (the
dashboard rolls up what is new). Then it times the dashboard's queries (``insights.summary``) for
the last 7, 30 and 365 days and the CSV export of a year, 5 runs each, and prints the figures.

Runs on PostgreSQL in a schema of its own (``TEST_POSTGRES_URL``, dropped afterwards) or, with
``--sqlite`` (or without PostgreSQL), a temporary SQLite file. Loopback only.

    .venv/bin/python bench/insights.py [--days 365] [--per-day 500] [--sqlite]
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from bot.core import db, insights

CHANNELS = (("whatsapp", 0.45), ("webchat", 0.35), ("telegram", 0.15), ("rest", 0.05))
REASONS = (("explicit", 0.6), ("misunderstood", 0.3), ("topic", 0.1))
OFFICES = ("stadskantoor", "rabot", "oostakker", "gentbrugge", "sint_amandsberg", "wondelgem", "drongen")
TOPICS = [f"topic_{n:03d}" for n in range(180)]
PRODUCTS = ("reispas", "identiteitskaart", "rijbewijs", "adreswijziging", "huwelijk", "anders")
AGENTS = ("an", "bert", "sofie", "jamal", "lotte", "pieter")


def _pick(rng: random.Random, weighted: Any) -> str:
    return rng.choices([name for name, _ in weighted], [weight for _, weight in weighted])[0]


def day_events(rng: random.Random, day: date, per_day: int) -> List[Dict[str, Any]]:
    busy = per_day * (1.15 if day.weekday() < 5 else 0.5)
    rows: List[Dict[str, Any]] = []

    def add(kind: str, at: datetime, **values: Any) -> None:
        rows.append({"at": at, "day": day, "kind": kind, "channel": values.get("channel", ""),
                     "key": values.get("key", ""), "value": values.get("value"), "agent": values.get("agent", ""),
                     "dedupe": values.get("dedupe"), "batch": None})

    for number in range(int(rng.gauss(busy, busy * 0.1))):
        at = datetime.combine(day, clock(rng.randint(7, 21), rng.randint(0, 59)), timezone.utc)
        channel = _pick(rng, CHANNELS)
        cid = f"{day}:{number}"
        add("conversation", at, channel=channel, dedupe=f"c:{cid}")
        for _ in range(rng.randint(1, 8)):
            add("message", at, channel=channel)
        if rng.random() < 0.12:
            add("fallback", at, channel=channel)
        add("topic", at, key=TOPICS[min(int(rng.expovariate(1 / 25)), len(TOPICS) - 1)])
        if rng.random() < 0.08:
            agent = rng.choice(AGENTS)
            add("handoff", at, channel=channel, key=_pick(rng, REASONS), dedupe=f"h:{cid}")
            add("agent_wait", at, channel=channel, value=round(rng.lognormvariate(5, 0.9), 1), agent=agent)
            if rng.random() < 0.3:
                add("csat", at, key=TOPICS[rng.randrange(40)], value=float(rng.randint(1, 5)), agent=agent)
        roll = rng.random()
        if roll < 0.10:
            add("booking", at, key=rng.choice(OFFICES))
        elif roll < 0.12:
            add("reschedule", at, key=rng.choice(OFFICES))
        elif roll < 0.14:
            add("cancellation", at, key=rng.choice(OFFICES))
        elif roll < 0.15:
            add("kafka_report", at, key=rng.choice(PRODUCTS))
    return rows


def _timed(function: Any, runs: int = 5) -> List[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return times


def run(engine: Engine, label: str, days: int, per_day: int) -> None:
    rng = random.Random(2026)
    end = date(2026, 11, 30)
    start = end - timedelta(days=days - 1)
    insert_s = rollup_s = 0.0
    events = 0
    rollups: List[float] = []
    for offset in range(days):
        rows = day_events(rng, start + timedelta(days=offset), per_day)
        started = time.perf_counter()
        insights.record_many(engine, rows)
        insert_s += time.perf_counter() - started
        started = time.perf_counter()
        insights.rollup(engine)
        rollups.append(time.perf_counter() - started)
        events += len(rows)
    rollup_s = sum(rollups)
    with engine.connect() as connection:
        daily_rows = connection.execute(select(func.count()).select_from(db.insight_daily)).scalar()
    print(f"\n{label}: {days} days, {events:,} events ({events / days:,.0f}/day), {daily_rows:,} daily aggregate rows")
    print(f"  seed insert {insert_s:.1f} s; rollup of one day's events: median {statistics.median(rollups) * 1000:.0f} ms, "
          f"max {max(rollups) * 1000:.0f} ms (all days {rollup_s:.1f} s)")
    print(f"  {'query':<32} {'median':>9} {'max':>9}")
    for name, since in (("dashboard, last 7 days", 7), ("dashboard, last 30 days", 30), ("dashboard, last 365 days", 365)):
        period_start = end - timedelta(days=since - 1)
        times = _timed(lambda s=period_start: insights.summary(engine, s, end))
        print(f"  {name:<32} {statistics.median(times):>7.1f} ms {max(times):>7.1f} ms")
    times = _timed(lambda: insights.export_csv(engine, start, end))
    print(f"  {'CSV export, 365 days':<32} {statistics.median(times):>7.1f} ms {max(times):>7.1f} ms")
    figures = insights.summary(engine, end - timedelta(days=29), end)
    print(f"  last 30 days: {figures['conversations']:,} conversations, answered alone {figures['answered_alone']:.1%}, "
          f"fallback rate {figures['fallback_rate']:.1%}, wait median {figures['wait_seconds']['median']} s, "
          f"p95 {figures['wait_seconds']['p95']} s")
    purged = insights.purge(engine, today=end)
    print(f"  raw events purged after {insights.DEFAULT_RAW_DAYS} days: {purged:,}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=500)
    parser.add_argument("--sqlite", action="store_true", help="only SQLite (default: PostgreSQL and SQLite)")
    args = parser.parse_args()
    print(f"insights benchmark, {os.cpu_count()} cores, {datetime.now():%Y-%m-%d %H:%M}")
    url = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    if not args.sqlite:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = db.make_engine(url)
        try:
            with admin.begin() as connection:
                connection.execute(text(f'create schema "{schema}"'))
        except Exception as error:
            print(f"PostgreSQL not available ({type(error).__name__}); SQLite only")
        else:
            engine = db.make_engine(url, schema=schema)
            try:
                db.create_schema(engine)
                run(engine, "PostgreSQL", args.days, args.per_day)
            finally:
                engine.dispose()
                with admin.begin() as connection:
                    connection.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        engine = db.make_engine(f"sqlite:///{tmp}/insights.db")
        db.create_schema(engine)
        run(engine, "SQLite", args.days, args.per_day)
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
