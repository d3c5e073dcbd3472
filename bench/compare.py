#!/usr/bin/env python
"""Stock ``rasa init`` against this assistant, same machine, same run, same closed-loop REST client.

1. Builds stock Rasa's starter bot in a temporary folder from the pinned Rasa (``rasa init
   --no-prompt``, which trains it with Rasa's default DIET + TED config; no custom actions), or
   reuses one with ``--stock-dir`` (built there when missing).
2. Starts it (``rasa run``, REST channel, in-memory tracker store) and, for each level of
   concurrent conversations (default 1 and 50), runs a closed loop for ``--seconds``: every
   simulated citizen sends a message, waits for the answer, sends the next; a conversation is 10
   messages, then the citizen starts a new one. Stock gets rasa-init's own phrases.
3. Stops it, starts the project as ``scripts/run`` does in the embedded default (action server +
   ``python -m bot.server run`` with ``endpoints.yml``, SQLite in a temporary folder, no Redis), and
   runs the same loop with the project's realistic mix: per 10 conversations, 6 with general
   questions, 2 with follow-ups that need the context ("en hoeveel kost dat?"), 1 booking through
   the appointment form, 1 KAFKA suggestion through its form; each one filled up to 10 messages
   with general questions.
4. Prints msg/s, p50/p95/p99, failed conversations and the Rasa process' RSS (now and peak) for
   both, and the ratios project/stock. ``--profile`` also records the Rasa process with py-spy
   during the highest level and prints the top functions (own time and time including callees).

Traffic goes to 127.0.0.1 only; every level stops after ``--seconds`` (+ at most one request
timeout), every process is stopped at the end.

    .venv/bin/python bench/compare.py [--levels 1 50] [--seconds 60] [--profile] [--json results/x.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench import profile_summary  # noqa: E402
from bench.run import FAQ, Failed, Process, Say, booking, free_port, kafka, machine, multi_turn, wait_http  # noqa: E402

MESSAGES_PER_CONVERSATION = 10
REQUEST_TIMEOUT = 60.0
BASE_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "SQLALCHEMY_SILENCE_UBER_WARNING": "1", "RASA_TELEMETRY_ENABLED": "false"}

#: rasa init's own phrases (its data/nlu.yml), as a citizen of the starter bot would write them.
STOCK_PHRASES = ["hello", "hi", "good morning", "I am feeling very good", "great", "I am sad", "not good",
                 "yes", "no", "of course", "are you a bot?", "am I talking to a human?", "bye", "see you later"]


# -- the targets -----------------------------------------------------------------------------------
def rss_mb(pid: int) -> Dict[str, float]:
    """Resident memory now (VmRSS) and peak (VmHWM) of one process, from /proc."""
    figures: Dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                figures[line.split(":")[0]] = round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return {"rss_mb": figures.get("VmRSS", 0), "peak_rss_mb": figures.get("VmHWM", 0)}


def build_stock(directory: Path) -> Path:
    """``rasa init --no-prompt`` in ``directory`` (trains the starter bot); its path."""
    if list((directory / "models").glob("*.tar.gz")):
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    print(f"building stock rasa init in {directory} (trains its model, ~2 min)", flush=True)
    with (directory.parent / f"{directory.name}-init.log").open("w") as log:
        subprocess.run([sys.executable, "-m", "rasa", "init", "--no-prompt", "--init-dir", str(directory)],
                       cwd=directory, env={**os.environ, **BASE_ENV}, stdout=log, stderr=subprocess.STDOUT,
                       check=True, timeout=1800)
    return directory


class Target:
    """One assistant under test: its processes, its Rasa process and its conversation script."""

    name = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: List[Process] = []
        self.rasa: Optional[Process] = None
        self.url = ""

    def spawn(self, name: str, args: List[str], cwd: Path, env: Dict[str, str]) -> Process:
        log = (self.workdir / f"{self.name}-{name}.log").open("w")
        process = Process(name, subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT))
        self.processes.append(process)
        return process

    def start(self) -> float:
        """Start everything; seconds until Rasa answered a first message."""
        raise NotImplementedError

    async def conversation(self, say: Say, rng: random.Random, index: int) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


def wait_for_answer(url: str, process: Process, timeout: float = 300) -> None:
    """Until Rasa answers a message over REST (the model is loaded), or the process died."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise SystemExit(f"{process.name} exited with {process.popen.returncode}")
        try:
            answer = requests.post(f"{url}/webhooks/rest/webhook", json={"sender": "warm-up", "message": "hallo"},
                                   timeout=10)
            if answer.status_code == 200 and answer.json():
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url}: no answer within {timeout} s")


class Stock(Target):
    name = "stock"

    def __init__(self, workdir: Path, directory: Path) -> None:
        super().__init__(workdir)
        self.directory = directory

    def start(self) -> float:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        self.rasa = self.spawn("rasa", [sys.executable, "-m", "rasa", "run", "--model", "models", "--port", str(port),
                                        "--interface", "127.0.0.1", "--credentials", "credentials.yml"],
                               self.directory, {**os.environ, **BASE_ENV})
        wait_for_answer(self.url, self.rasa)
        return time.monotonic() - started

    async def conversation(self, say: Say, rng: random.Random, index: int) -> str:
        for _ in range(MESSAGES_PER_CONVERSATION):
            await say(rng.choice(STOCK_PHRASES))
        return "rasa-init"


