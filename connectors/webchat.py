"""Web chat on gent.be: the Rasa input channel behind the widget in ``channels/webchat``.

One HTTP round trip per user message returns the bot's answer (like Rasa's REST channel). Messages
that arrive outside such a round trip — an agent's reply during human handoff, a reminder, an answer
whose request the browser dropped — are pushed over Server-Sent Events. Pushes go through a bus:
Redis pub/sub when ``REDIS_URL`` is set, so that any process (Rasa, the handoff console) reaches the
browser whichever process holds its stream; an in-process bus otherwise (single-process default).

Conversation ids are ``web:<uuid>``; the browser makes the uuid with ``crypto.randomUUID()`` and it
is the only key to the conversation's history, so it is checked strictly and never logged whole.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
import weakref
from collections import OrderedDict, defaultdict, deque
from contextlib import asynccontextmanager
from pathlib import Path
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Deque,
    Dict,
    List,
    Optional,
    Set,
    Text,
    Tuple,
)
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic_cors.core import SANIC_CORS_EVALUATED

from connectors import gate, outbound  # gate: human handoff

logger = logging.getLogger(__name__)

PREFIX = "web"
SESSION_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MESSAGE_ID_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,64}$")
MAX_MESSAGE_CHARS = 2000
MAX_LABEL_CHARS = 200
MAX_BODY_BYTES = 16 * 1024
#: Comment lines keep proxies and Sanic's response timeout from closing an idle stream.
HEARTBEAT_SECONDS = 15.0
#: Pushed messages kept per conversation, so a stream that reconnects gets what it missed.
BACKLOG_SIZE = 50
BACKLOG_SECONDS = 3600
#: How long a message id is remembered, so a browser's retry is not answered twice.
CLAIM_SECONDS = 600
SUBSCRIBE_TIMEOUT_SECONDS = 5.0
#: Metadata key of the text the citizen saw for a button payload (the history shows it).
LABEL_KEY = "webchat_label"

ASSETS = Path(__file__).resolve().parent.parent / "channels" / "webchat"
ORIGINS_ENV = "GENTINFO_WEBCHAT_ORIGINS"

TEXTS = {
    "bad_request": "Uw bericht kon niet worden gelezen. Laad de pagina opnieuw en probeer het nog eens.",
    "bad_session": "Dit gesprek is niet geldig. Kies 'Opnieuw beginnen' om een nieuw gesprek te starten.",
    "empty": "Uw bericht is leeg. Typ eerst uw vraag.",
    "too_long": f"Uw bericht is te lang. Houd het korter dan {MAX_MESSAGE_CHARS} tekens.",
    "origin": "Deze chat is niet beschikbaar op deze website.",
    "not_ready": "De chat is nog niet klaar. Probeer het over enkele ogenblikken opnieuw.",
    "no_bus": "Er is even geen verbinding met de chat. We proberen het opnieuw.",
    "failed": (
        "Er ging iets mis bij het beantwoorden van uw vraag. Probeer het later opnieuw "
        "of bel Gentinfo op 09 210 10 10."
    ),
}

Event = Tuple[int, Dict[str, Any]]


class BusUnavailable(RuntimeError):
    """The push bus (Redis) cannot be reached right now."""


class PushBus:
    """Delivers pushed bot messages to the open streams of a conversation.

    Each pushed message gets an id that grows per conversation; a short backlog lets a stream that
    reconnects with its last id catch up, so a dropped connection loses nothing.
    """

    def __init__(self) -> None:
        self._streams: Dict[str, Set[asyncio.Queue]] = defaultdict(set)

    async def publish(self, session: str, message: Dict[str, Any]) -> int:
        raise NotImplementedError

    async def claim(self, key: str) -> bool:
        """True the first time ``key`` is seen within ``CLAIM_SECONDS``."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections (server shutdown)."""

    async def _backlog(self, session: str, after: int) -> List[Event]:
        raise NotImplementedError

    async def _ready(self) -> None:
        """Wait until events published from now on reach ``_deliver``."""

    def _deliver(self, session: str, event: Optional[Event]) -> None:
        for queue in self._streams.get(session, ()):
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self, session: str, after: int) -> AsyncIterator["asyncio.Queue[Optional[Event]]"]:
        """A queue of the conversation's events with an id above ``after``, oldest first.

        ``None`` in the queue means the bus lost its source: end the stream so the browser
        reconnects and catches up from the backlog.
        """
        queue: "asyncio.Queue[Optional[Event]]" = asyncio.Queue()
        self._streams[session].add(queue)
        try:
            await self._ready()
            missed = await self._backlog(session, after)
            live: List[Optional[Event]] = []
            while not queue.empty():
                live.append(queue.get_nowait())
            # Live events may have come in while the backlog was read: merge, in id order, once.
            merged = {event[0]: event for event in missed + [e for e in live if e is not None]}
            for event_id in sorted(merged):
                queue.put_nowait(merged[event_id])
            if None in live:
                queue.put_nowait(None)
            yield queue
        finally:
            streams = self._streams.get(session)
            if streams is not None:
                streams.discard(queue)
                if not streams:
                    del self._streams[session]


