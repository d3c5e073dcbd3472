#!/usr/bin/env python
"""msg/s of the assistant with 1, 2, … Rasa processes behind HAProxy on this machine.

For each number of processes: our own ``redis-server`` (loopback, free port), one action server,
N Rasa servers started as production starts them (``python -m bot.server run --endpoints
endpoints.production.yml``: Redis tracker and lock store, so any process takes any message of any
conversation), HAProxy in front (``deploy/haproxy/start``), then the closed loop of
``bench/compare.py`` (10 messages per conversation, the project's mix) at ``--concurrency``
conversations through HAProxy for ``--seconds``. Prints msg/s, p50/p95/p99 and the RSS of each
Rasa process. Bookings and KAFKA suggestions go to SQLite in the run's temporary folder.
Traffic only on 127.0.0.1; every process is stopped at the end.

    .venv/bin/python bench/scale.py [--processes 1 2] [--concurrency 50] [--seconds 60]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.compare import BASE_ENV, Project, rss_mb, run_level, wait_for_answer  # noqa: E402
from bench.run import Process, free_port, machine, wait_http  # noqa: E402
from bot import profile  # noqa: E402


class Cluster(Project):
    """redis-server + action server + N Rasa processes + HAProxy."""

    def __init__(self, workdir: Path, model: Path, processes: int) -> None:
        super().__init__(workdir, model, {})
        self.name = f"{processes} process{'es' if processes > 1 else ''}"
        self.count = processes
        self.rasas: List[Process] = []

    def start(self) -> float:
        redis_port, action_port, balancer_port = free_port(), free_port(), free_port()
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        self.spawn("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(self.workdir)], self.workdir, dict(os.environ))
        target = profile.parse_redis_url(redis_url, production=True)
        env = {**os.environ, **BASE_ENV, "PYTHONPATH": str(ROOT), "REDIS_URL": redis_url,
               "REDIS_HOST": target.host, "REDIS_PORT": str(target.port), "REDIS_DB": str(target.db),
               "REDIS_USERNAME": "", "REDIS_PASSWORD": "", profile.TTL_ENV: str(profile.DEFAULT_TTL_SECONDS),
               "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
               "GENTINFO_DATABASE_URL": f"sqlite:///{self.workdir / 'gentinfo.db'}"}
        for name in [n for n in env if n.startswith(("TWILIO_", "TELEGRAM_"))]:
            del env[name]
        actions = self.spawn("actions", [sys.executable, "-m", "bot.action_server", "--port", str(action_port),
                                         "--host", "127.0.0.1"], ROOT, env)
        wait_http(f"http://127.0.0.1:{action_port}/health", actions.popen)
        started = time.monotonic()
        ports = [free_port() for _ in range(self.count)]
        for number, port in enumerate(ports):
            self.rasas.append(self.spawn(f"rasa{number}", [
                sys.executable, "-m", "bot.server", "run", "--model", str(self.model), "--port", str(port),
                "--interface", "127.0.0.1", "--credentials", "credentials.yml",
                "--endpoints", "endpoints.production.yml"], ROOT, env))
        for port, rasa in zip(ports, self.rasas, strict=True):
            wait_for_answer(f"http://127.0.0.1:{port}", rasa)
        self.rasa = self.rasas[0]
        self.spawn("haproxy", [str(ROOT / "deploy" / "haproxy" / "start"), f"127.0.0.1:{balancer_port}",
                               *map(str, ports)], self.workdir, {**os.environ, "TMPDIR": str(self.workdir)})
        self.url = f"http://127.0.0.1:{balancer_port}"
        wait_for_answer(self.url, self.processes[-1])
        return time.monotonic() - started


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if any(n < 1 or n > 8 for n in args.processes) or not 5 <= args.seconds <= 900:
        parser.error("1 to 8 processes, --seconds 5 to 900")
    for tool in ("redis-server", "haproxy"):
        if not shutil.which(tool):
            parser.error(f"{tool} is not installed")
    from bot.model import ensure_model

    model = args.model or ensure_model()
    print(f"machine: {machine()}", flush=True)
    rows: List[Dict[str, Any]] = []
    for count in args.processes:
        workdir = Path(tempfile.mkdtemp(prefix="gentinfo-scale-"))
        cluster = Cluster(workdir, model, count)
        try:
            ready = cluster.start()
            print(f"{cluster.name}: answering {ready:.1f} s after start", flush=True)
            asyncio.run(run_level(cluster, 5, 10, seed=0))  # warm-up, not counted
            row = asyncio.run(run_level(cluster, args.concurrency, args.seconds, seed=count))
            row["processes"] = count
            row["rss_mb"] = [rss_mb(rasa.popen.pid)["rss_mb"] for rasa in cluster.rasas]
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
        finally:
            cluster.stop()
        if row["failed_conversations"] == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"failed conversations: logs kept in {workdir}")
    print(f"\nload average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n| Rasa processes | msg/s at c={args.concurrency} | p50 ms | p95 ms | p99 ms | failed | RSS MB each |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in rows:
        print(f"| {row['processes']} | {row['messages_per_s']} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | "
              f"{row['failed_conversations']} | {' / '.join(map(str, row['rss_mb']))} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    return 0 if all(row["failed_conversations"] == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