class Project(Target):
    name = "project"

    def __init__(self, workdir: Path, model: Path, extra_env: Dict[str, str], fixes: Optional[str] = None) -> None:
        super().__init__(workdir)
        self.model = model
        self.extra_env = extra_env
        self.fixes = fixes

    def rasa_command(self) -> List[str]:
        """``python -m bot.server`` (all fixes), or with ``fixes`` only those (to measure each one)."""
        if self.fixes is None:
            return [sys.executable, "-m", "bot.server"]
        return [sys.executable, "-c", _SOME_FIXES, self.fixes]

    def start(self) -> float:
        action_port, rasa_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{rasa_port}"
        env = {**os.environ, **BASE_ENV, "PYTHONPATH": str(ROOT),
               "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
               "GENTINFO_DATABASE_URL": f"sqlite:///{self.workdir / 'gentinfo.db'}", **self.extra_env}
        for name in [n for n in env if n.startswith(("TWILIO_", "TELEGRAM_", "REDIS_", "GENTINFO_PROFILE"))]:
            del env[name]
        actions = self.spawn("actions", [sys.executable, "-m", "bot.action_server", "--port", str(action_port),
                                         "--host", "127.0.0.1"], ROOT, env)
        wait_http(f"http://127.0.0.1:{action_port}/health", actions.popen)
        started = time.monotonic()
        self.rasa = self.spawn("rasa", [*self.rasa_command(), "run", "--model", str(self.model),
                                        "--port", str(rasa_port), "--interface", "127.0.0.1",
                                        "--credentials", "credentials.yml", "--endpoints", "endpoints.yml"], ROOT, env)
        wait_for_answer(self.url, self.rasa)
        return time.monotonic() - started

    async def conversation(self, say: Say, rng: random.Random, index: int) -> str:
        slot = index % 10
        main: Callable[[Say, random.Random], Any] = (
            _questions if slot < 6 else multi_turn if slot < 8 else booking if slot == 8 else kafka)
        outcome = await main(say, rng)
        return str(outcome)


#: Rasa with only some of the fixes (comma-separated names of bot.rasa_fixes.FIXES; empty: none).
_SOME_FIXES = """import sys
from bot import rasa_fixes
rasa_fixes.install(only=[name for name in sys.argv[1].split(",") if name])
import rasa.__main__
sys.argv = ["rasa", *sys.argv[2:]]
rasa.__main__.main()
"""


async def _questions(say: Say, rng: random.Random) -> str:
    for question in rng.sample(FAQ, 3):
        if not await say(question):
            raise Failed("no answer")
    return "questions"


# -- the closed loop -------------------------------------------------------------------------------
async def run_level(target: Target, concurrency: int, seconds: float, seed: int) -> Dict[str, Any]:
    latencies: List[float] = []
    outcomes: Dict[str, int] = {}
    failed = 0
    deadline = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)

    class Over(Exception):
        """The level's time is up."""

    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def one_conversation(rng: random.Random, index: int) -> None:
            nonlocal failed
            sender, sent = f"bench:{uuid.uuid4()}", 0

            async def say(message: str) -> List[Dict[str, Any]]:
                nonlocal sent
                if time.monotonic() >= deadline:
                    raise Over()
                started = time.perf_counter()
                async with session.post(f"{target.url}/webhooks/rest/webhook",
                                        json={"sender": sender, "message": message}) as answer:
                    body = await answer.json(content_type=None)
                if time.monotonic() < deadline:
                    latencies.append(time.perf_counter() - started)
                if answer.status != 200:
                    raise Failed(f"HTTP {answer.status}")
                sent += 1
                return body

            try:
                outcome = await target.conversation(say, rng, index)
                while sent < MESSAGES_PER_CONVERSATION:
                    await say(rng.choice(FAQ))
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            except (Failed, aiohttp.ClientError, asyncio.TimeoutError) as error:
                failed += 1
                key = f"failed: {error}"[:60]
                outcomes[key] = outcomes.get(key, 0) + 1

        async def citizen(number: int) -> None:
            rng = random.Random(seed * 100_000 + number)
            index = number
            try:
                while time.monotonic() < deadline:
                    await one_conversation(rng, index)
                    index += concurrency
            except Over:
                return

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(citizen(n) for n in range(concurrency))),
                               seconds + REQUEST_TIMEOUT + 5)
        wall = min(time.perf_counter() - started, seconds)
    latencies.sort()

    def pct(p: float) -> int:
        return round(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000) if latencies else 0

    return {"target": target.name, "concurrency": concurrency, "messages": len(latencies),
            "messages_per_s": round(len(latencies) / wall, 1), "p50_ms": pct(50), "p95_ms": pct(95),
            "p99_ms": pct(99), "failed_conversations": failed, "outcomes": outcomes}


