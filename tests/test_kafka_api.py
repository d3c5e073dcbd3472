"""The staff API of the KAFKA register, served by aiohttp's test server on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Dict, List, Optional

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import Engine

from bot.core import db, kafka
from bot.core.kafka import KafkaRegister, Status
from channels import kafka_api
from tests.clock import Clock

TOKEN = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROBLEM = "Ik moet drie keer hetzelfde attest indienen."
SUGGESTIONS = "/api/kafka/suggestions"


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc))


@pytest.fixture
def register(db_engine: Engine, clock: Clock) -> KafkaRegister:
    return KafkaRegister(db_engine, clock=clock)


def serve(register: KafkaRegister, scenario: Callable[[TestClient], Awaitable[Any]], **app_options: Any) -> Any:
    """Start the app on a free local port, run ``scenario`` against it, shut it down."""

    async def run() -> Any:
        app = kafka_api.make_app(register, TOKEN, **app_options)
        async with TestClient(TestServer(app)) as client:
            return await scenario(client)

    return asyncio.run(run())


async def _get_json(client: TestClient, path: str, **params: str) -> Dict[str, Any]:
    response = await client.get(path, params=params, headers=AUTH)
    assert response.status == 200, await response.text()
    return await response.json()


# -- authentication ----------------------------------------------------------------------------------
def test_api_answers_401_without_or_with_a_wrong_token(register: KafkaRegister) -> None:
    reference = register.file_suggestion(PROBLEM).reference
    requests = [
        ("GET", SUGGESTIONS),
        ("GET", f"{SUGGESTIONS}/{reference}"),
        ("PATCH", f"{SUGGESTIONS}/{reference}"),
        ("GET", "/api/kafka/export.csv"),
        ("GET", "/api/kafka/export.json"),
        ("GET", "/api/kafka/unknown"),
    ]
    wrong = [
        {"Authorization": f"Bearer {TOKEN[:-1]}x"},
        {"Authorization": "Bearer é-niet-ascii"},
        {"Authorization": f"Basic {TOKEN}"},
    ]

    async def scenario(client: TestClient) -> None:
        for method, path in requests:
            response = await client.request(method, path, json={"status": "afgewezen"})
            assert response.status == 401
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="kafka"'
            assert (await response.json())["error"] == "unauthorized"
            for headers in wrong:
                response = await client.request(method, path, headers=headers, json={"status": "afgewezen"})
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].startswith('Bearer realm="kafka"')
        health = await client.get("/healthz")
        assert (health.status, await health.json()) == (200, {"status": "ok"})

    serve(register, scenario)
    assert register.get(reference).status is Status.nieuw


def test_api_refuses_to_be_built_with_a_short_token_and_main_without_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    register = KafkaRegister(db.make_engine("sqlite://"))
    with pytest.raises(ValueError, match=kafka_api.TOKEN_ENV):
        kafka_api.make_app(register, "kort")
    monkeypatch.delenv(kafka_api.TOKEN_ENV, raising=False)
    assert kafka_api.main() == 2
    assert kafka_api.TOKEN_ENV in capsys.readouterr().err
    monkeypatch.setenv(kafka_api.TOKEN_ENV, TOKEN)
    monkeypatch.setenv(kafka.RETENTION_ENV, "nooit")
    assert kafka_api.main() == 2
    assert kafka.RETENTION_ENV in capsys.readouterr().err


def test_health_check_reports_503_when_the_database_is_unreachable() -> None:
    register = KafkaRegister(db.make_engine("postgresql://postgres@127.0.0.1:1/none"))

    async def scenario(client: TestClient) -> None:
        response = await client.get("/healthz")
        assert (response.status, await response.json()) == (503, {"status": "unavailable"})

    serve(register, scenario)


# -- reading -----------------------------------------------------------------------------------------
def test_api_lists_suggestions_filtered_by_date_product_and_status(register: KafkaRegister, clock: Clock) -> None:
    clock.now = datetime(2026, 3, 1, 22, 30, tzinfo=timezone.utc)  # 1 March in Ghent
    first = register.file_suggestion(PROBLEM, product_id="reispas").reference
    clock.now = datetime(2026, 3, 1, 23, 30, tzinfo=timezone.utc)  # 2 March in Ghent
    second = register.file_suggestion(PROBLEM, product_other="iets met parkeren").reference
    clock.now = datetime(2026, 3, 5, 10, 0, tzinfo=timezone.utc)
    third = register.file_suggestion(PROBLEM, product_id="reispas").reference
    register.update_status(third, Status.afgewezen)

    async def scenario(client: TestClient) -> Dict[str, List[str]]:
        queries = {
            "all": {},
            "2 march": {"from": "2026-03-02", "to": "2026-03-02"},
            "until 1 march": {"to": "2026-03-01"},
            "reispas": {"product": "reispas"},
            "anders": {"product": "anders"},
            "afgewezen": {"status": "afgewezen"},
            "reispas nieuw": {"product": "reispas", "status": "nieuw"},
            "page 2": {"limit": "1", "offset": "1"},
        }
        result = {}
        for name, params in queries.items():
            body = await _get_json(client, SUGGESTIONS, **params)
            result[name] = [item["reference"] for item in body["items"]]
        page = await _get_json(client, SUGGESTIONS, limit="1", offset="1")
        assert (page["total"], page["limit"], page["offset"]) == (3, 1, 1)
        item = page["items"][0]
        assert (item["product_other"], item["status_label"], item["created_at"]) == (
            "iets met parkeren", "Ontvangen", "2026-03-02T00:30:00+01:00"
        )
        assert "conversation_id" not in item
        return result

    assert serve(register, scenario) == {
        "all": [third, second, first],
        "2 march": [second],
        "until 1 march": [first],
        "reispas": [third, first],
        "anders": [second],
        "afgewezen": [third],
        "reispas nieuw": [first],
        "page 2": [second],
    }


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-13-01", "from=gisteren", "to=2026-03-01&from=2026-03-02", "from=0001-01-01",
        "limit=0", "limit=501", "limit=abc", "limit=-1", "limit=%EF%BC%95", "offset=-1", "offset=1e3",
        "offset=99999999999999999999", "status=klaar", "product=Reispas", "product=x%27%3Bdrop",
        "kleur=rood", "status=nieuw&status=afgewezen",
    ],
)
def test_api_answers_400_json_on_bad_query_parameters(register: KafkaRegister, query: str) -> None:
    async def scenario(client: TestClient) -> None:
        for path in (SUGGESTIONS, "/api/kafka/export.csv", "/api/kafka/export.json"):
            response = await client.get(f"{path}?{query}", headers=AUTH)
            assert response.status == 400, (path, await response.text())
            assert (await response.json())["error"] == "bad_request"

    serve(register, scenario)


def test_api_shows_one_suggestion_with_history_or_answers_404_and_400(register: KafkaRegister) -> None:
    reference = register.file_suggestion(
        PROBLEM, consent=True, contact_email="an@example.be", channel="telegram", conversation_id="telegram:42"
    ).reference

    async def scenario(client: TestClient) -> None:
        body = await _get_json(client, f"{SUGGESTIONS}/{reference.lower()}")
        assert (body["reference"], body["problem"], body["contact_email"]) == (reference, PROBLEM, "an@example.be")
        assert (body["channel"], body["conversation_id"]) == ("telegram", "telegram:42")
        assert [change["status"] for change in body["history"]] == ["nieuw"]
        for path, status in (
            (f"{SUGGESTIONS}/KAFKA-2026-000099", 404),
            (f"{SUGGESTIONS}/niet-bestaand", 400),
            ("/api/kafka/bestaat-niet", 404),
        ):
            response = await client.get(path, headers=AUTH)
            assert response.status == status
            assert "error" in await response.json()
        response = await client.delete(f"{SUGGESTIONS}/{reference}", headers=AUTH)
        assert response.status == 405 and "PATCH" in response.headers["Allow"]

    serve(register, scenario)


# -- follow-up ---------------------------------------------------------------------------------------
def test_api_status_update_is_stored_with_history(register: KafkaRegister, clock: Clock) -> None:
    reference = register.file_suggestion(PROBLEM).reference
    clock.now += timedelta(days=2)

    async def scenario(client: TestClient) -> None:
        url = f"{SUGGESTIONS}/{reference}"
        response = await client.patch(url, json={"status": "doorgestuurd", "note": "Naar Burgerzaken."}, headers=AUTH)
        assert response.status == 200
        body = await response.json()
        assert (body["status"], body["status_label"], body["internal_note"]) == (
            "doorgestuurd", "Doorgestuurd naar de juiste dienst", "Naar Burgerzaken."
        )
        assert body["updated_at"] == "2026-03-04T11:00:00+01:00"
        history = (await _get_json(client, url))["history"]
        assert [(c["status"], c["note"]) for c in history] == [("nieuw", None), ("doorgestuurd", "Naar Burgerzaken.")]

    serve(register, scenario)
    assert register.status_of(reference).status is Status.doorgestuurd


def test_api_status_update_answers_400_on_bad_input_and_404_on_unknown_reference(register: KafkaRegister) -> None:
    reference = register.file_suggestion(PROBLEM).reference
    bad_bodies: List[Optional[str]] = [
        json.dumps({"status": "klaar"}),
        json.dumps({"note": "zonder status"}),
        json.dumps({"status": "afgewezen", "kleur": "rood"}),
        json.dumps({"status": "afgewezen", "note": 42}),
        json.dumps({"status": "afgewezen", "note": "x" * (kafka.MAX_NOTE_CHARS + 1)}),
        json.dumps(["afgewezen"]),
        "{niet json",
        None,
    ]

    async def scenario(client: TestClient) -> None:
        for body in bad_bodies:
            response = await client.patch(f"{SUGGESTIONS}/{reference}", data=body, headers=AUTH)
            assert response.status == 400, body
            assert (await response.json())["error"] == "bad_request"
        response = await client.patch(f"{SUGGESTIONS}/KAFKA-2026-000099", json={"status": "afgewezen"}, headers=AUTH)
        assert response.status == 404

    serve(register, scenario)
    assert [c.status for c in register.get(reference).history] == [Status.nieuw]


# -- exports -----------------------------------------------------------------------------------------
def test_api_csv_export_is_filtered_escaped_and_opens_as_utf8(register: KafkaRegister) -> None:
    formula = register.file_suggestion("=1+2 zegt de rekenmachine 😀", product_id="reispas").reference
    html = register.file_suggestion("<img src=x onerror=alert(1)> blijft gewoon tekst", product_id="reispas").reference
    other = register.file_suggestion(PROBLEM, product_id="rijbewijs").reference

    async def scenario(client: TestClient) -> None:
        response = await client.get("/api/kafka/export.csv", params={"product": "reispas"}, headers=AUTH)
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert response.headers["Content-Disposition"].startswith('attachment; filename="kafka-')
        assert response.headers["Cache-Control"] == "no-store"
        raw = await response.read()
        assert raw.startswith("\ufeff".encode("utf-8"))
        rows = {row["reference"]: row for row in csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline=""))}
        assert set(rows) == {formula, html}
        assert other not in rows
        assert rows[formula]["problem"] == "'=1+2 zegt de rekenmachine 😀"
        assert rows[html]["problem"] == "<img src=x onerror=alert(1)> blijft gewoon tekst"

    serve(register, scenario)


def test_api_json_export_is_filtered_and_safe_to_embed_in_html(register: KafkaRegister) -> None:
    problem = "</script><script>alert('x')</script> & nog meer"
    reference = register.file_suggestion(problem).reference
    register.file_suggestion(PROBLEM, product_id="reispas")

    async def scenario(client: TestClient) -> None:
        response = await client.get("/api/kafka/export.json", params={"product": "anders"}, headers=AUTH)
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert response.headers["Content-Disposition"].endswith('.json"')
        text = await response.text()
        assert not set("<>&") & set(text)
        body = json.loads(text)
        assert body["count"] == 1
        assert (body["suggestions"][0]["reference"], body["suggestions"][0]["problem"]) == (reference, problem)
        listed = await client.get(SUGGESTIONS, headers=AUTH)
        assert "<" not in await listed.text()

    serve(register, scenario)


# -- retention and logs ------------------------------------------------------------------------------
def test_api_purges_old_contact_details_at_start_up(register: KafkaRegister, clock: Clock) -> None:
    old = register.file_suggestion(PROBLEM, consent=True, contact_email="an@example.be", channel="web", conversation_id="web:1")
    clock.now += timedelta(days=400)
    recent = register.file_suggestion(PROBLEM, consent=True, contact_email="bo@example.be")

    async def scenario(client: TestClient) -> List[Dict[str, Any]]:
        return [await _get_json(client, f"{SUGGESTIONS}/{ref}") for ref in (old.reference, recent.reference)]

    purged, kept = serve(register, scenario, retention_days=365)
    assert (purged["contact_email"], purged["conversation_id"], purged["problem"]) == (None, None, PROBLEM)
    assert purged["contact_purged_at"] is not None
    assert kept["contact_email"] == "bo@example.be"


def test_message_text_and_contact_details_stay_out_of_the_logs(
    register: KafkaRegister, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_text = "Mijn buurman Jan Janssens weet hier alles van"
    reference = register.file_suggestion(
        secret_text, consent=True, contact_email="geheim@example.be", contact_phone="0470123456",
        channel="whatsapp", conversation_id="whatsapp:+32470123456",
    ).reference

    async def scenario(client: TestClient) -> None:
        await _get_json(client, SUGGESTIONS)
        await _get_json(client, f"{SUGGESTIONS}/{reference}")
        await client.patch(f"{SUGGESTIONS}/{reference}", json={"status": "afgewezen", "note": "Jan belde"}, headers=AUTH)
        await client.get("/api/kafka/export.csv", headers=AUTH)

    serve(register, scenario, retention_days=0)
    assert reference in caplog.text  # the logs do say what happened ...
    for secret in ("Janssens", "Jan belde", "geheim@example.be", "470123456"):  # ... but not to whom or what
        assert secret not in caplog.text
