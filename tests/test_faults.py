"""The production profile under faults: restarts, two Rasa servers, Redis and action server crashes.

One cluster for the whole module, all on 127.0.0.1: our own ``redis-server`` (append-only file,
so a crash loses nothing; never the shared Redis), the action server (``python -m
bot.action_server``) and two Rasa servers started exactly like production (``rasa run --endpoints
endpoints.production.yml`` with the variables ``python -m bot.profile`` derives), PostgreSQL in a
schema of its own, WhatsApp pointed at the local fake Twilio. Rasa server A reaches the action
server through a pass-through proxy in this process, which can hold back one answer (to kill A
after the action ran but before A got its answer); B talks to the action server directly. The
tests run in file order and share the cluster.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import redis
import requests
from aiohttp import ClientConnectionError, ClientSession, web
from sqlalchemy import text

from bot import profile
from bot.core import db
from bot.rasa_fixes import SORRY_ACTION_SERVER, SORRY_STORE
from tests.assistant import ARTIFACTS, ROOT, button, free_port, text_of, wait_for
from tests.conftest import POSTGRES_URL
from tests.fakes.background import BackgroundServer
from tests.fakes.twilio_api import FakeTwilio



def _stop(process: Optional[subprocess.Popen], sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@dataclass
class RedisServer:
    """Our own redis-server: AOF with fsync on every write, so kill -9 loses no conversation."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.directory / "redis.log").open("a")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.directory), "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server on {self.port} did not start")
                time.sleep(0.05)
        client.close()

    def crash(self) -> None:
        _stop(self.process, signal.SIGKILL)

    def client(self) -> "redis.Redis[bytes]":
        return redis.Redis.from_url(self.url)