def measure(targets: List[Target], levels: List[int], seconds: float, profile: bool) -> List[Dict[str, Any]]:
    """Start every target, then each level on each target in turn (so that the machine's load
    drifts alike for all of them); the py-spy profile is taken at the highest level."""
    figures: List[Dict[str, Any]] = []
    try:
        ready: Dict[str, float] = {}
        for target in targets:
            ready[target.name] = target.start()
            assert target.rasa is not None
            print(f"{target.name}: answering {ready[target.name]:.1f} s after start (pid {target.rasa.popen.pid}, "
                  f"logs in {target.workdir})", flush=True)
            asyncio.run(run_level(target, 5, 10, seed=0))  # warm-up, not counted
        for level in levels:
            for target in targets:
                assert target.rasa is not None
                recorder, output = None, target.workdir / f"{target.name}.pyspy"
                if profile and level == max(levels):
                    recorder = profile_summary.record(target.rasa.popen.pid, output, seconds)
                result = asyncio.run(run_level(target, level, seconds, seed=level))
                result.update(rss_mb(target.rasa.popen.pid), ready_s=round(ready[target.name], 1))
                if recorder is not None:
                    recorder.wait(timeout=120)
                    result["profile"] = profile_summary.summarise(output)
                figures.append(result)
                print(json.dumps({k: v for k, v in result.items() if k != "profile"}, ensure_ascii=False), flush=True)
    finally:
        for target in targets:
            target.stop()
    return figures


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "–"


def _env(items: List[str]) -> Dict[str, str]:
    return dict(item.split("=", 1) for item in items)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--seconds", type=float, default=60.0, help="closed loop per level (default 60)")
    parser.add_argument("--stock-dir", type=Path, help="keep/reuse the stock rasa-init build here")
    parser.add_argument("--model", type=Path, help="the project's model (default: bot.model.ensure_model())")
    parser.add_argument("--only", choices=["stock", "project"], help="measure one side only")
    parser.add_argument("--profile", action="store_true", help="py-spy the Rasa process at the highest level")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the project's processes (repeatable)")
    parser.add_argument("--fixes", help="only these bot.rasa_fixes (comma-separated; '' for none); default all")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:MODEL:FIXES[:ENV]",
                        help="also measure the project with another model (empty: the same) and/or only these "
                             "fixes (comma-separated, 'none' or 'all') and/or extra environment (A=1;B=2), "
                             "e.g. before:models/old.tar.gz:none")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if any(level < 1 or level > 200 for level in args.levels) or not 5 <= args.seconds <= 900:
        parser.error("levels are 1 to 200 conversations, --seconds 5 to 900")

    print(f"machine: {machine()}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="gentinfo-compare-"))
    report: Dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "seconds": args.seconds,
                              "env": args.env, "results": []}
    targets: List[Target] = []
    try:
        if args.only != "project":
            stock_dir = build_stock(args.stock_dir.resolve() if args.stock_dir else workdir / "stock")
            targets.append(Stock(workdir, stock_dir))
        if args.only != "stock":
            from bot.model import ensure_model

            model = args.model or ensure_model()
            report["model"] = model.name
            report["fixes"] = "all" if args.fixes is None else args.fixes
            for spec in args.variant:  # measured in the same run, before "project"
                name, variant_model, fixes, env = (spec.split(":", 3) + ["", "", ""])[:4]
                variant_env = {**_env(args.env), **_env([item for item in env.split(";") if item])}
                variant = Project(workdir, Path(variant_model) if variant_model else model, variant_env,
                                  None if fixes in ("", "all") else fixes.replace("none", ""))
                variant.name = name
                targets.append(variant)
            targets.append(Project(workdir, model, _env(args.env), args.fixes))
        report["results"] = measure(targets, args.levels, args.seconds, args.profile)
    finally:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        report["load_after"] = load

    rows = report["results"]
    print(f"\nload average after the run: {report['load_after']}")
    print("\n| target | concurrent | messages | msg/s | p50 ms | p95 ms | p99 ms | failed | Rasa RSS MB (peak) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['target']} | {row['concurrency']} | {row['messages']} | {row['messages_per_s']} | "
              f"{row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | {row['failed_conversations']} | "
              f"{row['rss_mb']} ({row['peak_rss_mb']}) |")
    by = {(row["target"], row["concurrency"]): row for row in rows}
    for level in args.levels:
        for row in [r for r in rows if r["concurrency"] == level and r["target"] != "stock"]:
            base, other = "stock", row["target"]
            a, b = by.get((base, level)), row
            if a:
                print(f"c={level}: {other}/{base} msg/s {ratio(b['messages_per_s'], a['messages_per_s'])}, "
                      f"p50 {ratio(b['p50_ms'], a['p50_ms'])}, p95 {ratio(b['p95_ms'], a['p95_ms'])}")
    for row in rows:
        if "profile" in row:
            print(f"\nprofile of {row['target']}'s Rasa process at c={row['concurrency']}:\n"
                  f"{profile_summary.as_text(row['profile'])}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    if all(row["failed_conversations"] == 0 for row in rows):
        shutil.rmtree(workdir, ignore_errors=True)
        return 0
    print(f"failed conversations: logs kept in {workdir}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
