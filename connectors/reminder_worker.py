"""The reminder worker: ``python -m connectors.reminder_worker`` (started by ``scripts/run``).

Every ``GENTINFO_REMINDER_POLL_SECONDS`` (default 30) it sends what is due in ``reminder_jobs``
(``bot.core.reminder_scheduler``). Any number of replicas may run on PostgreSQL; on SQLite run one.
Prometheus metrics (``gentinfo_reminders{kind,outcome}``) on
``GENTINFO_REMINDER_METRICS_HOST``:``GENTINFO_REMINDER_METRICS_PORT`` (127.0.0.1:5058; ``off``
disables). ``--once`` sends what is due and exits (cron, tests).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from datetime import timedelta
from types import FrameType
from typing import List, Optional

from prometheus_client import start_http_server

from bot import metrics
from bot.core import db
from bot.core.reminder_scheduler import Scheduler
from bot.logsafe import install as install_logsafe
from connectors.notify import ChannelNotifier

logger = logging.getLogger("connectors.reminder_worker")


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name) or ""
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be a number of seconds (got {raw!r})") from None
    if value <= 0:
        raise SystemExit(f"{name} must be more than 0 seconds")
    return value


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectors.reminder_worker")
    parser.add_argument("--once", action="store_true", help="send what is due now, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_logsafe()
    poll = _seconds("GENTINFO_REMINDER_POLL_SECONDS", 30.0)
    lease = _seconds("GENTINFO_REMINDER_LEASE_SECONDS", 300.0)
    engine = db.make_engine()
    try:
        db.create_schema(engine)
    except Exception:  # another process of scripts/run created the same table at the same moment
        time.sleep(1.0)
        db.create_schema(engine)
    notifier = ChannelNotifier()
    if not notifier.routes:
        logger.warning("no channel configured for reminders (TELEGRAM_*, TWILIO_*, GENTINFO_SMTP_*): jobs wait")
    port = os.environ.get("GENTINFO_REMINDER_METRICS_PORT", "5058")
    if port != "off" and not args.once:
        start_http_server(int(port), addr=os.environ.get("GENTINFO_REMINDER_METRICS_HOST", "127.0.0.1"))
    scheduler = Scheduler(engine, notifier, lease=timedelta(seconds=lease), on_outcome=metrics.reminder)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Optional[FrameType]) -> None:
        logger.info("signal %d: stopping after the current send", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logger.info("reminder worker started (routes: %s)", ", ".join(sorted(notifier.routes)) or "none")
    try:
        while not stop.is_set():
            if notifier.routes:
                try:
                    counts = scheduler.run_once()
                    if counts:
                        logger.info("reminder run: %s", counts)
                except Exception:  # database down: try again next round
                    logger.exception("reminder run failed; next try in %.0f s", poll)
            if args.once:
                break
            stop.wait(poll)
    finally:
        notifier.close()
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