class ActionProxy:
    """Passes Rasa's calls to the action server through; ``hold(predicate)`` lets the action server
    run a matching call but keeps its answer from Rasa until ``release()``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.predicate: Optional[Callable[[Dict[str, Any]], bool]] = None
        self.held = threading.Event()
        self._released = threading.Event()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._server = BackgroundServer(app)

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> "ActionProxy":
        self._server.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.stop()

    def hold(self, predicate: Callable[[Dict[str, Any]], bool]) -> None:
        self.held.clear()
        self._released.clear()
        self.predicate = predicate

    def release(self) -> None:
        self.predicate = None
        self._released.set()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "content-encoding")}
        try:
            async with ClientSession() as session:
                async with session.request(request.method, self.upstream + request.path_qs, data=body,
                                           headers=headers) as answer:
                    payload, status, kind = await answer.read(), answer.status, answer.content_type
        except ClientConnectionError:
            raise web.HTTPBadGateway()
        predicate = self.predicate
        if predicate is not None and request.path == "/webhook" and predicate(json.loads(body)):
            self.held.set()
            while not self._released.is_set():
                await asyncio.sleep(0.05)
            raise web.HTTPServiceUnavailable()  # Rasa is gone by now; nobody reads this
        return web.Response(body=payload, status=status, content_type=kind)


@dataclass
class Server:
    name: str
    port: int
    command: List[str]
    health_path: str
    process: Optional[subprocess.Popen] = None
    extra_env: Dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return ARTIFACTS / f"faults_{self.name}.log"

    def start(self, env: Dict[str, str]) -> "Server":
        with self.log.open("a") as log:
            log.write(f"\n===== start {time.strftime('%H:%M:%S')} =====\n")
        self.process = subprocess.Popen(self.command, cwd=ROOT, env={**env, **self.extra_env},
                                        stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        return self

    def wait(self) -> "Server":
        assert self.process is not None
        wait_for(self.url + self.health_path, self.process, self.log)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        _stop(self.process, sig)

    # -- talking to a Rasa server ---------------------------------------------------------------
    def rest(self, sender: str, message: str) -> List[Dict[str, Any]]:
        answer = requests.post(f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": message},
                               timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def texts(self, sender: str, message: str) -> str:
        return "\n".join(m.get("text") or "" for m in self.rest(sender, message))


@dataclass
class Cluster:
    redis: RedisServer
    actions: Server
    rasa_a: Server
    rasa_b: Server
    env: Dict[str, str]
    twilio: FakeTwilio
    proxy: ActionProxy
    schema: str

    @property
    def b(self) -> Server:
        """The second Rasa server, started on first use (the restart test starts it early)."""
        if self.rasa_b.process is None:
            self.rasa_b.start(self.env)
        return self.rasa_b.wait()

    def tracker(self, sender: str) -> Dict[str, Any]:
        client = self.redis.client()
        try:
            raw = client.get(f"gentinfo:tracker:{sender}")
        finally:
            client.close()
        assert raw is not None, f"no tracker for {sender} in Redis"
        return json.loads(raw)

    def logs(self) -> str:
        servers = (self.actions, self.rasa_a, self.rasa_b)
        return "\n".join(server.log.read_text(errors="replace") for server in servers if server.log.exists())


def _rasa(name: str, model: Path) -> Server:
    port = free_port()
    return Server(name, port, [
        sys.executable, "-m", "bot.server", "run", "--model", str(model), "--port", str(port), "--interface", "127.0.0.1",
        "--credentials", "credentials.yml", "--endpoints", "endpoints.production.yml",
    ], "/webhooks/ops/health")


@pytest.fixture(scope="module")
def postgres_schema() -> Iterator[str]:
    schema = f"faults_{uuid.uuid4().hex[:10]}"
    try:
        admin = db.make_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f'create schema "{schema}"'))
    except Exception as error:  # noqa: BLE001
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {POSTGRES_URL}: {error}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    db.create_schema(db.make_engine(POSTGRES_URL, schema=schema))
    yield schema
    with admin.begin() as connection:
        connection.execute(text(f'drop schema "{schema}" cascade'))
    admin.dispose()


@pytest.fixture(scope="module")
def cluster(trained_model: Path, fake_twilio: FakeTwilio, postgres_schema: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if not shutil.which("redis-server"):
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (scripts/test installs it)")
        pytest.skip("redis-server is not installed: these tests run their own Redis")
    own_redis = RedisServer(tmp_path_factory.mktemp("redis"))
    own_redis.start()
    action_port = free_port()
    settings = {
        "GENTINFO_PROFILE": "production",
        "REDIS_URL": own_redis.url,
        "GENTINFO_DATABASE_URL": POSTGRES_URL,
        "GENTINFO_DB_SCHEMA": postgres_schema,
        "GENTINFO_WEBCHAT_ORIGINS": "https://stad.gent",
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
        **fake_twilio.env(),
    }
    report = profile.check(settings)
    assert report.ok, report.text()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "TWILIO_"))},
        "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "RASA_TELEMETRY_ENABLED": "false", **settings, **report.exports,
        # A turn lost with a crashed Rasa server keeps its conversation locked this long (default 60 s).
        "TICKET_LOCK_LIFETIME": "8",
    }
    actions = Server("actions", action_port, [
        sys.executable, "-m", "bot.action_server", "--port", str(action_port), "--host", "127.0.0.1"], "/health")
    proxy = ActionProxy(actions.url).start()
    servers = [actions, _rasa("rasa_a", trained_model), _rasa("rasa_b", trained_model)]
    servers[1].extra_env["ACTION_ENDPOINT_URL"] = f"{proxy.url}/webhook"
    for server in servers:
        server.log.unlink(missing_ok=True)
    try:
        for server in servers[:2]:  # the second Rasa server starts when a test needs it
            server.start(env)
        for server in servers[:2]:
            server.wait()
        yield Cluster(own_redis, servers[0], servers[1], servers[2], env, fake_twilio, proxy, postgres_schema)
    finally:
        proxy.release()
        for server in servers:
            server.stop()
        proxy.stop()
        own_redis.crash()


def citizen() -> str:
    return f"whatsapp:+32470{uuid.uuid4().int % 1_000_000:06d}"


def test_ops_endpoints_of_the_production_servers(cluster: Cluster) -> None:
    ready = requests.get(f"{cluster.rasa_a.url}/webhooks/ops/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"model": "ok", "action_server": "ok", "redis": "ok", "database": "ok"}
    cluster.rasa_a.rest(f"test:{uuid.uuid4()}", "hallo")
    metrics = requests.get(f"{cluster.rasa_a.url}/webhooks/ops/metrics", timeout=10)
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'gentinfo_messages_total{channel="rest",status="200"}' in metrics.text
    assert 'gentinfo_message_seconds_count{channel="rest"}' in metrics.text
    actions = requests.get(f"{cluster.actions.url}/metrics", timeout=10).text
    assert "gentinfo_actions_total" in actions and "process_resident_memory_bytes" in actions


def test_conversation_survives_a_restart_of_rasa_and_the_action_server(cluster: Cluster) -> None:
    sender = citizen()
    assert "Reispas" in cluster.rasa_a.texts(sender, "ik heb een nieuwe reispas nodig")

    cluster.rasa_a.stop()
    cluster.actions.stop(signal.SIGKILL)
    cluster.actions.start(cluster.env)
    cluster.rasa_a.start(cluster.env)
    if cluster.rasa_b.process is None:
        cluster.rasa_b.start(cluster.env)  # needed next; loads while A loads
    cluster.actions.wait()
    cluster.rasa_a.wait()

    price = cluster.rasa_a.texts(sender, "en hoeveel kost dat?")
    assert "Prijs reispas" in price, "the product of the conversation was lost in the restart"
    users = [e for e in cluster.tracker(sender)["events"] if e["event"] == "user"]
    assert [e["text"] for e in users] == ["ik heb een nieuwe reispas nodig", "en hoeveel kost dat?"]


def test_two_rasa_servers_serve_one_conversation_alternately(cluster: Cluster) -> None:
    sender = citizen()
    a, b = cluster.rasa_a, cluster.b
    assert "Reispas" in a.texts(sender, "ik heb een nieuwe reispas nodig")
    assert "Prijs reispas" in b.texts(sender, "en hoeveel kost dat?")
    appointment = a.texts(sender, "moet ik een afspraak maken?")
    assert "afspraak" in appointment and "reispas" in appointment
    assert "Wijkkantoor Oostakker" in b.texts(sender, "wanneer is het wijkkantoor oostakker open")


def test_concurrent_messages_on_both_servers_are_handled_one_at_a_time(cluster: Cluster) -> None:
    """Rasa's Redis lock store: four messages at once, half on each server, none lost."""
    sender = citizen()
    questions = ["reispas", "identiteitskaart", "rijbewijs", "kids-id"]
    with ThreadPoolExecutor(len(questions)) as pool:
        answers = list(pool.map(
            lambda item: (cluster.rasa_a if item[0] % 2 else cluster.b).rest(sender, item[1]),
            enumerate(questions),
        ))
    assert all(answers), "every message gets an answer"
    events = cluster.tracker(sender)["events"]
    users = [e["text"] for e in events if e["event"] == "user"]
    assert sorted(users) == sorted(questions)
    # One turn after the other: each user message is answered before the next one is read.
    kinds = "".join("u" if e["event"] == "user" else "b" for e in events if e["event"] in ("user", "bot"))
    assert kinds.count("u") == len(questions) and "uu" not in kinds and kinds.endswith("b")