class InProcessBus(PushBus):
    """The bus for a single process without Redis (embedded default)."""

    def __init__(self) -> None:
        super().__init__()
        self._sequence: Dict[str, int] = defaultdict(int)
        # session -> (time of last push, events); oldest first, so expiry pops from the front.
        self._backlogs: "OrderedDict[str, Tuple[float, Deque[Event]]]" = OrderedDict()
        self._claims: "OrderedDict[str, float]" = OrderedDict()

    async def publish(self, session: str, message: Dict[str, Any]) -> int:
        now = time.monotonic()
        _expire(self._backlogs, now - BACKLOG_SECONDS, key=lambda entry: entry[0])
        self._sequence[session] += 1
        event = (self._sequence[session], message)
        _, events = self._backlogs.pop(session, (now, deque(maxlen=BACKLOG_SIZE)))
        events.append(event)
        self._backlogs[session] = (now, events)
        self._deliver(session, event)
        return event[0]

    async def claim(self, key: str) -> bool:
        now = time.monotonic()
        _expire(self._claims, now - CLAIM_SECONDS, key=lambda seen: seen)
        if key in self._claims:
            return False
        self._claims[key] = now
        return True

    async def _backlog(self, session: str, after: int) -> List[Event]:
        _, events = self._backlogs.get(session, (0.0, ()))
        return [event for event in events if event[0] > after]


def _expire(entries: "OrderedDict[str, Any]", before: float, key: Callable[[Any], float]) -> None:
    while entries:
        oldest = next(iter(entries))
        if key(entries[oldest]) >= before:
            return
        del entries[oldest]


# Atomic, so that concurrent publishers (Rasa and the handoff console) never interleave ids.
_PUBLISH_SCRIPT = """
local id = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local event = '{"id":' .. id .. ',"message":' .. ARGV[1] .. '}'
redis.call('RPUSH', KEYS[2], event)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', KEYS[3], event)
return id
"""
_KEY_PREFIX = "gentinfo:webchat:"
_CHANNEL_PATTERN = _KEY_PREFIX + "push:*"


class RedisBus(PushBus):
    """The bus across processes: Redis pub/sub plus a short backlog list per conversation.

    A process keeps ONE pattern subscription and fans out to its own streams, so open browser
    streams do not each hold a Redis connection.
    """

    def __init__(self, url: str) -> None:
        super().__init__()
        self._redis = aioredis.Redis.from_url(url)
        self._publish = self._redis.register_script(_PUBLISH_SCRIPT)
        self._listener: Optional[asyncio.Task] = None
        self._listening = asyncio.Event()

    async def publish(self, session: str, message: Dict[str, Any]) -> int:
        try:
            return int(
                await self._publish(
                    keys=[
                        f"{_KEY_PREFIX}{{{session}}}:seq",
                        f"{_KEY_PREFIX}{{{session}}}:backlog",
                        f"{_KEY_PREFIX}push:{session}",
                    ],
                    args=[json.dumps(message), BACKLOG_SIZE, BACKLOG_SECONDS],
                )
            )
        except (RedisError, OSError) as error:
            raise BusUnavailable(str(error)) from error

    async def claim(self, key: str) -> bool:
        try:
            return bool(await self._redis.set(f"{_KEY_PREFIX}claim:{key}", 1, nx=True, ex=CLAIM_SECONDS))
        except (RedisError, OSError) as error:
            raise BusUnavailable(str(error)) from error

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await self._redis.close(close_connection_pool=True)

    async def _backlog(self, session: str, after: int) -> List[Event]:
        try:
            raw = await self._redis.lrange(f"{_KEY_PREFIX}{{{session}}}:backlog", 0, -1)
        except (RedisError, OSError) as error:
            raise BusUnavailable(str(error)) from error
        events = [_decode_event(item) for item in raw]
        return [event for event in events if event[0] > after]

    async def _ready(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.ensure_future(self._listen())
        try:
            await asyncio.wait_for(self._listening.wait(), SUBSCRIBE_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            raise BusUnavailable("no Redis subscription") from None

    async def _listen(self) -> None:
        """Receive all web pushes; on a Redis failure end the local streams and resubscribe."""
        delay = 0.5
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(_CHANNEL_PATTERN)
                async for item in pubsub.listen():
                    if item["type"] == "psubscribe":
                        # Confirmed by Redis: from here on no publish can slip past us.
                        self._listening.set()
                        delay = 0.5
                    elif item["type"] == "pmessage":
                        session = item["channel"].decode().rsplit(":", 1)[1]
                        self._deliver(session, _decode_event(item["data"]))
            except (RedisError, OSError) as error:
                logger.warning("webchat.push.redis_lost", extra={"error": str(error)})
            finally:
                self._listening.clear()
                await pubsub.reset()
            for session in list(self._streams):
                self._deliver(session, None)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def _decode_event(raw: bytes) -> Event:
    event = json.loads(raw)
    return int(event["id"]), event["message"]


_buses: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[Optional[str], PushBus]]" = (
    weakref.WeakKeyDictionary()
)


