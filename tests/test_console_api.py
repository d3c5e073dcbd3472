"""The agent console over HTTP and WebSocket: login, CSRF, every route protected, claim race, replies
reaching the citizen's channel (the fake Telegram and Twilio APIs), live updates from Redis.

The console runs as the real aiohttp app in a background thread with real Redis (test database 15);
conversations are put in the queue with ``HandoffStore.enqueue``, as ``action_human_handoff`` does.
The helpers here (``Console``, ``Agent``, ``LiveFeed``) are also used by the end-to-end tests.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import aiohttp
import pytest
import requests
from argon2 import PasswordHasher

from bot.core.handoff import HandoffStore
from bot.core.texts import say
from channels.console.app import PUBLIC_PATHS, make_app
from connectors import outbound
from tests.fakes.background import BackgroundServer
from tests.fakes.telegram_api import FakeTelegram, parse_html
from tests.fakes.twilio_api import FakeTwilio

#: Cheap argon2 parameters for test accounts; the console verifies whatever parameters a hash names.
_hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
PASSWORDS = {f"agent{n:02d}": f"wachtwoord-{n:02d}-geheim" for n in range(20)}
PASSWORDS.update({"an": "an-heeft-een-lang-wachtwoord", "bert": "bert-ook-een-lang-wachtwoord"})
USERS = {name: _hasher.hash(password) for name, password in PASSWORDS.items()}
_CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def run(coroutine: Any) -> Any:
    """Run a coroutine to the end, also from a thread with a loop of its own (Playwright's sync API)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _enqueue(url: str, conversation: str, **kwargs: Any) -> str:
    store = HandoffStore(url)
    try:
        context = kwargs.pop("context", {"messages": [{"from": "citizen", "text": "ik wil een medewerker spreken"}],
                                         "slots": {"product": "reispas"}, "product_name": "Reispas"})
        queued = await store.enqueue(conversation, reason=kwargs.pop("reason", "explicit"), context=context, **kwargs)
        return queued.handoff.id
    finally:
        await store.close()


def enqueue(url: str, conversation: str, **kwargs: Any) -> str:
    return run(_enqueue(url, conversation, **kwargs))


def citizen_says(url: str, conversation: str, text: str) -> str:
    """What the input gate does with a citizen message (the connectors call the same)."""

    async def go() -> str:
        store = HandoffStore(url)
        try:
            return (await store.citizen_message(conversation, text)).action
        finally:
            await store.close()

    return run(go())


class Console:
    """The console app served from a background thread."""

    def __init__(self, redis_url: str, secure_cookie: bool = False) -> None:
        self.store = HandoffStore(redis_url)
        self.app = make_app(self.store, USERS, secure_cookie=secure_cookie)
        self._server = BackgroundServer(self.app)
        self.url = self._server.url

    def start(self) -> "Console":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def agent(self, name: str = "an") -> "Agent":
        return Agent(self.url).login(name, PASSWORDS[name])


class Agent:
    """One logged-in browser session, through the same HTTP API the console page uses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.csrf = ""
        self.name = ""

    def login(self, name: str, password: str) -> "Agent":
        form = self.http.get(f"{self.url}/login", timeout=10)
        token = _CSRF_FIELD.search(form.text).group(1)  # type: ignore[union-attr]
        page = self.http.post(f"{self.url}/login", data={"csrf": token, "username": name, "password": password},
                              timeout=10)
        assert page.status_code == 200 and page.url == f"{self.url}/", (page.status_code, page.text[:300])
        self.csrf = _CSRF_META.search(page.text).group(1)  # type: ignore[union-attr]
        self.name = name
        return self

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.url + path, timeout=10, allow_redirects=False)

    def post(self, path: str, body: Optional[Dict[str, Any]] = None, csrf: Optional[str] = None) -> requests.Response:
        headers = {"X-CSRF-Token": self.csrf if csrf is None else csrf}
        return self.http.post(self.url + path, json=body or {}, headers=headers, timeout=30, allow_redirects=False)

    def queue(self) -> Dict[str, Any]:
        response = self.get("/api/queue")
        assert response.status_code == 200, response.text
        return response.json()

    def find(self, conversation: str, timeout: float = 10) -> Dict[str, Any]:
        """The queue entry of a conversation, waiting for it to appear."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.queue()
            for item in data["waiting"] + data["held"]:
                if item["conversation"] == conversation:
                    return item
            if time.monotonic() > deadline:
                raise AssertionError(f"{conversation} not in the queue: {data}")
            time.sleep(0.2)

    def conversation(self, handoff_id: str) -> Dict[str, Any]:
        response = self.get(f"/api/conversations/{handoff_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def act(self, handoff_id: str, action: str, text: Optional[str] = None) -> requests.Response:
        return self.post(f"/api/conversations/{handoff_id}/{action}", {"text": text} if text is not None else {})

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)


class LiveFeed:
    """The console's WebSocket, read in a background thread; ``wait_for`` blocks until an event matches."""

    def __init__(self, agent: Agent, origin: Optional[str] = None) -> None:
        self._agent = agent
        self._origin = origin if origin is not None else agent.url
        self.events: List[Dict[str, Any]] = []
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._task: Optional[concurrent.futures.Future] = None
        self._opened = threading.Event()

    async def _read(self) -> None:
        headers = {"Cookie": self._agent.cookie_header, "Origin": self._origin}
        url = self._agent.url.replace("http", "ws") + "/api/ws"
        async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                with self._changed:
                    self.events.append(json.loads(message.data))
                    self._changed.notify_all()
                    self._opened.set()

    def start(self) -> "LiveFeed":
        self._thread.start()
        self._task = asyncio.run_coroutine_threadsafe(self._read(), self._loop)
        if not self._opened.wait(10):  # the "hello" event
            raise AssertionError(f"WebSocket did not open: {self._task.exception(0.1) if self._task.done() else 'timeout'}")
        time.sleep(0.2)  # the relay is subscribed long before; leave the hello behind
        return self

    def wait_for(self, match: Callable[[Dict[str, Any]], bool], timeout: float = 10) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events:
                    if match(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no matching WebSocket event within {timeout} s: {self.events}")
                self._changed.wait(remaining)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(_cancel_others(), self._loop).result(5)  # closes the WebSocket
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


async def _cancel_others() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
def console(redis_url: str, fake_telegram: FakeTelegram, fake_twilio: FakeTwilio,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    """The console with outbound channels pointed at the fake Telegram and Twilio APIs."""
    for name, value in {**fake_telegram.env(), **fake_twilio.env(), "REDIS_URL": redis_url}.items():
        monkeypatch.setenv(name, value)
    outbound.load_channels()
    fake_telegram.clear()
    fake_twilio.clear()
    running = Console(redis_url).start()
    yield running
    running.stop()


def _texts(fake: FakeTelegram) -> List[str]:
    return [parse_html(call.params["text"]) for call in fake.sent()]


# --- login and protection ------------------------------------------------------------------------


def _example_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "0123456789abcdef01234567", path)


def test_every_route_needs_a_login(console: Console) -> None:
    anonymous = requests.Session()
    checked = 0
    for route in console.app.router.routes():
        path = _example_path(route.resource.canonical)  # type: ignore[union-attr]
        response = anonymous.request(route.method, console.url + path, allow_redirects=False, timeout=10)
        checked += 1
        if path in PUBLIC_PATHS:
            assert response.status_code in (200, 303, 401, 403), (route.method, path, response.status_code)
            continue
        if route.method in ("GET", "HEAD") and not path.startswith("/api/") and path != "/static/console.js":
            assert response.status_code == 302 and response.headers["Location"] == "/login", (route.method, path)
        else:
            assert response.status_code == 401, (route.method, path, response.status_code)
            if route.method != "HEAD":
                assert response.json()["error"] == "login_required"
    assert checked >= 15
    # unknown paths reveal nothing either
    assert anonymous.get(console.url + "/api/onbekend", allow_redirects=False).status_code == 401
    assert anonymous.get(console.url + "/admin", allow_redirects=False).status_code == 302
    # the public assets are the login form, its stylesheet and icon, nothing else
    assert {"/login", "/static/console.css", "/static/favicon.svg"} == PUBLIC_PATHS
    assert anonymous.get(console.url + "/static/console.css").status_code == 200


def test_login_logout_and_cookie_flags(console: Console) -> None:
    http = requests.Session()
    form = http.get(console.url + "/login")
    assert form.status_code == 200 and 'lang="nl"' in form.text and "Wachtwoord" in form.text
    token = _CSRF_FIELD.search(form.text).group(1)  # type: ignore[union-attr]

    wrong = http.post(console.url + "/login", data={"csrf": token, "username": "an", "password": "fout"},
                      allow_redirects=False)
    assert wrong.status_code == 401 and "fout wachtwoord" in wrong.text
    token = _CSRF_FIELD.search(wrong.text).group(1)  # type: ignore[union-attr]  # a fresh token each form
    unknown = http.post(console.url + "/login", data={"csrf": token, "username": "niemand", "password": "x" * 20},
                        allow_redirects=False)
    assert unknown.status_code == 401 and unknown.text.count("fout wachtwoord") == 1
    token = _CSRF_FIELD.search(unknown.text).group(1)  # type: ignore[union-attr]

    ok = http.post(console.url + "/login", data={"csrf": token, "username": "AN", "password": PASSWORDS["an"]},
                   allow_redirects=False)
    assert ok.status_code == 303 and ok.headers["Location"] == "/"
    set_cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Path=/" in set_cookie
    page = http.get(console.url + "/")
    assert page.status_code == 200 and ">an<" in page.text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"

    csrf = _CSRF_META.search(page.text).group(1)  # type: ignore[union-attr]
    assert http.post(console.url + "/logout", data={"csrf": "fout"}, allow_redirects=False).status_code == 403
    out = http.post(console.url + "/logout", data={"csrf": csrf}, allow_redirects=False)
    assert out.status_code == 303 and out.headers["Location"] == "/login"
    assert http.get(console.url + "/api/queue").status_code == 401
    # the old cookie is dead on the server, not just forgotten by this browser
    replay = requests.get(console.url + "/api/queue", headers={"Cookie": ok.headers["Set-Cookie"].split(";")[0]})
    assert replay.status_code == 401


def test_secure_cookies_use_the_host_prefix(redis_url: str) -> None:
    running = Console(redis_url, secure_cookie=True).start()
    try:
        http = requests.Session()
        form = http.get(running.url + "/login")
        assert "__Host-gentinfo_console_login=" in form.headers["Set-Cookie"]
        assert "Secure" in form.headers["Set-Cookie"]
        token = _CSRF_FIELD.search(form.text).group(1)  # type: ignore[union-attr]
        # requests does not send Secure cookies over http: pass it by hand, as a browser on https would
        cookie = form.headers["Set-Cookie"].split(";")[0]
        ok = requests.post(running.url + "/login", data={"csrf": token, "username": "an", "password": PASSWORDS["an"]},
                           headers={"Cookie": cookie}, allow_redirects=False)
        assert ok.status_code == 303
        assert ok.headers["Set-Cookie"].startswith("__Host-gentinfo_console=")
        assert all(flag in ok.headers["Set-Cookie"] for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"))
    finally:
        running.stop()


def test_login_form_needs_its_csrf_token_and_repeated_failures_lock(console: Console) -> None:
    http = requests.Session()
    http.get(console.url + "/login")
    missing = http.post(console.url + "/login", data={"username": "an", "password": PASSWORDS["an"]},
                        allow_redirects=False)
    assert missing.status_code == 403
    # a token from a page without the matching cookie (a cross-site form) is refused too
    stranger = requests.Session()
    token = _CSRF_FIELD.search(stranger.get(console.url + "/login").text).group(1)  # type: ignore[union-attr]
    assert http.post(console.url + "/login", data={"csrf": token, "username": "an", "password": PASSWORDS["an"]},
                     allow_redirects=False).status_code == 403

    page = http.get(console.url + "/login")
    for _ in range(10):
        token = _CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
        page = http.post(console.url + "/login", data={"csrf": token, "username": "bert", "password": "raden"})
        assert page.status_code == 401
    token = _CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
    locked = http.post(console.url + "/login", data={"csrf": token, "username": "bert", "password": PASSWORDS["bert"]},
                       allow_redirects=False)
    assert locked.status_code == 429 and "Te veel" in locked.text


def test_state_changes_need_the_csrf_token(console: Console, redis_url: str) -> None:
    handoff_id = enqueue(redis_url, "telegram:801")
    an, bert = console.agent("an"), console.agent("bert")
    for token in ("", "fout", bert.csrf):
        response = an.post(f"/api/conversations/{handoff_id}/claim", csrf=token)
        assert response.status_code == 403 and response.json()["error"] == "csrf"
    assert an.post("/api/availability", {"value": "open"}, csrf="").status_code == 403
    assert an.queue()["waiting"][0]["status"] == "waiting"  # nothing happened
    assert an.act(handoff_id, "claim").status_code == 200


def test_websocket_refuses_other_origins_and_anonymous(console: Console) -> None:
    an = console.agent("an")

    async def connect(headers: Dict[str, str]) -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(console.url.replace("http", "ws") + "/api/ws", headers=headers):
                    return 101
            except aiohttp.WSServerHandshakeError as error:
                return error.status

    assert run(connect({"Origin": "https://evil.example", "Cookie": an.cookie_header})) == 403
    assert run(connect({"Origin": console.url})) == 401
    assert run(connect({"Origin": console.url, "Cookie": an.cookie_header})) == 101


# --- the queue and a conversation ----------------------------------------------------------------


def test_queue_claim_reply_note_transcript_and_handback(console: Console, redis_url: str,
                                                        fake_telegram: FakeTelegram) -> None:
    first = enqueue(redis_url, "telegram:701", reason="misunderstood")
    second = enqueue(redis_url, "telegram:702")
    an, bert = console.agent("an"), console.agent("bert")
    feed = LiveFeed(bert).start()
    try:
        queue = an.queue()
        assert [item["id"] for item in queue["waiting"]] == [first, second]
        item = queue["waiting"][0]
        assert item["channel"] == "telegram" and item["reason"] == "misunderstood" and item["position"] == 1
        assert item["context"]["slots"] == {"product": "reispas"} and item["label"] == "telegram:…701"
        assert item["context"]["messages"][0]["text"] == "ik wil een medewerker spreken"

        claimed = an.act(first, "claim")
        assert claimed.status_code == 200 and claimed.json()["handoff"]["agent"] == "an"
        assert feed.wait_for(lambda e: e["type"] == "claimed" and e["id"] == first)["agent"] == "an"
        fake_telegram.wait_for(1)
        assert _texts(fake_telegram) == [say("channels.agent_claimed")]

        taken = bert.act(first, "claim")
        assert taken.status_code == 409 and taken.json()["holder"] == "an"
        assert bert.act(first, "reply", "Ik neem het over").status_code == 409

        sent_at = time.monotonic()
        reply = an.act(first, "reply", "Dag, ik ben An van Gentinfo. Waarmee kan ik helpen?")
        assert reply.status_code == 200
        call = fake_telegram.wait_for(2)[1]
        delivery = time.monotonic() - sent_at
        assert call.params["chat_id"] == "701"
        assert parse_html(call.params["text"]) == "Dag, ik ben An van Gentinfo. Waarmee kan ik helpen?"
        assert delivery < 1.0, f"reply took {delivery:.2f} s"
        assert feed.wait_for(lambda e: e.get("entry", {}).get("type") == "agent")["entry"]["agent"] == "an"

        note = bert.act(first, "note", "Burger belde gisteren ook al")
        assert note.status_code == 200
        assert citizen_says(redis_url, "telegram:701", "Mijn reispas is <b>kwijt</b>") == "held"
        citizen = feed.wait_for(lambda e: e.get("entry", {}).get("type") == "citizen")
        assert citizen["id"] == first and citizen["entry"]["text"] == "Mijn reispas is <b>kwijt</b>"

        transcript = an.conversation(first)["transcript"]
        assert [(e["type"], e["text"]) for e in transcript if e["type"] != "system"] == [
            ("agent", "Dag, ik ben An van Gentinfo. Waarmee kan ik helpen?"),
            ("note", "Burger belde gisteren ook al"),
            ("citizen", "Mijn reispas is <b>kwijt</b>"),
        ]
        after = an.get(f"/api/conversations/{first}/transcript?after={transcript[-2]['id']}").json()["transcript"]
        assert [e["text"] for e in after] == ["Mijn reispas is <b>kwijt</b>"]
        assert len(fake_telegram.sent()) == 2  # the note never reached the citizen

        assert bert.act(first, "handback").status_code == 409
        back = an.act(first, "handback")
        assert back.status_code == 200 and back.json()["handoff"]["outcome"] == "handback"
        fake_telegram.wait_for(3)
        assert _texts(fake_telegram)[-1] == say("channels.agent_handed_back")
        assert feed.wait_for(lambda e: e["type"] == "closed" and e["id"] == first)["outcome"] == "handback"
        assert citizen_says(redis_url, "telegram:701", "hallo") == "pass"
        assert [item["id"] for item in an.queue()["waiting"]] == [second]

        closed = bert.act(second, "close")  # nobody held it: any agent may close it
        assert closed.status_code == 200
        fake_telegram.wait_for(4)
        assert _texts(fake_telegram)[-1] == say("channels.agent_closed")
        assert an.queue()["waiting"] == [] and an.queue()["held"] == []
        assert an.act(second, "claim").status_code == 409
    finally:
        feed.stop()


def test_input_is_checked(console: Console, redis_url: str) -> None:
    handoff_id = enqueue(redis_url, "telegram:901")
    an = console.agent("an")
    an.act(handoff_id, "claim")
    assert an.act(handoff_id, "reply", "   ").status_code == 400
    assert an.act(handoff_id, "reply", "x" * 4001).status_code == 400
    assert an.get("/api/conversations/niet-geldig").status_code == 404
    assert an.get("/api/conversations/" + "0" * 24).status_code == 404
    assert an.post("/api/availability", {"value": "misschien"}).status_code == 400
    assert an.get(f"/api/conversations/{handoff_id}/transcript?after=x").status_code == 400
    big = an.http.post(an.url + f"/api/conversations/{handoff_id}/note", data="x" * 200_000,
                       headers={"X-CSRF-Token": an.csrf, "Content-Type": "application/json"})
    assert big.status_code == 413


def test_reply_that_cannot_be_delivered_is_reported(console: Console, redis_url: str) -> None:
    handoff_id = enqueue(redis_url, "fax:0921")  # a channel nobody registered
    an = console.agent("an")
    assert an.act(handoff_id, "claim").status_code == 200
    failed = an.act(handoff_id, "reply", "Hallo?")
    assert failed.status_code == 502 and failed.json()["error"] == "not_delivered"
    texts = [e["text"] for e in an.conversation(handoff_id)["transcript"]]
    assert any(text.startswith("Dit antwoord is niet afgeleverd") for text in texts)


def test_availability_switch(console: Console) -> None:
    an = console.agent("an")
    assert an.queue()["availability"] == "auto"
    assert an.post("/api/availability", {"value": "closed"}).json() == {"availability": "closed"}
    data = an.queue()
    assert data["availability"] == "closed" and data["open_now"] is False


def test_concurrent_claims_over_http_have_one_winner(console: Console, redis_url: str,
                                                      fake_whatsapp_conversation: str) -> None:
    handoff_id = enqueue(redis_url, fake_whatsapp_conversation)
    agents = [console.agent(f"agent{n:02d}") for n in range(20)]
    barrier = threading.Barrier(len(agents))

    def claim(agent: Agent) -> Tuple[str, int]:
        barrier.wait()
        return agent.name, agent.act(handoff_id, "claim").status_code

    with concurrent.futures.ThreadPoolExecutor(len(agents)) as pool:
        results = list(pool.map(claim, agents))
    winners = [name for name, status in results if status == 200]
    assert len(winners) == 1, results
    assert sorted(status for _, status in results) == [200] + [409] * 19
    assert agents[0].queue()["held"][0]["agent"] == winners[0]


@pytest.fixture
def fake_whatsapp_conversation(fake_twilio: FakeTwilio) -> str:
    return "whatsapp:+32470999001"