def test_twilio_retry_storm_of_one_message_gets_exactly_one_reply(cluster: Cluster) -> None:
    sender = citizen()
    params = cluster.twilio.incoming("Hoeveel kost een reispas?", sender=sender)
    servers = [cluster.rasa_a.url, cluster.b.url]
    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(lambda n: cluster.twilio.deliver(servers[n % 2], params).status_code, range(50)))
    assert statuses == [200] * 50
    time.sleep(2)  # a duplicate reply would still be on its way
    replies = [call for call in cluster.twilio.calls if call.params.get("To") == sender]
    assert len(replies) == 1, [call.params.get("Body") for call in replies]
    assert "Prijs reispas" in replies[0].params["Body"]
    assert [e["text"] for e in cluster.tracker(sender)["events"] if e["event"] == "user"] == [
        "Hoeveel kost een reispas?"]


def test_redis_crash_mid_conversation_gets_a_polite_answer_then_goes_on(cluster: Cluster) -> None:
    sender = citizen()
    assert "Reispas" in cluster.rasa_a.texts(sender, "ik heb een nieuwe reispas nodig")

    cluster.redis.crash()
    during = requests.post(f"{cluster.b.url}/webhooks/rest/webhook",
                           json={"sender": sender, "message": "en hoeveel kost dat?"}, timeout=30)
    assert during.status_code == 200
    assert [m["text"] for m in during.json()] == [SORRY_STORE.format(phone="09 210 10 10")]
    ready = requests.get(f"{cluster.rasa_a.url}/webhooks/ops/ready", timeout=10)
    assert ready.status_code == 503 and "redis" in " ".join(ready.json()["reasons"])

    cluster.redis.start()
    after = cluster.rasa_a.texts(sender, "en hoeveel kost dat?")
    assert "Prijs reispas" in after, "the conversation's context must survive a Redis crash (AOF)"
    assert requests.get(f"{cluster.b.url}/webhooks/ops/ready", timeout=10).status_code == 200
    metrics = requests.get(f"{cluster.b.url}/webhooks/ops/metrics", timeout=10).text
    assert 'gentinfo_error_answers_total{cause="conversation_store"} 1.0' in metrics


