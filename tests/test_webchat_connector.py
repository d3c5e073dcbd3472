"""The web chat connector, served by Sanic wired the way Rasa wires it.

The app gets Rasa's own CORS layer and ``channel.register`` (so ``on_new_message`` is Rasa's handler
calling ``app.ctx.agent.handle_message``); only the agent is a double, keeping its turns in Rasa's
real ``InMemoryTrackerStore``. Pushes are tested with the in-process bus and with real Redis, the
latter from a separate process as the human-handoff console would send.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Tuple

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage, register
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.server import configure_cors
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Sanic

from connectors import outbound, webchat, webchat_bus

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lets one process start several Sanic apps (what sanic-testing does)."""
    monkeypatch.setattr(Sanic, "test_mode", True)


class AssistantDouble:
    """Stands in for Rasa's ``Agent``: answers through the message's output channel, as Rasa does,
    and records each turn in Rasa's own tracker store."""

    def __init__(self) -> None:
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.received: List[UserMessage] = []
        self.delay = 0.0
        self.fail = False
        self.later: Optional[Dict[str, Any]] = None

    async def handle_message(self, message: UserMessage) -> None:
        self.received.append(message)
        if self.fail:
            raise RuntimeError(f"the model crashed on {message.text!r}")  # as real errors may quote
        tracker = await self.tracker_store.get_or_create_tracker(message.sender_id)
        tracker.update(
            UserUttered(
                message.text,
                input_channel=message.input_channel,
                message_id=message.message_id,
                metadata=message.metadata,
            )
        )
        await asyncio.sleep(self.delay)
        for answer in self.answers(message.text or ""):
            await message.output_channel.send_response(message.sender_id, dict(answer))
            data = {key: value for key, value in answer.items() if key != "text"}
            tracker.update(BotUttered(answer.get("text"), data=data))
        await self.tracker_store.save(tracker)
        if self.later is not None:
            # Like a reminder: sent through the same output channel after the turn ended.
            later = self.later
            asyncio.get_running_loop().call_later(
                0.05,
                lambda: asyncio.ensure_future(
                    message.output_channel.send_response(message.sender_id, dict(later))
                ),
            )

    @staticmethod
    def answers(text: str) -> List[Dict[str, Any]]:
        if text == "/greet":
            return [
                {
                    "text": "Dag! Waarmee kan ik u helpen?",
                    "buttons": [{"title": "Openingsuren", "payload": "/ask_opening_hours"}],
                }
            ]
        if text == "/ask_opening_hours":
            return [{"text": "Het Stadskantoor is open van 8.30 tot 16.30 uur."}]
        return [{"text": f"U vroeg: {text}\n\nMeer op https://stad.gent."}, {"image": "https://stad.gent/logo.png"}]


