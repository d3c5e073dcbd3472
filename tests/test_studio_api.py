"""The content studio over HTTP (real aiohttp app in a thread, real Redis sessions, SQLite and
PostgreSQL): every route needs a login, CSRF and roles are enforced, edits land in the draft with
problems next to the field, preview answers from the draft, publish/rollback change what
``get_catalogue()`` serves, unanswered clusters become synonyms, insights come back as JSON and CSV.

``Studio`` and ``Editor`` are also used by the browser tests."""
from __future__ import annotations

import re
from typing import Any, Dict, Iterator, Optional

import pytest
import requests
from sqlalchemy.engine import Engine

from bot.core import catalogue as catalogue_module
from bot.core import content_store, insights, unanswered
from bot.core.handoff import HandoffStore
from channels.studio.app import PUBLIC_PATHS, make_app
from tests.fakes.background import BackgroundServer
from tests.test_console_api import PASSWORDS, USERS

ROLES = {"an": "editor", "bert": "admin"}  # every other console user is an agent
_CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


class Studio:
    """The studio app served from a background thread."""

    def __init__(self, engine: Engine, redis_url: str, secure_cookie: bool = False) -> None:
        self.engine = engine
        self.app = make_app(engine, HandoffStore(redis_url), USERS, ROLES, secure_cookie=secure_cookie)
        self._server = BackgroundServer(self.app)
        self.url = self._server.url

    def start(self) -> "Studio":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def login(self, name: str) -> "Editor":
        return Editor(self.url).login(name, PASSWORDS[name])