def test_action_server_killed_mid_conversation_gets_a_polite_answer_then_goes_on(cluster: Cluster) -> None:
    sender, b = citizen(), cluster.b
    assert "Reispas" in b.texts(sender, "ik heb een nieuwe reispas nodig")

    cluster.actions.stop(signal.SIGKILL)
    sorry = SORRY_ACTION_SERVER.format(phone="09 210 10 10")
    assert b.texts(sender, "moet ik een afspraak maken?") == sorry
    # The same on WhatsApp: the citizen is told, through Twilio.
    whatsapp = citizen()
    assert cluster.twilio.deliver(b.url, cluster.twilio.incoming("reispas", sender=whatsapp)).status_code == 200
    deadline = time.monotonic() + 10
    while not [c for c in cluster.twilio.calls if c.params.get("To") == whatsapp] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [c.params["Body"] for c in cluster.twilio.calls if c.params.get("To") == whatsapp] == [sorry]
    ready = requests.get(f"{b.url}/webhooks/ops/ready", timeout=10)
    assert ready.status_code == 503 and "action_server" in " ".join(ready.json()["reasons"])

    cluster.actions.start(cluster.env).wait()
    assert "Prijs reispas" in b.texts(sender, "en hoeveel kost dat?")


# -- bookings under faults -----------------------------------------------------------------------
REFERENCE = re.compile(r"\bGNT-[0-9A-Z]{5}\b")



def to_summary(server: Server, me: str) -> str:
    """Book a reispas at the Stadskantoor up to the summary; the payload of 'Ja, bevestig'."""
    reply = server.rest(me, "ik wil een afspraak maken voor een reispas")
    reply = server.rest(me, button(reply, "Stadskantoor"))
    reply = server.rest(me, button(reply, "Zo snel mogelijk"))
    slot = next(b["payload"] for m in reply for b in m.get("buttons") or []
                if b["payload"].startswith('/choose_option{"option": "20'))
    server.rest(me, slot)
    server.rest(me, "Jan Peeters")
    summary = server.rest(me, "0470 12 34 56")
    assert "Klopt dit?" in text_of(summary), text_of(summary)
    return button(summary, "Ja, bevestig")


def bookings(cluster: Cluster, me: str) -> List[str]:
    engine = db.make_engine(POSTGRES_URL, schema=cluster.schema)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("select reference from appointments where conversation_id = :me"),
                                      {"me": me}).all()
            orphans = connection.execute(text(
                "select count(*) from appointment_desk_units u left join appointments a on a.id = u.appointment_id "
                "where a.id is null")).scalar()
    finally:
        engine.dispose()
    assert orphans == 0, "desk time held by no appointment: a half booking"
    return [row[0] for row in rows]