def default_bus() -> PushBus:
    """The bus of this event loop: Redis when ``REDIS_URL`` is set, in-process otherwise."""
    url = os.environ.get("REDIS_URL") or None
    per_loop = _buses.setdefault(asyncio.get_running_loop(), {})
    if url not in per_loop:
        per_loop[url] = RedisBus(url) if url else InProcessBus()
    return per_loop[url]


async def close_buses() -> None:
    """Close the buses of the running loop (server shutdown, tests)."""
    for bus in _buses.pop(asyncio.get_running_loop(), {}).values():
        await bus.close()


def session_of(recipient_id: str) -> str:
    """The browser's uuid from ``web:<uuid>`` (Rasa's sender id) or ``<uuid>`` (outbound)."""
    prefix, sep, native = recipient_id.partition(":")
    return native if sep and prefix == PREFIX else recipient_id


class WebChatOutput(CollectingOutputChannel):
    """Pushes bot messages to the browser's stream (outbound factory for ``web:`` ids)."""

    def __init__(self, bus: Optional[PushBus] = None) -> None:
        super().__init__()
        self._bus = bus

    @classmethod
    def name(cls) -> Text:
        # Also the channel name for channel-specific responses in the domain.
        return "webchat"

    async def _persist_message(self, message: Dict[str, Any]) -> None:
        pushed = {key: value for key, value in message.items() if key != "recipient_id"}
        pushed["timestamp"] = time.time()
        await (self._bus or default_bus()).publish(session_of(message["recipient_id"]), pushed)


class WebChatCollector(WebChatOutput):
    """Collects the answer to one request; whatever comes after the answer went out is pushed."""

    def __init__(self, bus: PushBus) -> None:
        super().__init__(bus)
        self.answering = True

    async def _persist_message(self, message: Dict[str, Any]) -> None:
        if self.answering:
            self.messages.append(message)
        else:
            await super()._persist_message(message)

    async def push_collected(self) -> None:
        """The request is gone: deliver the collected answer, and all later messages, by push."""
        self.answering = False
        collected, self.messages = self.messages, []
        for message in collected:
            await super()._persist_message(message)


outbound.register(PREFIX, WebChatOutput)


async def transcript(tracker: Optional[DialogueStateTracker]) -> List[Dict[str, Any]]:
    """What the citizen saw, from the tracker: typed texts, button titles and the bot's messages.

    Bot messages go through Rasa's collecting channel again, so they are split exactly as the live
    answer was. Payloads without a label (the widget's automatic ``/greet``) were never shown.
    """
    if tracker is None:
        return []
    lines: List[Dict[str, Any]] = []
    for event in tracker.events:
        if isinstance(event, UserUttered):
            label = (event.metadata or {}).get(LABEL_KEY)
            text = label if isinstance(label, str) else event.text
            if text and (label is not None or not text.startswith("/")):
                lines.append({"sender": "user", "text": text, "timestamp": event.timestamp})
        elif isinstance(event, BotUttered):
            replay = CollectingOutputChannel()
            await replay.send_response(tracker.sender_id, {**(event.data or {}), "text": event.text})
            for message in replay.messages:
                shown = {k: message[k] for k in ("text", "buttons", "image", "attachment") if message.get(k)}
                if shown:
                    lines.append({"sender": "bot", **shown, "timestamp": event.timestamp})
    return lines