class Chat:
    """A running app plus what a test needs to talk to it."""

    def __init__(self, url: str, agent: AssistantDouble, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.agent = agent
        self.http = http

    async def post(self, body: Any, **headers: str) -> Tuple[int, Any]:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        async with self.http.post(f"{self.url}/webhook", data=data, headers=headers) as resp:
            return resp.status, await resp.json()

    async def history(self, sender: str) -> Tuple[int, Any]:
        async with self.http.get(f"{self.url}/history", params={"sender": sender}) as resp:
            return resp.status, await resp.json()


def new_session() -> str:
    return str(uuid.uuid4())


def make_app(agent: Optional[AssistantDouble], origins: Optional[List[str]] = None) -> Sanic:
    app = Sanic(f"webchat-test-{uuid.uuid4().hex[:8]}", configure_logging=False)
    configure_cors(app, "*")  # what `rasa run --cors "*"` does
    register([webchat.WebChatInput(origins)], app, route="/webhooks/")
    app.ctx.agent = agent
    return app


@asynccontextmanager
async def serving(app: Sanic) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{port}/webhooks/webchat"
    finally:
        await server.before_stop()
        await server.close()
        await server.after_stop()


@asynccontextmanager
async def running_chat(origins: Optional[List[str]] = None) -> AsyncIterator[Chat]:
    agent = AssistantDouble()
    async with serving(make_app(agent, origins)) as url, aiohttp.ClientSession() as http:
        yield Chat(url, agent, http)


@pytest.fixture(params=["in-process", "redis"])
def bus_kind(request: pytest.FixtureRequest, wiring: Callable[..., None]) -> str:
    """Runs a push test once with the in-process bus and once with real Redis pub/sub."""
    wiring(REDIS_URL=request.getfixturevalue("redis_url") if request.param == "redis" else "")
    return request.param


@pytest.fixture
def no_redis(wiring: Callable[..., None]) -> None:
    wiring(REDIS_URL="")


@asynccontextmanager
async def event_stream(chat: Chat, sender: str, **headers: str) -> AsyncIterator[aiohttp.ClientResponse]:
    async with chat.http.get(f"{chat.url}/stream", params={"sender": sender}, headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        yield resp


async def read_events(resp: aiohttp.ClientResponse, count: int, timeout: float = 5.0) -> List[Tuple[int, Dict[str, Any]]]:
    """The next ``count`` SSE events as ``(id, data)``; heartbeat comments are skipped."""

    async def read() -> List[Tuple[int, Dict[str, Any]]]:
        events: List[Tuple[int, Dict[str, Any]]] = []
        event_id, payload = 0, None
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                payload = json.loads(line[6:])
            elif not line and payload is not None:
                events.append((event_id, payload))
                payload = None
                if len(events) == count:
                    return events
        return events

    return await asyncio.wait_for(read(), timeout)


# --- messages ---------------------------------------------------------------------------------


async def test_message_gets_the_bot_answer_and_reaches_rasa_as_a_web_conversation(no_redis: None) -> None:
    async with running_chat() as chat:
        sender = new_session()
        status, answer = await chat.post({"sender": sender, "message": "Waar is het Stadskantoor?"})
        assert status == 200
        assert answer == [
            {"text": "U vroeg: Waar is het Stadskantoor?"},
            {"text": "Meer op https://stad.gent."},
            {"image": "https://stad.gent/logo.png"},
        ]
        received = chat.agent.received[0]
        assert received.sender_id == f"web:{sender}"
        assert received.input_channel == "webchat"
        assert received.output_channel.name() == "webchat"  # channel-specific domain responses


async def test_button_payload_is_sent_to_rasa_and_its_title_kept_for_the_history(no_redis: None) -> None:
    async with running_chat() as chat:
        sender = new_session()
        status, answer = await chat.post(
            {"sender": sender, "message": "/ask_opening_hours", "label": "Openingsuren"}
        )
        assert status == 200
        assert answer == [{"text": "Het Stadskantoor is open van 8.30 tot 16.30 uur."}]
        assert chat.agent.received[0].text == "/ask_opening_hours"
        assert chat.agent.received[0].metadata == {webchat.LABEL_KEY: "Openingsuren"}


async def test_history_is_the_transcript_the_citizen_saw(no_redis: None) -> None:
    async with running_chat() as chat:
        sender = new_session()
        await chat.post({"sender": sender, "message": "/greet"})
        await chat.post({"sender": sender, "message": "/ask_opening_hours", "label": "Openingsuren"})
        _, live = await chat.post({"sender": sender, "message": "Parkeren"})
        status, body = await chat.history(sender)
    assert status == 200
    lines = [{k: v for k, v in line.items() if k != "timestamp"} for line in body["messages"]]
    assert lines == [
        # the automatic /greet is not shown; its answer is
        {
            "sender": "bot",
            "text": "Dag! Waarmee kan ik u helpen?",
            "buttons": [{"title": "Openingsuren", "payload": "/ask_opening_hours"}],
        },
        {"sender": "user", "text": "Openingsuren"},
        {"sender": "bot", "text": "Het Stadskantoor is open van 8.30 tot 16.30 uur."},
        {"sender": "user", "text": "Parkeren"},
        # split into the same messages as the live answer was
        *({"sender": "bot", **message} for message in live),
    ]
    assert len(live) == 3
    stamps = [line["timestamp"] for line in body["messages"]]
    assert stamps == sorted(stamps) and all(isinstance(stamp, float) for stamp in stamps)


async def test_history_of_an_unknown_conversation_is_empty(no_redis: None) -> None:
    async with running_chat() as chat:
        assert await chat.history(new_session()) == (200, {"messages": []})


async def test_history_waits_for_the_assistant_to_load(no_redis: None) -> None:
    async with serving(make_app(None)) as url, aiohttp.ClientSession() as http, \
            http.get(f"{url}/history", params={"sender": new_session()}) as resp:
        assert resp.status == 503
        assert "nog niet klaar" in (await resp.json())["error"]


async def test_a_retried_message_is_answered_once(no_redis: None) -> None:
    async with running_chat() as chat:
        body = {"sender": new_session(), "message": "Afval", "message_id": str(uuid.uuid4())}
        first = await chat.post(body)
        again = await chat.post(body)
    assert first[0] == 200 and first[1][0]["text"] == "U vroeg: Afval"
    assert again == (200, [])
    assert len(chat.agent.received) == 1


async def test_assistant_failure_is_a_dutch_message_not_a_stack_trace(no_redis: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with running_chat() as chat:
        chat.agent.fail = True
        status, body = await chat.post({"sender": new_session(), "message": "Mijn rijksregisternummer is 85.07.30-033.61"})
    assert status == 500
    assert "Er ging iets mis" in body["error"]
    # The citizen's words are personal data: not in any log line or traceback at INFO.
    assert "85.07.30" not in caplog.text
    assert "webchat.message.failed: RuntimeError" in caplog.text


# --- bad input --------------------------------------------------------------------------------

GOOD = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b"{not json", 400, "kon niet worden gelezen"),
        (b"[1, 2]", 400, "kon niet worden gelezen"),
        ({"sender": GOOD}, 400, "kon niet worden gelezen"),
        ({"sender": GOOD, "message": 42}, 400, "kon niet worden gelezen"),
        ({"message": "hallo"}, 400, "niet geldig"),
        ({"sender": "web:" + GOOD, "message": "hallo"}, 400, "niet geldig"),
        ({"sender": GOOD.upper(), "message": "hallo"}, 400, "niet geldig"),
        ({"sender": "../../etc/passwd", "message": "hallo"}, 400, "niet geldig"),
        ({"sender": GOOD, "message": ""}, 400, "leeg"),
        ({"sender": GOOD, "message": " \n\t "}, 400, "leeg"),
        ({"sender": GOOD, "message": "x" * 2001}, 413, "te lang"),
        ({"sender": GOOD, "message": "hallo", "label": "y" * 201}, 400, "kon niet worden gelezen"),
        ({"sender": GOOD, "message": "hallo", "message_id": "a b"}, 400, "kon niet worden gelezen"),
        (json.dumps({"sender": GOOD, "message": "x" * 20000}).encode(), 413, "te lang"),
    ],
)
async def test_bad_messages_get_a_dutch_4xx_and_never_reach_rasa(
    no_redis: None, body: Any, status: int, words: str
) -> None:
    async with running_chat() as chat:
        got_status, got = await chat.post(body, **{"Content-Type": "text/plain;charset=UTF-8"})
        assert (got_status, words in got["error"]) == (status, True)
        assert chat.agent.received == []