def test_action_server_killed_during_a_booking_leaves_no_half_booking(cluster: Cluster) -> None:
    """kill -9 while the booking's transaction waits in PostgreSQL: nothing stored, the citizen is told,
    and saying 'ja' again once the action server is back books exactly once."""
    me, b = citizen(), cluster.b
    confirm = to_summary(b, me)
    engine = db.make_engine(POSTGRES_URL, schema=cluster.schema)
    blocker = engine.connect()
    hold = blocker.begin()
    blocker.execute(text("lock table appointments in exclusive mode"))  # reads go on, the INSERT waits
    try:
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(b.rest, me, confirm)
            deadline = time.monotonic() + 20
            with engine.connect() as watcher:
                while True:
                    waiting = watcher.execute(text(
                        "select count(*) from pg_stat_activity where wait_event_type = 'Lock' "
                        "and query ilike '%insert into appointments%'")).scalar()
                    watcher.rollback()  # pg_stat_activity is a snapshot per transaction
                    if waiting:
                        break
                    assert time.monotonic() < deadline, "the booking never reached the database"
                    time.sleep(0.05)
            cluster.actions.stop(signal.SIGKILL)
            hold.rollback()
            polite = answer.result(timeout=60)
    finally:
        blocker.close()
        engine.dispose()
    assert text_of(polite) == SORRY_ACTION_SERVER.format(phone="09 210 10 10")
    time.sleep(0.5)  # PostgreSQL ends the dead client's transaction
    assert bookings(cluster, me) == []

    cluster.actions.start(cluster.env).wait()
    confirmation = b.rest(me, confirm)
    assert "staat vast" in text_of(confirmation), text_of(confirmation)
    assert bookings(cluster, me) == [REFERENCE.search(text_of(confirmation)).group(0)]


def test_rasa_killed_between_confirmation_and_reply_books_once(cluster: Cluster) -> None:
    """The action server stored the booking, Rasa A died before it could answer or save the turn;
    the citizen says 'ja' again (to B): the same booking is confirmed, not a second one."""
    me, a = citizen(), cluster.rasa_a
    confirm = to_summary(a, me)
    cluster.proxy.hold(lambda call: call.get("next_action") == "validate_appointment_form"
                       and call["tracker"]["latest_message"].get("text") == confirm)
    with ThreadPoolExecutor(1) as pool:
        lost = pool.submit(requests.post, f"{a.url}/webhooks/rest/webhook",
                           json={"sender": me, "message": confirm}, timeout=60)
        assert cluster.proxy.held.wait(30), "the confirmation never reached the action server"
        [stored] = bookings(cluster, me)
        a.stop(signal.SIGKILL)
        cluster.proxy.release()
        with pytest.raises(requests.RequestException):
            lost.result(timeout=30)

    confirmation = cluster.b.rest(me, confirm)  # waits for A's lock to expire (TICKET_LOCK_LIFETIME)
    assert "staat vast" in text_of(confirmation), text_of(confirmation)
    assert REFERENCE.search(text_of(confirmation)).group(0) == stored
    assert bookings(cluster, me) == [stored]
    metrics = requests.get(f"{cluster.actions.url}/metrics", timeout=10).text
    assert 'gentinfo_action_replays_total{action="validate_appointment_form"} 1.0' in metrics
    assert 'gentinfo_bookings_total{outcome="booked"}' in metrics


def test_no_phone_number_or_email_in_the_logs_of_any_process(cluster: Cluster) -> None:
    """Every test above used WhatsApp numbers as conversation ids; INFO+ lines show them masked."""
    sender = "whatsapp:+32470998877"
    cluster.b.rest(sender, "mijn e-mail is jan.peeters@stad.gent en mijn nummer 0470 99 88 77")
    logs = cluster.logs()
    assert "+32 4•• •• •• 77" in logs, "the action server logs each action run with the masked conversation id"
    for raw in ("32470998877", "0470 99 88 77", "jan.peeters@stad.gent"):
        assert raw not in logs
    assert "+32470" not in logs and "whatsapp:+32470" not in logs