class RequestRejected(Exception):
    """A request the widget endpoints answer with a Dutch error and a 4xx/5xx status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class WebChatInput(InputChannel):
    """Endpoints under ``/webhooks/webchat/`` for the gent.be widget."""

    def __init__(self, origins: Optional[List[str]] = None) -> None:
        if origins is None:
            raw = os.environ.get(ORIGINS_ENV, "*")
            origins = [origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip()]
        self.origins = origins

    @classmethod
    def name(cls) -> Text:
        return "webchat"

    def get_output_channel(self) -> Optional[WebChatOutput]:
        return WebChatOutput()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        on_new_message = gate.guard(on_new_message)  # human handoff: held conversations reach the agent
        webchat = Blueprint("webchat_webhook", __name__)
        assets = {
            "widget.js": _Asset(ASSETS / "widget.js", "application/javascript; charset=utf-8"),
            "demo": _Asset(ASSETS / "demo.html", "text/html; charset=utf-8"),
        }

        @webchat.listener("after_server_stop")
        async def close_bus(*_: Any) -> None:
            await close_buses()

        @webchat.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"}, headers=self._cors(request))

        @webchat.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            headers = self._cors(request)
            try:
                self._check_origin(request)
                session, text, label, message_id = _parse_message(request.body)
                bus = default_bus()
                if message_id and not await bus.claim(f"{session}:{message_id}"):
                    # A retry of a message that already arrived: its answer went out (or is pushed).
                    return response.json([], headers=headers)
            except RequestRejected as rejected:
                return _error(rejected, headers)
            except BusUnavailable:
                return _error(RequestRejected(503, "no_bus"), headers)
            collector = WebChatCollector(bus)
            message = UserMessage(
                text,
                collector,
                outbound.conversation_id(PREFIX, session),
                input_channel=self.name(),
                message_id=message_id,
                metadata={LABEL_KEY: label} if label is not None else None,
            )
            handling = asyncio.ensure_future(on_new_message(message))
            try:
                await asyncio.shield(handling)
            except asyncio.CancelledError:
                # The browser went away (reload, network): finish the turn and push the answer.
                asyncio.ensure_future(_push_when_done(handling, collector))
                raise
            except Exception as error:  # noqa: BLE001 - the assistant failed; the citizen gets a clear text
                # A traceback may quote the citizen's words: only with DEBUG logging on.
                logger.error(
                    "webchat.message.failed: %s", type(error).__name__, exc_info=logger.isEnabledFor(logging.DEBUG)
                )
                return _error(RequestRejected(500, "failed"), headers)
            collector.answering = False
            return response.json(
                [{k: v for k, v in m.items() if k != "recipient_id"} for m in collector.messages],
                headers=headers,
            )

        @webchat.route("/history", methods=["GET"])
        async def history(request: Request) -> HTTPResponse:
            headers = self._cors(request)
            try:
                self._check_origin(request)
                session = _valid_session(request.args.get("sender"))
                agent = getattr(request.app.ctx, "agent", None)
                if agent is None:
                    raise RequestRejected(503, "not_ready")
            except RequestRejected as rejected:
                return _error(rejected, headers)
            tracker = await agent.tracker_store.retrieve_full_tracker(
                outbound.conversation_id(PREFIX, session)
            )
            headers["Cache-Control"] = "no-store"
            return response.json({"messages": await transcript(tracker)}, headers=headers)

        @webchat.route("/stream", methods=["GET"])
        async def stream(request: Request) -> Optional[HTTPResponse]:
            headers = self._cors(request)
            try:
                self._check_origin(request)
                session = _valid_session(request.args.get("sender"))
                after = _last_event_id(request)
                async with default_bus().subscribe(session, after) as queue:
                    await _send_events(request, headers, queue, after)
            except RequestRejected as rejected:
                return _error(rejected, headers)
            except BusUnavailable:
                return _error(RequestRejected(503, "no_bus"), headers)
            return None

        @webchat.route("/widget.js", methods=["GET"])
        async def widget(request: Request) -> HTTPResponse:
            headers = self._cors(request)
            # gent.be may isolate itself (COEP); the widget is meant to be loaded from elsewhere.
            headers["Cross-Origin-Resource-Policy"] = "cross-origin"
            return assets["widget.js"].respond(request, headers)

        @webchat.route("/demo", methods=["GET"])
        async def demo(request: Request) -> HTTPResponse:
            # The strict policy proves the widget needs no inline code and no third-party host.
            headers = {
                "Content-Security-Policy": (
                    "default-src 'self'; img-src 'self' https: data:; script-src 'self'; "
                    "style-src 'self'; connect-src 'self'; frame-ancestors 'none'"
                )
            }
            return assets["demo"].respond(request, headers)

        return webchat

    def _cors(self, request: Request) -> Dict[str, str]:
        """CORS headers of the widget endpoints, set here instead of by Rasa's ``--cors``."""
        # Rasa's Sanic-CORS would add its own Access-Control-Allow-Origin; two of them break CORS.
        setattr(request.ctx, SANIC_CORS_EVALUATED, "1")
        origin = request.headers.get("origin")
        if "*" in self.origins:
            return {"Access-Control-Allow-Origin": "*"}
        if origin and origin.rstrip("/") in self.origins:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {"Vary": "Origin"}

    def _check_origin(self, request: Request) -> None:
        """Refuse calls from pages that are not allowed to embed the chat (same origin is)."""
        origin = request.headers.get("origin")
        if not origin or "*" in self.origins or origin.rstrip("/") in self.origins:
            return
        if urlsplit(origin).netloc != request.host:
            raise RequestRejected(403, "origin")


