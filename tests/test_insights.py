"""Insights on SQLite and PostgreSQL: events become daily aggregates incrementally (each event counted
once, even with two rollups at once), the dashboard figures are right, conversation ids are only
hashed, and the CSV export cannot carry a spreadsheet formula."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.core import insights
from bot.core.db import insight_daily, insight_events

DAY = date(2026, 11, 30)
AT = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc)


def _conversation(engine: Engine, cid: str, channel: str, *, messages: int = 2, fallbacks: int = 0,
                  handoff: str = "", wait: float = 0, at: datetime = AT) -> None:
    insights.record(engine, "conversation", channel=channel, conversation=cid, at=at)
    for _ in range(messages):
        insights.record(engine, "message", channel=channel, at=at)
    for _ in range(fallbacks):
        insights.record(engine, "fallback", channel=channel, at=at)
    if handoff:
        insights.record(engine, "handoff", channel=channel, key=handoff, conversation=cid, at=at)
        insights.record(engine, "agent_wait", channel=channel, value=wait, agent="an", at=at)


def test_the_dashboard_figures(db_engine: Engine) -> None:
    _conversation(db_engine, "whatsapp:+32470000001", "whatsapp", messages=4, fallbacks=1)
    _conversation(db_engine, "whatsapp:+32470000002", "whatsapp", messages=2, handoff="explicit", wait=50)
    _conversation(db_engine, "telegram:1", "telegram", messages=3, fallbacks=1, handoff="misunderstood", wait=400)
    _conversation(db_engine, "web:abc", "webchat", messages=1)
    _conversation(db_engine, "web:abc", "webchat", messages=0)  # the same conversation later that day
    insights.record(db_engine, "booking", key="stadskantoor", at=AT)
    insights.record(db_engine, "booking", key="stadskantoor", at=AT)
    insights.record(db_engine, "reschedule", key="stadskantoor", at=AT)
    insights.record(db_engine, "cancellation", key="rabot", at=AT)
    insights.record(db_engine, "kafka_report", key="reispas", at=AT)
    for topic in ("reispas", "reispas", "ophaalkalender"):
        insights.record(db_engine, "topic", key=topic, at=AT)
    insights.record(db_engine, "csat", key="reispas", value=4, agent="an", at=AT)
    insights.record(db_engine, "csat", key="reispas", value=2, agent="", at=AT)

    figures = insights.summary(db_engine, DAY, DAY)
    assert figures["conversations"] == 4
    assert figures["conversations_per_channel"] == {"whatsapp": 2, "telegram": 1, "webchat": 1}
    assert figures["per_day"] == [{"day": "2026-11-30", "channel": c, "conversations": n}
                                  for c, n in (("telegram", 1), ("webchat", 1), ("whatsapp", 2))]
    assert figures["answered_alone"] == 0.5
    assert figures["messages"] == 10 and figures["fallback_rate"] == 0.2
    assert figures["handoff_rate"] == 0.5 and figures["handoff_reasons"] == {"explicit": 1, "misunderstood": 1}
    assert figures["wait_seconds"]["count"] == 2
    assert figures["offices"] == [{"office": "rabot", "bookings": 0, "reschedules": 0, "cancellations": 1},
                                  {"office": "stadskantoor", "bookings": 2, "reschedules": 1, "cancellations": 0}]
    assert figures["kafka_per_product"] == {"reispas": 1}
    assert figures["top_topics"] == {"reispas": 2, "ophaalkalender": 1}
    assert figures["csat_per_topic"] == {"reispas": {"count": 2, "average": 3.0}}
    assert figures["csat_per_agent"] == {"an": {"count": 1, "average": 4.0}}


def test_wait_percentiles_come_from_the_histogram(db_engine: Engine) -> None:
    for seconds in range(1, 101):  # 1 .. 100 seconds, one each
        insights.record(db_engine, "agent_wait", value=float(seconds), at=AT)
    waits = insights.summary(db_engine, DAY, DAY)["wait_seconds"]
    assert waits["count"] == 100
    assert 45 <= waits["median"] <= 60  # true median 50.5, inside the 45-60 s bucket
    assert 90 <= waits["p95"] <= 120  # true p95 95, inside the 90-120 s bucket


def test_rollups_are_incremental_and_count_each_event_once(db_engine: Engine) -> None:
    _conversation(db_engine, "telegram:1", "telegram")
    assert insights.rollup(db_engine) == 3
    assert insights.rollup(db_engine) == 0
    _conversation(db_engine, "telegram:2", "telegram")
    assert insights.summary(db_engine, DAY, DAY)["conversations"] == 2
    with db_engine.connect() as connection:
        rows = connection.execute(select(insight_daily.c.metric, insight_daily.c.key, insight_daily.c.count)
                                  .order_by(insight_daily.c.metric)).all()
    assert [tuple(r) for r in rows] == [("conversations", "telegram", 2), ("messages", "telegram", 4)]


def test_two_rollups_at_once_never_double_count(db_engine: Engine) -> None:
    for n in range(200):
        insights.record(db_engine, "message", channel="webchat", at=AT + timedelta(seconds=n))
    counted = []
    barrier = threading.Barrier(4)

    def roll() -> None:
        barrier.wait()
        counted.append(insights.rollup(db_engine))

    threads = [threading.Thread(target=roll) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counted) == 200
    assert insights.summary(db_engine, DAY, DAY)["messages"] == 200


def test_days_are_city_days_and_periods_are_inclusive(db_engine: Engine) -> None:
    late = datetime(2026, 11, 30, 23, 30, tzinfo=timezone.utc)  # already 1 December in Ghent
    insights.record(db_engine, "message", channel="webchat", at=late)
    insights.record(db_engine, "message", channel="webchat", at=AT)
    assert insights.summary(db_engine, DAY, DAY)["messages"] == 1
    assert insights.summary(db_engine, DAY, DAY + timedelta(days=1))["messages"] == 2


def test_conversation_ids_are_only_stored_hashed(db_engine: Engine) -> None:
    insights.record(db_engine, "conversation", channel="whatsapp", conversation="whatsapp:+32470123456", at=AT)
    with db_engine.connect() as connection:
        row = connection.execute(select(insight_events)).one()
    assert "+32470123456" not in " ".join(str(v) for v in row)
    with pytest.raises(ValueError):
        insights.record(db_engine, "handoff", channel="whatsapp", key="explicit")  # needs the id to count once
    with pytest.raises(ValueError):
        insights.record(db_engine, "verzonnen")


def test_raw_events_are_purged_after_rollup_but_the_aggregates_stay(db_engine: Engine) -> None:
    insights.record(db_engine, "message", channel="webchat", at=AT)
    old_unrolled = AT - timedelta(days=100)
    assert insights.purge(db_engine, today=DAY + timedelta(days=40)) == 0  # not rolled up yet: kept
    insights.rollup(db_engine)
    insights.record(db_engine, "message", channel="webchat", at=old_unrolled)
    assert insights.purge(db_engine, today=DAY + timedelta(days=40)) == 1
    assert insights.summary(db_engine, DAY, DAY)["messages"] == 1
    assert insights.summary(db_engine, old_unrolled.date(), old_unrolled.date())["messages"] == 1


def test_csv_export_has_the_daily_rows_and_no_formulas(db_engine: Engine) -> None:
    insights.record(db_engine, "kafka_report", key="=HYPERLINK(\"http://x\")", at=AT)
    insights.record(db_engine, "topic", key="reispas", at=AT)
    lines = insights.export_csv(db_engine, DAY, DAY).splitlines()
    assert lines[0] == "day,metric,key,count,total"
    assert lines[1] == "2026-11-30,kafka,\"'=HYPERLINK(\"\"http://x\"\")\",1,0.0"
    assert lines[2] == "2026-11-30,topics,reispas,1,0.0"


def test_an_empty_period_has_no_rates(db_engine: Engine) -> None:
    figures = insights.summary(db_engine, DAY, DAY)
    assert figures["conversations"] == 0 and figures["answered_alone"] is None and figures["fallback_rate"] is None
    assert figures["wait_seconds"] == {"count": 0, "median": None, "p95": None}


def test_note_records_on_the_process_database_and_never_raises(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.core import unanswered

    monkeypatch.setenv("GENTINFO_DATABASE_URL", f"sqlite:///{tmp_path / 'process.db'}")
    monkeypatch.setattr(insights, "_engine", None)
    insights.note("message", channel="webchat", at=AT)
    unanswered.note("mijn gsm is 0470 12 34 56", channel="webchat", reason="fallback")
    engine = insights.default_engine()
    assert insights.summary(engine, DAY, DAY)["messages"] == 1
    assert [c.phrasings[0][0] for c in unanswered.clusters(engine)] == ["mijn gsm is [telefoonnummer]"]
    with engine.begin() as connection:  # the database breaks: the conversation goes on
        connection.exec_driver_sql("drop table insight_events")
        connection.exec_driver_sql("drop table unanswered_questions")
    insights.note("message", channel="webchat", at=AT)
    unanswered.note("nog een vraag", channel="webchat", reason="fallback")
    monkeypatch.setattr(insights, "_engine", None)