async def test_longest_allowed_message_is_accepted(no_redis: None) -> None:
    async with running_chat() as chat:
        status, _ = await chat.post({"sender": new_session(), "message": "x" * webchat.MAX_MESSAGE_CHARS})
    assert status == 200


@pytest.mark.parametrize("endpoint", ["history", "stream"])
@pytest.mark.parametrize("sender", [None, "", "abc", "00000000-0000-0000-0000-000000000000", GOOD + "x"])
async def test_history_and_stream_refuse_bad_conversation_ids(
    no_redis: None, endpoint: str, sender: Optional[str]
) -> None:
    async with running_chat() as chat:
        params = {} if sender is None else {"sender": sender}
        async with chat.http.get(f"{chat.url}/{endpoint}", params=params) as resp:
            assert resp.status == 400
            assert "niet geldig" in (await resp.json())["error"]


# --- push -------------------------------------------------------------------------------------


async def test_outbound_send_reaches_the_open_stream_of_that_conversation_only(bus_kind: str) -> None:
    async with running_chat() as chat:
        sender, other = new_session(), new_session()
        async with event_stream(chat, sender) as stream, event_stream(chat, other) as other_stream:
            await outbound.send(f"web:{sender}", {"text": "Dag, u spreekt met Els van Gentinfo."})
            await outbound.send(
                f"web:{sender}",
                {"text": "Kan ik u helpen?", "buttons": [{"title": "Ja", "payload": "/affirm"}]},
            )
            events = await read_events(stream, 2)
            with pytest.raises(asyncio.TimeoutError):
                await read_events(other_stream, 1, timeout=0.3)
    assert [event_id for event_id, _ in events] == [1, 2]
    assert events[0][1]["text"] == "Dag, u spreekt met Els van Gentinfo."
    assert events[1][1]["buttons"] == [{"title": "Ja", "payload": "/affirm"}]
    assert all(isinstance(data["timestamp"], float) for _, data in events)