class _Asset:
    """A widget file, read once, with an ETag so browsers revalidate cheaply."""

    def __init__(self, path: Path, content_type: str) -> None:
        self.body = path.read_bytes()
        self.content_type = content_type
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'

    def respond(self, request: Request, headers: Dict[str, str]) -> HTTPResponse:
        headers = {
            **headers,
            "ETag": self.etag,
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == self.etag:
            return response.empty(status=304, headers=headers)
        return response.raw(self.body, headers=headers, content_type=self.content_type)


def _error(rejected: RequestRejected, headers: Dict[str, str]) -> HTTPResponse:
    return response.json({"error": TEXTS[rejected.reason]}, status=rejected.status, headers=headers)


def _valid_session(value: Any) -> str:
    if not isinstance(value, str) or not SESSION_PATTERN.match(value):
        raise RequestRejected(400, "bad_session")
    return value


def _parse_message(body: bytes) -> Tuple[str, str, Optional[str], Optional[str]]:
    """``(session, text, label, message_id)`` from the widget's JSON body.

    The widget sends JSON as ``text/plain`` so that browsers make no CORS preflight (Rasa's own
    CORS layer answers every OPTIONS request), hence the body is parsed whatever its type.
    """
    if len(body) > MAX_BODY_BYTES:
        raise RequestRejected(413, "too_long")
    try:
        payload = json.loads(body)
    except ValueError:
        raise RequestRejected(400, "bad_request") from None
    if not isinstance(payload, dict):
        raise RequestRejected(400, "bad_request")
    session = _valid_session(payload.get("sender"))
    text, label, message_id = payload.get("message"), payload.get("label"), payload.get("message_id")
    if not isinstance(text, str):
        raise RequestRejected(400, "bad_request")
    if not text.strip():
        raise RequestRejected(400, "empty")
    if len(text) > MAX_MESSAGE_CHARS:
        raise RequestRejected(413, "too_long")
    if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL_CHARS):
        raise RequestRejected(400, "bad_request")
    if message_id is not None and (
        not isinstance(message_id, str) or not MESSAGE_ID_PATTERN.match(message_id)
    ):
        raise RequestRejected(400, "bad_request")
    return session, text, label, message_id


def _last_event_id(request: Request) -> int:
    """The last pushed message the browser has: EventSource's own header, or our query argument."""
    raw = request.headers.get("last-event-id") or request.args.get("last_event_id") or "0"
    return int(raw) if raw.isdigit() else 0


async def _send_events(
    request: Request, headers: Dict[str, str], queue: "asyncio.Queue[Optional[Event]]", after: int
) -> None:
    stream = await request.respond(
        headers={**headers, "Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        content_type="text/event-stream; charset=utf-8",
    )
    await stream.send(": ok\n\n")
    last = after
    while True:
        try:
            event = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
        except asyncio.TimeoutError:
            await stream.send(": ping\n\n")
            continue
        if event is None:
            break
        event_id, message = event
        if event_id > last:
            last = event_id
            await stream.send(f"id: {event_id}\ndata: {json.dumps(message)}\n\n")
    await stream.eof()


async def _push_when_done(handling: "asyncio.Future[Any]", collector: WebChatCollector) -> None:
    await asyncio.wait([handling])
    if handling.cancelled() or handling.exception() is not None:
        logger.warning("webchat.message.failed_after_disconnect")
        return
    try:
        await collector.push_collected()
    except BusUnavailable:
        logger.warning("webchat.push.lost_after_disconnect")
