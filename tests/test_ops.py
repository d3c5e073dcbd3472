"""Operations: /webhooks/ops endpoints, the action server's /metrics, log masking, deploy manifests.

The ops channel is tested on a Sanic app the way Rasa mounts channels (tests/fakes/assistant.py);
the production Rasa servers are exercised in tests/test_faults.py. The action server runs as its
own process, as in production.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests
import yaml
from prometheus_client import REGISTRY
from rasa.core.channels.channel import register
from rasa.core.channels.rest import RestInput

from bot.logsafe import MaskContactDetails, mask_text
from connectors.ops import OpsInput, Readiness
from tests.assistant import ARTIFACTS, ROOT, free_port, wait_for
from tests.fakes.assistant import ChannelServer

DEPLOY = ROOT / "deploy" / "k8s"
PHONE, EMAIL = "0470 12 34 56", "jan.peeters@stad.gent"


# -- log masking ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, hidden, shown",
    [
        ("conversation whatsapp:+32470123456 answered", "32470123456", "+32 4•• •• •• 56"),
        (f"bel {PHONE} na 17 uur", PHONE, "+32 4•• •• •• 56"),
        ("fixed line 09/210.10.10", "210.10.10", "+32 9 ••• •• 10"),
        ("international 0032 470 12 34 56", "0032 470", "+32 4•• •• •• 56"),
        (f"mail {EMAIL} graag", EMAIL, "j•••@stad.gent"),
    ],
)
def test_contact_details_are_masked(text: str, hidden: str, shown: str) -> None:
    masked = mask_text(text)
    assert hidden not in masked and shown in masked


@pytest.mark.parametrize(
    "text",
    ["confidence 0.98765432", "took 123456789 ms", "MessageSid SM0123456789abcdef0123456789abcdef",
     "reference KAFKA-2026-00042", "at 1732560000.123", "web:4f0c1234-5678-4abc-8def-0123456789ab"],
)
def test_numbers_that_are_not_contact_details_stay(text: str) -> None:
    assert mask_text(text) == text


def test_filter_masks_info_and_above_and_leaves_debug() -> None:
    import logging

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sender %s wrote %r", ("whatsapp:+32470123456", EMAIL), None)
    MaskContactDetails().filter(record)
    assert "32470123456" not in record.getMessage() and EMAIL not in record.getMessage()
    debug = logging.LogRecord("x", logging.DEBUG, __file__, 1, "text %s", (EMAIL,), None)
    MaskContactDetails().filter(debug)
    assert EMAIL in debug.getMessage()


LOGGING_SCRIPT = r"""
import logging
import rasa.utils.io
import rasa.utils.log_utils
import structlog

# What `python -m bot.server run` does: the Rasa fixes (with log masking), then Rasa's console
# logging, its structlog set-up, then the channels of credentials.yml.
from bot import rasa_fixes
rasa_fixes.install()
rasa.utils.io.configure_colored_logging("INFO")
rasa.utils.log_utils.configure_structlog(logging.INFO)
from connectors.ops import OpsInput
OpsInput.from_credentials(None)

text = "Bel me op 0470 12 34 56 of mail jan.peeters@stad.gent"
try:
    raise RuntimeError("handling failed for " + text)
except RuntimeError:
    # Rasa's REST channel logs exactly this when handling a message fails, text included.
    structlog.get_logger().exception("rest.message.received.failure", text=text)
