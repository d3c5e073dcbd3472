#!/usr/bin/env python
"""Load benchmark of the assistant as production runs it, over Rasa's REST channel, on 127.0.0.1.

Starts its own redis-server (free port, loopback, append-only file), the action server
(``python -m bot.action_server``) and one Rasa server with ``endpoints.production.yml`` (Redis
tracker and lock store); bookings and KAFKA suggestions go to PostgreSQL in a schema of their own
(``TEST_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``; dropped afterwards)
or, without PostgreSQL, to a temporary SQLite file. Then, for 10, 50 and 100 concurrent
conversations, each conversation runs to its end, waiting for every answer like a citizen:

- 6 in 10: two or three general questions (FAQ),
- 2 in 10: a multi-turn conversation that relies on context ("reispas" ... "hoeveel kost dat?"),
- 1 in 10: a full appointment booking (appointment_form, stored in the database),
- 1 in 10: an anonymous KAFKA suggestion (kafka_form, stored in the database).

Prints latency per message (p50/p95/p99), messages per second and the peak resident memory of
each process (VmHWM from /proc). Bounded: at most 100 conversations per level, 60 s per request,
``--level-timeout`` seconds per level (default 300). Nothing but loopback traffic.

    .venv/bin/python bench/run.py [--levels 10 50 100] [--json bench/results/run.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bot import profile  # noqa: E402

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUEST_TIMEOUT = 60.0

FAQ = [
    "hoeveel kost een reispas?", "wat moet ik meebrengen voor een identiteitskaart?", "kids-id?",
    "wanneer is het stadskantoor open?", "wanneer is het wijkkantoor oostakker open", "hoe verhuis ik?",
    "moet ik een afspraak maken voor een rijbewijs?", "waar kan ik een uittreksel uit het strafregister krijgen",
    "hoe lang duurt een reispas?", "wat is het telefoonnummer van gentinfo", "hallo", "bedankt",
    "kan ik mijn identiteitskaart laten opsturen?", "wat kost een rijbewijs", "waar zijn de wijkkantoren?",
]
MULTI_TURN = ["ik heb een nieuwe reispas nodig", "en hoeveel kost dat?", "moet ik een afspraak maken?",
              "hoe lang duurt het?"]
KAFKA_PROBLEM = ("Voor mijn bewonerskaart moet ik het inschrijvingsbewijs opsturen, terwijl de stad dat zelf "
                 "kan opvragen.")


# -- processes ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen

    def peak_rss_mb(self) -> Optional[float]:
        """Peak resident set size (VmHWM) of the process, from /proc."""
        try:
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()


def wait_http(url: str, process: subprocess.Popen, timeout: float = 300) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: process exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {timeout} s")


class Stack:
    """redis-server + action server + Rasa server, all on 127.0.0.1."""

    def __init__(self, workdir: Path, model: Path) -> None:
        self.workdir = workdir
        self.model = model
        self.processes: List[Process] = []
        self.schema: Optional[str] = None
        self.database = "SQLite"

    def _database_url(self) -> Dict[str, str]:
        from sqlalchemy import text

        from bot.core import db

        try:
            admin = db.make_engine(POSTGRES_URL)
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            with admin.begin() as connection:
                connection.execute(text(f'create schema "{schema}"'))
            db.create_schema(db.make_engine(POSTGRES_URL, schema=schema))
            admin.dispose()
            self.schema, self.database = schema, "PostgreSQL"
            return {"GENTINFO_DATABASE_URL": POSTGRES_URL, "GENTINFO_DB_SCHEMA": schema}
        except Exception:
            return {"GENTINFO_DATABASE_URL": f"sqlite:///{self.workdir / 'bench.db'}"}

    def start(self) -> str:
        redis_port, action_port, rasa_port = free_port(), free_port(), free_port()
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        logs = self.workdir
        redis = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--dir", str(self.workdir)], stdout=(logs / "redis.log").open("w"), stderr=subprocess.STDOUT)
        self.processes.append(Process("redis-server", redis))
        target = profile.parse_redis_url(redis_url, production=True)
        env = {
            **os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "RASA_TELEMETRY_ENABLED": "false", "REDIS_URL": redis_url,
            "REDIS_HOST": target.host, "REDIS_PORT": str(target.port), "REDIS_DB": str(target.db),
            "REDIS_USERNAME": "", "REDIS_PASSWORD": "",
            profile.TTL_ENV: str(profile.DEFAULT_TTL_SECONDS),
            "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
            **self._database_url(),
        }
        for name in [n for n in env if n.startswith(("TWILIO_", "TELEGRAM_"))]:
            del env[name]
        actions = subprocess.Popen(
            [sys.executable, "-m", "bot.action_server", "--port", str(action_port), "--host", "127.0.0.1"],
            cwd=ROOT, env=env, stdout=(logs / "actions.log").open("w"), stderr=subprocess.STDOUT)
        self.processes.append(Process("action server", actions))
        rasa = subprocess.Popen(
            [sys.executable, "-m", "bot.server", "run", "--model", str(self.model), "--port", str(rasa_port),
             "--interface", "127.0.0.1", "--credentials", "credentials.yml", "--endpoints",
             "endpoints.production.yml"],
            cwd=ROOT, env=env, stdout=(logs / "rasa.log").open("w"), stderr=subprocess.STDOUT)
        self.processes.append(Process("rasa server", rasa))
        wait_http(f"http://127.0.0.1:{action_port}/health", actions)
        wait_http(f"http://127.0.0.1:{rasa_port}/webhooks/ops/ready", rasa)
        return f"http://127.0.0.1:{rasa_port}"

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self.schema:
            from sqlalchemy import text

            from bot.core import db

            admin = db.make_engine(POSTGRES_URL)
            with admin.begin() as connection:
                connection.execute(text(f'drop schema "{self.schema}" cascade'))
            admin.dispose()


# -- conversations --------------------------------------------------------------------------------
class Failed(Exception):
    pass


@dataclass
class Results:
    latencies: List[float] = field(default_factory=list)
    errors: int = 0
    outcomes: Dict[str, int] = field(default_factory=dict)

    def done(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


Say = Callable[[str], Awaitable[List[Dict[str, Any]]]]


def text_of(messages: List[Dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def button(messages: List[Dict[str, Any]], title: str) -> str:
    for message in messages:
        for item in message.get("buttons") or []:
            if item.get("title") == title:
                return item["payload"]
    raise Failed(f"no button {title!r}")


def slot_buttons(messages: List[Dict[str, Any]]) -> List[str]:
    return [b["payload"] for m in messages for b in m.get("buttons") or []
            if str(b.get("payload", "")).startswith('/choose_option{"option": "20')]


async def faq(say: Say, rng: random.Random) -> str:
    for question in rng.sample(FAQ, rng.choice([2, 3])):
        if not await say(question):
            raise Failed("no answer")
    return "faq"


async def multi_turn(say: Say, rng: random.Random) -> str:
    for message in MULTI_TURN:
        answer = await say(message)
        if message == "en hoeveel kost dat?" and "Prijs reispas" not in text_of(answer):
            raise Failed("context lost")
    return "multi-turn"


async def booking(say: Say, rng: random.Random) -> str:
    product = rng.choice(["reispas", "identiteitskaart"])
    reply = await say(f"ik wil een afspraak maken voor een {product}")
    reply = await say(button(reply, "Stadskantoor"))
    reply = await say(button(reply, "Zo snel mogelijk"))
    for _ in range(4):  # other citizens may take the same moment meanwhile
        offered = slot_buttons(reply)
        if not offered:
            raise Failed("no free moments offered")
        reply = await say(rng.choice(offered))
        if "naam" in text_of(reply):
            reply = await say("Jan Peeters")
        if "gsm-nummer of e-mailadres" in text_of(reply):
            reply = await say(f"0470 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}")
        if "Klopt dit?" not in text_of(reply):
            continue
        reply = await say(button(reply, "Ja, bevestig"))
        if "staat vast" in text_of(reply):
            return "booking"
    raise Failed("booking not confirmed")


async def kafka(say: Say, rng: random.Random) -> str:
    await say("ik heb een idee om het eenvoudiger te maken")
    products = await say(KAFKA_PROBLEM)
    proposal = await say(button(products, "Bewonerskaart (parkeren)"))
    identity = await say(button(proposal, "Geen voorstel"))
    summary = await say(button(identity, "Anoniem blijven"))
    filed = await say(button(summary, "Ja, verstuur"))
    if "Wat gebeurt er nu?" not in text_of(filed):
        raise Failed("suggestion not filed")
    return "kafka"


def scenario(index: int) -> Callable[[Say, random.Random], Awaitable[str]]:
    slot = index % 10
    return faq if slot < 6 else multi_turn if slot < 8 else booking if slot == 8 else kafka


async def run_level(url: str, conversations: int, level_timeout: float, seed: int) -> Dict[str, Any]:
    results = Results()
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=conversations)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def conversation(index: int) -> None:
            sender = f"bench:{uuid.uuid4()}"
            rng = random.Random(seed * 1000 + index)

            async def say(message: str) -> List[Dict[str, Any]]:
                started = time.perf_counter()
                async with session.post(f"{url}/webhooks/rest/webhook",
                                        json={"sender": sender, "message": message}) as answer:
                    body = await answer.json(content_type=None)
                    results.latencies.append(time.perf_counter() - started)
                    if answer.status != 200:
                        raise Failed(f"HTTP {answer.status}")
                    return body

            try:
                results.done(await scenario(index)(say, rng))
            except (Failed, aiohttp.ClientError, asyncio.TimeoutError) as error:
                results.errors += 1
                results.done(f"failed: {error}"[:60])

        started = time.perf_counter()
        tasks = [asyncio.ensure_future(conversation(i)) for i in range(conversations)]
        done, pending = await asyncio.wait(tasks, timeout=level_timeout)
        for task in pending:
            task.cancel()
        wall = time.perf_counter() - started
    latencies = sorted(results.latencies)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))] * 1000

    return {
        "conversations": conversations, "messages": len(latencies), "wall_s": round(wall, 1),
        "messages_per_s": round(len(latencies) / wall, 1) if wall else 0.0,
        "p50_ms": round(pct(50)), "p95_ms": round(pct(95)), "p99_ms": round(pct(99)),
        "mean_ms": round(statistics.fmean(latencies) * 1000) if latencies else 0,
        "failed_conversations": results.errors + len(pending), "outcomes": results.outcomes,
    }


def machine() -> str:
    cpus = os.cpu_count()
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{cpus} cores ({model or platform.machine()}), Python {platform.python_version()}, load before run {load}"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--level-timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if any(level < 1 or level > 100 for level in args.levels):
        parser.error("levels are 1 to 100 conversations")
    if not shutil.which("redis-server"):
        parser.error("redis-server is not installed")

    from bot.model import ensure_model

    print(f"machine: {machine()}", flush=True)
    model = ensure_model()
    workdir = Path(tempfile.mkdtemp(prefix="gentinfo-bench-"))
    stack = Stack(workdir, model)
    report: Dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "model": model.name,
                              "levels": []}
    try:
        url = stack.start()
        report["database"] = stack.database
        print(f"stack up: Rasa {url}, Redis tracker + lock store, database {stack.database}; logs in {workdir}",
              flush=True)
        asyncio.run(run_level(url, 3, 120, seed=0))  # warm-up, not counted
        for level in args.levels:
            figures = asyncio.run(run_level(url, level, args.level_timeout, args.seed))
            figures["peak_rss_mb"] = {p.name: round(p.peak_rss_mb() or 0) for p in stack.processes}
            report["levels"].append(figures)
            print(json.dumps(figures, ensure_ascii=False), flush=True)
    finally:
        stack.stop()

    print("\n| concurrent conversations | messages | msg/s | p50 ms | p95 ms | p99 ms | failed | peak RSS MB "
          "(rasa / actions / redis) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for figures in report["levels"]:
        rss = figures["peak_rss_mb"]
        print(f"| {figures['conversations']} | {figures['messages']} | {figures['messages_per_s']} | "
              f"{figures['p50_ms']} | {figures['p95_ms']} | {figures['p99_ms']} | {figures['failed_conversations']} | "
              f"{rss.get('rasa server')} / {rss.get('action server')} / {rss.get('redis-server')} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    ok = all(f["failed_conversations"] == 0 for f in report["levels"])
    if ok:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"failed conversations: logs kept in {workdir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