class Editor:
    """One logged-in browser session through the studio's HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.csrf = ""

    def login(self, name: str, password: str) -> "Editor":
        form = self.http.get(f"{self.url}/login", timeout=10)
        token = _CSRF_FIELD.search(form.text).group(1)  # type: ignore[union-attr]
        page = self.http.post(f"{self.url}/login", data={"csrf": token, "username": name, "password": password},
                              timeout=10)
        assert page.status_code == 200 and page.url == f"{self.url}/", (page.status_code, page.text[:300])
        self.csrf = _CSRF_META.search(page.text).group(1)  # type: ignore[union-attr]
        return self

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.url + path, timeout=30, allow_redirects=False)

    def send(self, method: str, path: str, body: Optional[Dict[str, Any]] = None,
             csrf: Optional[str] = None) -> requests.Response:
        headers = {"X-CSRF-Token": self.csrf if csrf is None else csrf}
        return self.http.request(method, self.url + path, json=body if body is not None else {}, headers=headers,
                                 timeout=60, allow_redirects=False)

    def ok(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        response = self.send(method, path, body) if method != "GET" else self.get(path)
        assert response.status_code == 200, (method, path, response.status_code, response.text[:500])
        return response.json()


@pytest.fixture
def studio(db_engine: Engine, redis_url: str) -> Iterator[Studio]:
    content_store.configure(db_engine, poll_seconds=0)  # this process serves what the studio publishes
    running = Studio(db_engine, redis_url).start()
    yield running
    running.stop()
    content_store.configure(None)


def _fields(form: Dict[str, Any]) -> Dict[str, Any]:
    return {field["name"]: field["value"] for field in form["fields"]}


def test_every_route_needs_a_login(studio: Studio) -> None:
    anonymous = requests.Session()
    checked = 0
    for route in studio.app.router.routes():
        path = re.sub(r"\{[^}]+\}", "1", route.resource.canonical)  # type: ignore[union-attr]
        response = anonymous.request(route.method, studio.url + path, allow_redirects=False, timeout=10)
        checked += 1
        if path in PUBLIC_PATHS:
            assert response.status_code in (200, 303, 401, 403), (route.method, path)
        elif route.method in ("GET", "HEAD") and not path.startswith(("/api/", "/static/")):
            assert response.status_code == 302 and response.headers["Location"] == "/login", (route.method, path)
        else:
            assert response.status_code == 401, (route.method, path, response.status_code)
    assert checked >= 25
    assert anonymous.get(studio.url + "/api/onbekend", allow_redirects=False).status_code == 401
    page = anonymous.get(studio.url + "/login")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"] and page.headers["X-Frame-Options"] == "DENY"


def test_console_accounts_log_in_and_cookies_are_strict(studio: Studio) -> None:
    editor = studio.login("an")
    cookie = next(c for c in editor.http.cookies if c.name == "gentinfo_studio")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite") == "Strict"
    assert editor.ok("GET", "/api/me")["role"] == "editor"
    assert studio.login("agent01").ok("GET", "/api/me")["role"] == "agent"
    assert studio.login("bert").ok("GET", "/api/me")["role"] == "admin"
    response = editor.send("POST", "/logout", csrf=editor.csrf)
    assert response.status_code == 303 and editor.get("/api/me").status_code == 401


def test_changes_need_the_csrf_token(studio: Studio) -> None:
    editor = studio.login("an")
    for token in ("", "verkeerd"):
        response = editor.send("PUT", "/api/topics/reispas", {"fields": {"price": "€ 1 (indicatief)"}}, csrf=token)
        assert response.status_code == 403 and response.json()["error"] == "csrf"
    assert editor.ok("GET", "/api/drafts")["drafts"] == []


def test_roles_agent_reads_editor_publishes_admin_rolls_back(studio: Studio) -> None:
    agent, editor, admin = studio.login("agent01"), studio.login("an"), studio.login("bert")
    assert agent.ok("GET", "/api/topics/reispas")["kind"] == "product"
    assert agent.ok("POST", "/api/preview", {"question": "hoeveel kost een reispas"})["topic"] == "reispas"
    refused = agent.send("PUT", "/api/topics/reispas", {"fields": {"price": "€ 1 (indicatief)"}})
    assert refused.status_code == 403 and refused.json()["error"] == "role"
    assert agent.send("POST", "/api/publish", {}).status_code == 403
    editor.ok("PUT", "/api/topics/reispas", {"fields": {"price": "€ 1 (indicatief)"}})
    release = editor.ok("POST", "/api/publish", {"note": "test"})["release"]
    assert editor.send("POST", f"/api/versions/{release['id']}/rollback").status_code == 403
    assert admin.ok("POST", "/api/versions/0/rollback")["release"]["rollback_of"] == 0
    assert agent.send("POST", "/api/unanswered/dismiss", {"question_ids": [1]}).status_code == 403
    assert editor.send("POST", "/api/unanswered/dismiss", {"question_ids": [1]}).status_code == 403


def test_edit_preview_publish_and_the_assistant_serves_it(studio: Studio) -> None:
    editor = studio.login("an")
    form = editor.ok("GET", "/api/topics/reispas")
    assert _fields(form)["title"] == "Reispas" and "paspoort" in _fields(form)["synonyms"].splitlines()
    result = editor.ok("PUT", "/api/topics/reispas", {"fields": {
        "answer": "Een reispas vraagt u aan in het Stadskantoor. Breng een pasfoto mee.",
        "synonyms": _fields(form)["synonyms"] + "\ninternationaal paspoort\nreisdocument voor buitenland",
        "price": "€ 88 (indicatief)"}})
    assert result == {"saved": True, "valid": True, "fields": {}, "general": [], "problem_count": 0}
    assert catalogue_module.get_catalogue().product("reispas").price != "€ 88 (indicatief)"  # not published yet

    preview = editor.ok("POST", "/api/preview", {"question": "wat kost een reisdocument voor buitenland?"})
    assert preview["kind"] == "answer" and preview["topic"] == "reispas" and "€ 88 (indicatief)" in preview["text"]
    drafts = editor.ok("GET", "/api/drafts")
    assert [d["name"] for d in drafts["drafts"]] == ["catalogue"] and "+  price: € 88 (indicatief)" in drafts["diff"]["catalogue"]

    release = editor.ok("POST", "/api/publish", {"note": "reispas"})["release"]
    assert release["author"] == "an" and release["documents"] == ["catalogue"]
    served = catalogue_module.get_catalogue()
    assert served.product("reispas").price == "€ 88 (indicatief)"
    assert served.find_product("reisdocument voor buitenland").id == "reispas"
    versions = editor.ok("GET", "/api/versions")["versions"]
    assert [v["id"] for v in versions] == [release["id"]]
    assert "€ 88 (indicatief)" in editor.ok("GET", f"/api/versions/{release['id']}")["diff"]["catalogue"]

    studio.login("bert").ok("POST", "/api/versions/0/rollback")
    assert catalogue_module.get_catalogue().product("reispas").price != "€ 88 (indicatief)"


def test_problems_come_back_next_to_their_field(studio: Studio) -> None:
    editor = studio.login("an")
    result = editor.ok("PUT", "/api/topics/reispas", {"fields": {"price": "88 euro", "url": "geen link"}})
    assert result["saved"] and not result["valid"]
    assert set(result["fields"]) == {"url"}  # pydantic stops at the field error before the price rule
    assert editor.send("POST", "/api/publish", {}).status_code == 400
    result = editor.ok("PUT", "/api/topics/reispas", {"fields": {"url": "https://stad.gent/reispas"}})
    assert set(result["fields"]) == {"price"} and "indicatief" in result["fields"]["price"][0]
    location = editor.ok("PUT", "/api/locations/rabot", {"fields": {"hours_maandag": "17:00-09:00"}})
    assert "ends before it starts" in " ".join(location["fields"]["hours_maandag"])
    days = editor.ok("PUT", "/api/closing-days", {"days": [{"date": "2026-12-25", "reason": "Kerstmis"},
                                                           {"date": "geen datum", "reason": "x"}]})
    assert list(days["rows"]) == ["1"]
    bad = editor.send("PUT", "/api/topics/reispas", {"fields": {"synonyms": 12}})
    assert bad.status_code == 400 and bad.json()["error"] == "bad_form"


def test_a_location_and_closing_day_publish(studio: Studio) -> None:
    editor = studio.login("an")
    result = editor.ok("PUT", "/api/locations/rabot", {"fields": {"hours_zaterdag": "09:00-12:00",
                                                                  "walk_in": "Zonder afspraak: alleen het onthaal."}})
    assert result["valid"], result
    assert editor.ok("PUT", "/api/closing-days", {"days": [{"date": "2026-12-26", "reason": "Tweede kerstdag",
                                                           "locations": ["rabot"]}]})["valid"]
    editor.ok("POST", "/api/publish", {})
    rabot = catalogue_module.get_catalogue().location("rabot")
    assert rabot.opening_hours["zaterdag"] == ["09:00-12:00"] and rabot.walk_in == "Zonder afspraak: alleen het onthaal."
    assert [(str(c.date), c.locations) for c in catalogue_module.get_catalogue().closing_days] == [("2026-12-26", ["rabot"])]


def test_unanswered_cluster_to_synonyms_then_answered(studio: Studio) -> None:
    for text in ("callcenter van de stad", "het callcenter van de stad?", "callcenter van stad gent"):
        unanswered.record(studio.engine, text, channel="webchat", reason="fallback")
    editor = studio.login("an")
    assert editor.ok("POST", "/api/preview", {"question": "callcenter van de stad"})["kind"] == "none"
    data = editor.ok("GET", "/api/unanswered")
    assert data["total"] == 3 and data["clusters"][0]["size"] == 3
    added = editor.ok("POST", "/api/unanswered/synonyms", {"question_ids": data["clusters"][0]["question_ids"],
                                                           "topic": "gentinfo"})
    assert added["document"] == "catalogue" and sorted(added["added"]) == [
        "callcenter van de stad", "callcenter van stad gent", "het callcenter van de stad"]
    assert editor.ok("POST", "/api/preview", {"question": "callcenter van de stad"})["topic"] == "gentinfo"
    assert editor.ok("GET", "/api/unanswered")["clusters"] == []
    editor.ok("POST", "/api/publish", {"note": "synoniemen uit onbeantwoorde vragen"})
    assert catalogue_module.get_catalogue().find_product("wat is het nummer van het callcenter van de stad").id == "gentinfo"
    bad = editor.send("POST", "/api/unanswered/synonyms", {"question_ids": "alle", "topic": "gentinfo"})
    assert bad.status_code == 400


def test_insights_json_and_csv(studio: Studio) -> None:
    insights.record(studio.engine, "conversation", channel="telegram", conversation="telegram:1")
    insights.record(studio.engine, "topic", key="=cmd|' /C calc'!A0")
    agent = studio.login("agent01")
    data = agent.ok("GET", "/api/insights")
    assert data["conversations"] == 1 and data["conversations_per_channel"] == {"telegram": 1}
    csv_response = agent.get("/api/insights.csv")
    assert csv_response.status_code == 200 and csv_response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in csv_response.headers["Content-Disposition"]
    assert "'=cmd" in csv_response.text and ",=cmd" not in csv_response.text
    assert agent.get("/api/insights?from=2026-13-01").status_code == 400
    assert agent.get("/api/insights?from=2020-01-01&to=2026-01-01").status_code == 400


def test_texts_are_listed_and_a_missing_key_is_refused(studio: Studio) -> None:
    editor = studio.login("an")
    assert "channels" in editor.ok("GET", "/api/texts")
    response = editor.send("PUT", "/api/texts/bestaat.niet", {"variants": {"default": "x"}})
    assert response.status_code == 400 and response.json()["error"] == "bad_form"


def test_roles_configuration_is_checked() -> None:
    from channels.studio.roles import ConfigError, load_roles

    assert load_roles("", USERS) == {}
    assert load_roles('{"an": "admin"}', USERS) == {"an": "admin"}
    for broken in ('{"an": "baas"}', '{"niemand": "editor"}', "[1]", "{kapot", "/bestaat/niet.json"):
        with pytest.raises(ConfigError):
            load_roles(broken, USERS)