logging.getLogger("rasa.core.processor").info("request from whatsapp:+32470123456: %s", text)
logging.getLogger("rasa.core.processor").warning("retrying for jan.peeters@stad.gent")
logging.getLogger("rasa.core.processor").debug("DEBUG keeps %s", text)
"""


def test_info_log_lines_of_a_request_with_phone_and_email_contain_neither() -> None:
    """In a process set up like `python -m bot.server run` (fixes, Rasa's logging + structlog, ops channel)."""
    run = subprocess.run([sys.executable, "-c", LOGGING_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120, check=True)
    lines = (run.stdout + run.stderr).splitlines()
    info_lines = [line for line in lines if "DEBUG keeps" not in line]
    joined = "\n".join(info_lines)
    assert "rest.message.received.failure" in joined and "request from whatsapp:" in joined
    for raw in (PHONE, "32470123456", EMAIL):
        assert raw not in joined
    assert "j•••@stad.gent" in joined and "+32 4•• •• •• 56" in joined


# -- the ops channel -----------------------------------------------------------------------------
def closed_port_url(scheme: str, path: str = "") -> str:
    return f"{scheme}://127.0.0.1:{free_port()}{path}"


@pytest.fixture
def ops_server(request: pytest.FixtureRequest) -> Iterator[ChannelServer]:
    environ: Dict[str, str] = request.param if hasattr(request, "param") else {}
    server = ChannelServer(OpsInput(Readiness(environ), safeguards=False))
    register([RestInput()], server.app, route="/webhooks/")
    server.start()
    yield server
    server.stop()


def test_health_answers_without_checking_anything(ops_server: ChannelServer) -> None:
    answer = requests.get(f"{ops_server.url}/webhooks/ops/health", timeout=5)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "ops_server",
    [{
        "ACTION_ENDPOINT_URL": closed_port_url("http", "/webhook"),
        "REDIS_URL": closed_port_url("redis", "/0"),
        "GENTINFO_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nothing",
    }],
    indirect=True,
)
def test_ready_is_503_with_a_reason_for_each_failed_dependency(ops_server: ChannelServer) -> None:
    answer = requests.get(f"{ops_server.url}/webhooks/ops/ready", timeout=15)
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "not ready" and body["checks"]["model"] == "ok"
    reasons = " ".join(body["reasons"])
    assert "action_server: http://127.0.0.1:" in reasons and "unreachable" in reasons
    assert "redis: ConnectionError" in reasons and "database: OperationalError" in reasons


def test_ready_without_a_loaded_model_is_503(ops_server: ChannelServer) -> None:
    ops_server.app.ctx.agent = None
    answer = requests.get(f"{ops_server.url}/webhooks/ops/ready", timeout=10)
    assert answer.status_code == 503 and "model: no agent yet" in " ".join(answer.json()["reasons"])


def sample(name: str, labels: Dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_count_messages_and_latency_per_channel(ops_server: ChannelServer) -> None:
    before = sample("gentinfo_messages_total", {"channel": "rest", "status": "200"})
    timed = sample("gentinfo_message_seconds_count", {"channel": "rest"})
    for _ in range(3):
        answer = requests.post(f"{ops_server.url}/webhooks/rest/webhook",
                               json={"sender": "ops-test", "message": "hallo"}, timeout=10)
        assert answer.status_code == 200
    requests.get(f"{ops_server.url}/webhooks/nothing/here", timeout=10)
    text = requests.get(f"{ops_server.url}/webhooks/ops/metrics", timeout=10).text
    assert sample("gentinfo_messages_total", {"channel": "rest", "status": "200"}) == before + 3
    assert sample("gentinfo_message_seconds_count", {"channel": "rest"}) == timed + 3
    assert "gentinfo_message_seconds_bucket" in text and "gentinfo_messages_total" in text
    assert 'channel="nothing"' not in text, "unknown paths must not create label values"


@pytest.mark.parametrize("body", [b"[1]", b"7", b'{"sender": 5, "message": "x"}', b'{"message": {"a": 1}}', b"\xff",
                                  b'{"sender": "s"}', b'{"message": "x", "metadata": []}'])
def test_rest_bodies_rasa_would_answer_with_500_get_400(ops_server: ChannelServer, body: bytes) -> None:
    """Rasa 3.6's RestInput calls ``request.json.get``: a JSON list or number was a 500."""
    answer = requests.post(f"{ops_server.url}/webhooks/rest/webhook", data=body,
                           headers={"Content-Type": "application/json"}, timeout=10)
    assert answer.status_code == 400 and "error" in answer.json()
    assert ops_server.assistant.messages == []


LOCK_SCRIPT = r"""
import asyncio, sys, threading, time, uuid
from urllib.parse import urlsplit
from bot.stores import GentinfoRedisLockStore
from rasa.utils.endpoints import EndpointConfig

url = urlsplit(sys.argv[1])

def new_store():
    # created the way Rasa creates a lock store given by module path in endpoints.production.yml
    return GentinfoRedisLockStore(endpoint_config=EndpointConfig(
        url.hostname, port=url.port or 6379, db=int(url.path.strip("/") or 0), key_prefix="gentinfotest"))

# 1. three "Rasa servers" (threads with their own Redis clients) x 25 messages of one conversation
conversation = f"lock-test-{uuid.uuid4()}"
state = {"active": 0, "peak": 0, "done": 0}
guard = threading.Lock()

def rasa_server(turns):
    store = new_store()
    async def turn():
        async with store.lock(conversation, lock_lifetime=30, wait_time_in_seconds=0.002):
            with guard:
                state["active"] += 1
                state["peak"] = max(state["peak"], state["active"])
            await asyncio.sleep(0.002)
            with guard:
                state["active"] -= 1
                state["done"] += 1
    async def main():
        await asyncio.gather(*(turn() for _ in range(turns)))
    asyncio.run(asyncio.wait_for(main(), 60))

servers = [threading.Thread(target=rasa_server, args=(25,)) for _ in range(3)]
for server in servers:
    server.start()
for server in servers:
    server.join()

# 2. a server took the lock and died; the next message's ticket expires in the same poll
store = new_store()
dead = f"dead-{uuid.uuid4()}"
store.issue_ticket(dead, 1)
async def next_message():
    async with store.lock(dead, lock_lifetime=1, wait_time_in_seconds=1):
        return 1
started = time.monotonic()
answered = asyncio.run(asyncio.wait_for(next_message(), 10))
print(state["peak"], state["done"], answered, round(time.monotonic() - started))
"""


def test_redis_conversation_locks_hold_across_servers_and_survive_a_dead_server() -> None:
    """Rasa 3.6's own RedisLockStore fails both: with three servers taking tickets for one
    conversation at once (GET-then-SET) two or three messages run together and others are lost;
    a message whose ticket expires in the same poll as a dead server's waits forever. With the
    lock store of bot/stores.py: one message at a time, all 75 handled, and the waiting message is answered."""
    from tests.conftest import TEST_REDIS_URL

    run = subprocess.run([sys.executable, "-c", LOCK_SCRIPT, TEST_REDIS_URL], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    peak, done, answered, seconds = map(int, run.stdout.split())
    assert (peak, done, answered) == (1, 75, 1)
    assert seconds <= 3


# -- the action server ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def action_server() -> Iterator[Dict[str, Any]]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), ARTIFACTS / "ops_action_server.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    process = subprocess.Popen([sys.executable, "-m", "bot.action_server", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/health", process, log, timeout=120)
        yield {"url": f"http://127.0.0.1:{port}", "log": log}
    finally:
        process.terminate()
        process.wait(timeout=20)


def action_call(action: str, sender: str, text: str) -> Dict[str, Any]:
    return {
        "next_action": action,
        "sender_id": sender,
        "version": "3.6.21",
        "domain": {},
        "tracker": {
            "sender_id": sender,
            "slots": {},
            "latest_message": {"text": text, "intent": {"name": "nlu_fallback", "confidence": 0.3}, "entities": []},
            "latest_event_time": 0,
            "events": [{"event": "user", "text": text, "parse_data": {"intent": {"name": "nlu_fallback"}}}],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
    }


def metric_value(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_action_server_keeps_rasa_sdks_routes_and_adds_metrics(action_server: Dict[str, Any]) -> None:
    url = action_server["url"]
    names = {entry["name"] for entry in requests.get(f"{url}/actions", timeout=10).json()}
    assert {"action_default_fallback", "action_answer_product"} <= names
    before = requests.get(f"{url}/metrics", timeout=10).text
    sender = "whatsapp:+32470123456"
    answer = requests.post(f"{url}/webhook", json=action_call("action_default_fallback", sender, f"mail {EMAIL}"),
                           timeout=30)
    assert answer.status_code == 200 and "anders zeggen" in answer.json()["responses"][0]["text"]
    missing = requests.post(f"{url}/webhook", json=action_call(f"action_{uuid.uuid4().hex}", sender, "x"), timeout=30)
    assert missing.status_code == 404
    after = requests.get(f"{url}/metrics", timeout=10).text
    fallback_ok = 'gentinfo_actions_total{action="action_default_fallback",outcome="ok"}'
    assert metric_value(after, fallback_ok) == metric_value(before, fallback_ok) + 1
    assert metric_value(after, 'gentinfo_fallbacks_total{kind="first"}') == metric_value(
        before, 'gentinfo_fallbacks_total{kind="first"}') + 1
    assert metric_value(after, 'gentinfo_actions_total{action="unknown",outcome="unknown_action"}') >= 1
    assert 'gentinfo_action_seconds_count{action="action_default_fallback"}' in after


def test_action_server_info_log_masks_the_conversation_id(action_server: Dict[str, Any]) -> None:
    url = action_server["url"]
    for sender in ("whatsapp:+32470123456", f"mail:{EMAIL}"):
        call = action_call("action_contact", sender, f"bel me op {PHONE} of mail {EMAIL}")
        assert requests.post(f"{url}/webhook", json=call, timeout=30).status_code == 200
    log = action_server["log"].read_text()
    lines = [line for line in log.splitlines() if "action action_contact for" in line]
    assert len(lines) >= 2 and " INFO " in lines[0]
    assert any("+32 4•• •• •• 56" in line for line in lines) and any("j•••@stad.gent" in line for line in lines)
    for raw in ("32470123456", PHONE, EMAIL):
        assert raw not in log


# -- deploy/ -------------------------------------------------------------------------------------
def manifests() -> List[Dict[str, Any]]:
    documents = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                document.setdefault("metadata", {}).setdefault("annotations", {})
                documents.append({**document, "_file": path.name})
    return documents


def by_kind(kind: str, name: str) -> Dict[str, Any]:
    return next(d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name)


def test_every_manifest_validates_against_the_kubernetes_schema() -> None:
    import kubernetes_validate

    documents = manifests()
    assert len(documents) >= 20
    for document in documents:
        resource = {k: v for k, v in document.items() if k != "_file"}
        try:
            kubernetes_validate.validate(resource, "1.28", strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{document['_file']} {document['kind']}/{document['metadata']['name']}: {error.message}")


def test_kustomization_lists_every_manifest_except_the_secret_example() -> None:
    listed = set(yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"])
    files = {path.name for path in DEPLOY.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == files


def container(deployment: Dict[str, Any]) -> Dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_rasa_scales_out_with_production_endpoints_and_ops_probes() -> None:
    rasa = by_kind("Deployment", "gentinfo-rasa")
    assert rasa["spec"]["replicas"] >= 2
    main = container(rasa)
    assert main["args"][-1] == "endpoints.production.yml" and "--endpoints" in main["args"]
    assert main["readinessProbe"]["httpGet"]["path"] == "/webhooks/ops/ready"
    assert main["livenessProbe"]["httpGet"]["path"] == "/webhooks/ops/health"
    assert {"secretRef": {"name": "gentinfo-secrets"}} in main["envFrom"]
    assert rasa["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"] == "/webhooks/ops/metrics"
    assert by_kind("HorizontalPodAutoscaler", "gentinfo-rasa")["spec"]["minReplicas"] >= 2
    actions = by_kind("Deployment", "gentinfo-actions")
    assert actions["spec"]["replicas"] >= 2
    assert container(actions)["args"][:3] == ["python", "-m", "bot.action_server"]
    config = by_kind("ConfigMap", "gentinfo-config")["data"]
    assert config["GENTINFO_PROFILE"] == "production"
    assert config["ACTION_ENDPOINT_URL"] == "http://gentinfo-actions:5055/webhook"


def test_ingress_exposes_the_citizen_channels_only() -> None:
    public = by_kind("Ingress", "gentinfo-public")
    paths = {p["path"] for rule in public["spec"]["rules"] for p in rule["http"]["paths"]}
    assert paths == {"/webhooks/whatsapp/webhook", "/webhooks/telegram/webhook", "/webhooks/webchat"}
    assert public["spec"]["tls"]


def test_no_secret_value_is_written_into_a_manifest() -> None:
    """Secrets only through the Secret (envFrom/secretKeyRef); the example holds placeholders."""
    secret_names = set(yaml.safe_load((DEPLOY / "secret.example.yaml").read_text())["stringData"])
    for document in manifests():
        if document["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for item in container(document).get("env", []):
            if item["name"] in secret_names:
                assert "valueFrom" in item, f"{document['_file']}: {item['name']} must come from the Secret"
    example = yaml.safe_load((DEPLOY / "secret.example.yaml").read_text())["stringData"]
    assert all("CHANGE-ME" in value or name in ("TWILIO_ACCOUNT_SID", "TWILIO_WHATSAPP_FROM")
               for name, value in example.items())


def test_production_check_accepts_the_example_configuration() -> None:
    """ConfigMap + example Secret (placeholders filled with well-formed values) pass `bot.profile check`."""
    from bot import profile

    env = dict(by_kind("ConfigMap", "gentinfo-config")["data"])
    env.update(yaml.safe_load((DEPLOY / "secret.example.yaml").read_text())["stringData"])
    env["TWILIO_AUTH_TOKEN"] = "0123456789abcdef" * 2
    env["GENTINFO_CONSOLE_USERS"] = ""
    report = profile.check(env)
    assert report.ok, report.text()


def test_kubectl_kustomize_renders_when_kubectl_is_installed(tmp_path: Path) -> None:
    import shutil

    if not shutil.which("kubectl"):
        pytest.skip("kubectl not installed (the schema validation above does not need it)")
    rendered = subprocess.run(["kubectl", "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(rendered.stdout) if doc]
    assert kinds.count("Deployment") == 4 and kinds.count("StatefulSet") == 2
    assert all(doc["metadata"].get("namespace") in (None, "gentinfo") for doc in yaml.safe_load_all(rendered.stdout) if doc)