async def test_push_from_another_process_reaches_the_stream_through_redis(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    console = (
        "import asyncio, sys\n"
        "import connectors.webchat, connectors.webchat_bus\n"
        "from connectors import outbound\n"
        "async def main():\n"
        "    await outbound.send(sys.argv[1], {'text': sys.argv[2]})\n"
        "    await connectors.webchat_bus.close_buses()\n"
        "asyncio.run(main())\n"
    )
    async with running_chat() as chat:
        sender = new_session()
        async with event_stream(chat, sender) as stream:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", console, f"web:{sender}", "Een medewerker neemt het over.",
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stderr=asyncio.subprocess.PIPE,
            )
            _, stderr = await process.communicate()
            assert process.returncode == 0, stderr.decode()[-2000:]
            events = await read_events(stream, 1)
    assert events[0][1]["text"] == "Een medewerker neemt het over."


async def test_reconnecting_stream_gets_what_it_missed_and_nothing_twice(bus_kind: str) -> None:
    async with running_chat() as chat:
        sender = new_session()
        async with event_stream(chat, sender) as stream:
            await outbound.send(f"web:{sender}", {"text": "een"})
            assert [e for e, _ in await read_events(stream, 1)] == [1]
        # Connection gone; two more messages arrive meanwhile.
        await outbound.send(f"web:{sender}", {"text": "twee"})
        await outbound.send(f"web:{sender}", {"text": "drie"})
        async with event_stream(chat, sender, **{"Last-Event-ID": "1"}) as stream:
            missed = await read_events(stream, 2)
        async with chat.http.get(
            f"{chat.url}/stream", params={"sender": sender, "last_event_id": "2"}
        ) as stream:
            assert [data["text"] for _, data in await read_events(stream, 1)] == ["drie"]
    assert [(event_id, data["text"]) for event_id, data in missed] == [(2, "twee"), (3, "drie")]


async def test_answer_is_pushed_when_the_browser_drops_the_request(bus_kind: str) -> None:
    async with running_chat() as chat:
        sender = new_session()
        chat.agent.delay = 0.5
        async with event_stream(chat, sender) as stream:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(chat.post({"sender": sender, "message": "Trage vraag"}), 0.1)
            events = await read_events(stream, 3)
    assert [data.get("text") for _, data in events] == ["U vroeg: Trage vraag", "Meer op https://stad.gent.", None]
    assert events[2][1]["image"] == "https://stad.gent/logo.png"


async def test_messages_after_the_answer_are_pushed_not_lost(no_redis: None) -> None:
    async with running_chat() as chat:
        sender = new_session()
        chat.agent.later = {"text": "Herinnering: uw afspraak is morgen om 9 uur."}
        async with event_stream(chat, sender) as stream:
            status, answer = await chat.post({"sender": sender, "message": "/ask_opening_hours"})
            events = await read_events(stream, 1)
    assert status == 200 and len(answer) == 1
    assert events[0][1]["text"] == "Herinnering: uw afspraak is morgen om 9 uur."


