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
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple
from urllib.parse import urlsplit

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic_cors.core import SANIC_CORS_EVALUATED

from bot import wiring
from bot.core.conversation import WEB, ConversationId
from bot.core.texts import say
from connectors import gate, outbound  # gate: human handoff
from connectors.inbox import MAX_INPUT_CHARS, OnNewMessage
from connectors.state import ConversationState, default_state
from connectors.webchat_bus import BusUnavailable, Event, PushBus, close_buses, default_bus

logger = logging.getLogger(__name__)

PREFIX = WEB
#: Rasa's channel name, also for channel-specific texts and responses (``webchat``).
CHANNEL = "webchat"
SESSION_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MESSAGE_ID_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,64}$")
#: The same limit as WhatsApp and Telegram; the widget refuses longer texts before sending.
MAX_MESSAGE_CHARS = MAX_INPUT_CHARS
MAX_LABEL_CHARS = 200
MAX_BODY_BYTES = 16 * 1024
#: Comment lines keep proxies and Sanic's response timeout from closing an idle stream.
HEARTBEAT_SECONDS = 15.0
#: Metadata key of the text the citizen saw for a button payload (the history shows it).
LABEL_KEY = "webchat_label"

ASSETS = Path(__file__).resolve().parent.parent / "channels" / "webchat"
ORIGINS_ENV = "GENTINFO_WEBCHAT_ORIGINS"

#: Why a request is refused -> the text key the widget shows (texts.yml).
REASONS = {
    "bad_request": "errors.bad_request",
    "bad_session": "errors.bad_session",
    "empty": "channels.empty",
    "too_long": "channels.too_long",
    "origin": "errors.origin",
    "not_ready": "errors.not_ready",
    "no_bus": "errors.no_bus",
    "failed": "errors.failed",
}


def session_of(recipient_id: str) -> str:
    """The browser's uuid from ``web:<uuid>`` (Rasa's sender id) or ``<uuid>`` (outbound)."""
    return ConversationId.of(PREFIX, recipient_id).native


class WebChatOutput(CollectingOutputChannel):
    """Pushes bot messages to the browser's stream (outbound factory for ``web:`` ids)."""

    def __init__(self, bus: Optional[PushBus] = None) -> None:
        super().__init__()
        self._bus = bus

    @classmethod
    def name(cls) -> Text:
        # Also the channel name for channel-specific responses in the domain.
        return CHANNEL

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
        collected: List[Dict[str, Any]] = list(self.messages)
        self.messages.clear()
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

    def __init__(self, origins: Optional[List[str]] = None, state: Optional[ConversationState] = None) -> None:
        if origins is None:
            raw = wiring.environ().get(ORIGINS_ENV, "*")
            origins = [origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip()]
        self.origins = origins
        self.state = state or default_state()

    @classmethod
    def name(cls) -> Text:
        return CHANNEL

    def get_output_channel(self) -> Optional[WebChatOutput]:
        return WebChatOutput()

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
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
            except RequestRejected as rejected:
                return _error(rejected, headers)
            # The inbox's dedupe (connectors/inbox.py): a browser's retry of a message that arrived is
            # answered once; Redis down counts as new.
            delivery = f"{session}:{message_id}" if message_id else None
            if delivery and not await self.state.first_delivery(PREFIX, delivery):
                # A retry of a message that already arrived: its answer went out (or is pushed).
                return response.json([], headers=headers)
            collector = WebChatCollector(default_bus())
            message = UserMessage(
                text,
                collector,
                str(ConversationId(PREFIX, session)),
                input_channel=self.name(),
                message_id=message_id,
                metadata={LABEL_KEY: label} if label is not None else None,
            )
            handling = asyncio.ensure_future(on_new_message(message))
            try:
                await asyncio.shield(handling)
            except asyncio.CancelledError:
                # The browser went away (reload, network): finish the turn and push the answer. The
                # delivery stays claimed: the turn is still running, a retry must not start another.
                asyncio.ensure_future(_push_when_done(handling, collector))
                raise
            except Exception as error:
                if delivery:
                    await self.state.forget_delivery(PREFIX, delivery)  # the retry is handled
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
            tracker = await agent.tracker_store.retrieve_full_tracker(str(ConversationId(PREFIX, session)))
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
    text = say(REASONS[rejected.reason], CHANNEL, max_chars=MAX_MESSAGE_CHARS)
    return response.json({"error": text}, status=rejected.status, headers=headers)


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