async def test_rasa_can_push_through_the_input_channels_output_channel(no_redis: None) -> None:
    """Rasa's ``trigger_intent?output_channel=latest`` uses ``get_output_channel`` with the tracker's
    sender id (``web:<uuid>``)."""
    async with running_chat() as chat:
        sender = new_session()
        async with event_stream(chat, sender) as stream:
            channel = webchat.WebChatInput().get_output_channel()
            await channel.send_response(f"web:{sender}", {"text": "Uw aanvraag is klaar."})
            events = await read_events(stream, 1)
    assert events[0][1]["text"] == "Uw aanvraag is klaar."


async def test_when_redis_is_down_the_stream_answers_503_and_a_message_is_still_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The inbox's decision for all three connectors (connectors/inbox.py): without Redis a message
    counts as new and is answered, rather than refused (the question would be lost)."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setattr(webchat_bus, "SUBSCRIBE_TIMEOUT_SECONDS", 0.5)
    async with running_chat() as chat:
        async with chat.http.get(f"{chat.url}/stream", params={"sender": new_session()}) as resp:
            assert resp.status == 503
            assert "geen verbinding" in (await resp.json())["error"]
        status, body = await chat.post({"sender": new_session(), "message": "hallo", "message_id": "m1"})
    assert status == 200 and body[0]["text"].startswith("U vroeg: hallo")


# --- CORS, assets, wiring ---------------------------------------------------------------------


async def test_cors_is_one_header_even_under_rasas_own_cors_layer(no_redis: None) -> None:
    async with running_chat() as chat:
        origin = {"Origin": "https://stad.gent"}
        async with chat.http.post(
            f"{chat.url}/webhook", data=json.dumps({"sender": new_session(), "message": "hallo"}), headers=origin
        ) as resp:
            assert resp.status == 200
            assert resp.headers.getall("Access-Control-Allow-Origin") == ["*"]
        async with chat.http.get(f"{chat.url}/history", params={"sender": new_session()}, headers=origin) as resp:
            assert resp.headers.getall("Access-Control-Allow-Origin") == ["*"]


async def test_only_configured_origins_may_use_the_chat(no_redis: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(webchat.ORIGINS_ENV, "https://stad.gent, https://www.gent.be")
    async with running_chat() as chat:
        body = json.dumps({"sender": new_session(), "message": "hallo"})
        async with chat.http.post(f"{chat.url}/webhook", data=body, headers={"Origin": "https://www.gent.be"}) as resp:
            assert resp.status == 200
            assert resp.headers.getall("Access-Control-Allow-Origin") == ["https://www.gent.be"]
        async with chat.http.post(f"{chat.url}/webhook", data=body, headers={"Origin": "https://evil.example"}) as resp:
            assert resp.status == 403
            assert "niet beschikbaar" in (await resp.json())["error"]
            assert "Access-Control-Allow-Origin" not in resp.headers
        host = chat.url.split("/")[2]
        async with chat.http.post(f"{chat.url}/webhook", data=body, headers={"Origin": f"http://{host}"}) as resp:
            assert resp.status == 200  # the demo page, served by the chat server itself
    assert len(chat.agent.received) == 2


async def test_widget_and_demo_are_served(no_redis: None) -> None:
    async with running_chat() as chat:
        async with chat.http.get(f"{chat.url}/widget.js") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("application/javascript")
            assert resp.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
            assert await resp.read() == (ROOT / "channels/webchat/widget.js").read_bytes()
            etag = resp.headers["ETag"]
        async with chat.http.get(f"{chat.url}/widget.js", headers={"If-None-Match": etag}) as resp:
            assert resp.status == 304
        async with chat.http.get(f"{chat.url}/demo") as resp:
            assert resp.status == 200
            page = await resp.text()
            assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert page.count("<script") == 1 and 'src="widget.js"' in page


def test_credentials_file_enables_the_channel() -> None:
    from rasa.core.run import create_http_input_channels

    channels = create_http_input_channels(None, str(ROOT / "credentials.yml"))
    assert any(isinstance(channel, webchat.WebChatInput) for channel in channels)
    assert outbound.output_channel_for(f"web:{GOOD}")[1] == GOOD
