"""The inbox every connector shares: what happens to a webhook call before the assistant sees it.

Each channel (``whatsapp.py``, ``telegram.py``) is one small :class:`Inbox` subclass, like Rasa's
own ``rasa/core/channels/*.py``: it says how to check and read its platform's request and how to
turn it into a message. Everything else is decided here, once, for all of them:

1. settings from the environment (:func:`settings_from_env`); an unconfigured channel still mounts
   and answers **503**, so an assistant without that account starts as usual;
2. **413** above the channel's request size, before anything is parsed;
3. the channel's own checks: **403** for a wrong signature or secret, **400** for a malformed body;
4. **dedupe**: a delivery id (Twilio's MessageSid, Telegram's update_id, the widget's message id) is
   claimed before handling and released when handling fails, so the platform's retry is handled
   instead of dropped. When Redis is down a delivery counts as new: the citizen may rarely get an
   answer twice, never none. (The web chat used to answer 503 then; it now decides the same way,
   because its browser does not retry a 503 and the question would be lost.)
5. the handoff **gate** (``connectors/gate.py``): during a handoff the message goes to the agent;
6. the **triage** of the message (:func:`triage`): a shared location gets the nearest office,
   media an "I only read text" answer, an empty message a request to type, a text above
   :data:`MAX_INPUT_CHARS` is cut and the citizen told so; what is left goes to Rasa.

The web chat (``webchat.py``) has other routes (history, push stream) but the same limits, texts
and dedupe. Conversation ids are ``bot.core.conversation.ConversationId`` (``<channel>:<native>``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, ClassVar, Dict, List, Mapping, Optional, Text, Tuple, Union

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.core.texts import say
from connectors import gate
from connectors.replies import Content, location_answer, split_text, unreadable_content
from connectors.state import ConversationState, default_state

logger = logging.getLogger(__name__)

#: Longest text the assistant is asked to understand; anything beyond is not a question.
MAX_INPUT_CHARS = 2000

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


def settings_from_env(environ: Mapping[str, str], required: Tuple[str, ...], channel: str) -> bool:
    """True when every required variable is set; otherwise a warning names the missing ones."""
    missing = [name for name in required if not environ.get(name)]
    if missing:
        logger.warning("%s channel not configured (missing %s): it answers 503", channel, ", ".join(missing))
    return not missing


# --- triage ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incoming:
    """What a citizen sent, in the terms every channel shares."""

    text: str = ""
    location: Optional[Tuple[float, float]] = None
    content: Optional[Content] = None
    #: The platform gave a button payload with it (WhatsApp quick replies): empty text is fine.
    has_payload: bool = False


@dataclass(frozen=True)
class Triaged:
    """The connector's own answers (sent first), and the text for the assistant (None: nothing)."""

    notices: Tuple[str, ...]
    text: Optional[str]


def clip_input(text: str) -> Tuple[str, bool]:
    """The text for the assistant, cut to ``MAX_INPUT_CHARS``, and whether it was cut."""
    if len(text) <= MAX_INPUT_CHARS:
        return text, False
    return split_text(text, MAX_INPUT_CHARS)[0], True


def triage(message: Incoming, channel: str) -> Triaged:
    """Location → media → empty → too long, in that order (a photo with a caption: both answered)."""
    text = message.text.strip()
    notices: List[str] = []
    if message.location is not None or message.content is not None:
        if message.location is not None:
            notices.append(location_answer(*message.location, channel=channel))
        else:
            assert message.content is not None
            notices.append(unreadable_content(message.content, has_text=bool(text), channel=channel))
        if not text:
            return Triaged(tuple(notices), None)
    elif not text and not message.has_payload:
        return Triaged((say("channels.empty", channel),), None)
    text, clipped = clip_input(text)
    if clipped:
        notices.append(say("channels.too_long", channel, max_chars=MAX_INPUT_CHARS))
    return Triaged(tuple(notices), text)


# --- the webhook skeleton ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejected:
    """A request refused before it reached the assistant (status and a short English reason)."""

    status: int
    reason: str


@dataclass(frozen=True)
class Delivery:
    """One accepted webhook call: its platform id (for dedupe) and how to handle it."""

    id: str
    handle: Callable[[OnNewMessage], Awaitable[None]]


class Inbox(InputChannel):
    """A Rasa input channel whose webhook follows the steps in this module's docstring.

    Subclasses set ``channel`` (the conversation id prefix, also Rasa's channel name), ``title``
    and ``max_request_bytes``, and implement :meth:`read` and :meth:`acknowledge`.
    """

    channel: ClassVar[str]
    title: ClassVar[str]
    max_request_bytes: ClassVar[int]

    def __init__(self, settings: Any, state: Optional[ConversationState] = None) -> None:
        self.settings = settings
        self.state = state or default_state()
        self._output: Optional[OutputChannel] = None

    @classmethod
    def name(cls) -> Text:
        return cls.channel

    def get_output_channel(self) -> Optional[OutputChannel]:
        return self._output

    async def read(self, request: Request) -> Union[Delivery, Rejected]:
        """Check and parse the platform's request (signature, body)."""
        raise NotImplementedError

    def acknowledge(self) -> HTTPResponse:
        """The answer the platform expects for a delivery it should not send again."""
        return response.text("ok")

    def extend(self, webhook: Blueprint) -> None:
        """Add listeners or routes of the channel's own (e.g. closing a client at server stop)."""

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        on_new_message = gate.guard(on_new_message)  # human handoff: held conversations reach the agent
        webhook = Blueprint(f"gentinfo_{self.channel}_webhook", __name__)
        self.extend(webhook)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok" if self.settings else "not configured"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            return await self.receive(request, on_new_message)

        return webhook

    async def receive(self, request: Request, on_new_message: OnNewMessage) -> HTTPResponse:
        if self.settings is None or self._output is None:
            logger.warning("%s webhook called, but the channel is not configured", self.title)
            return response.text(f"{self.title} channel not configured", status=503)
        if len(request.body or b"") > self.max_request_bytes:
            return response.text("request too large", status=413)
        delivery = await self.read(request)
        if isinstance(delivery, Rejected):
            if delivery.status == 403:
                logger.warning("%s webhook refused: %s", self.title, delivery.reason)
            return response.text(delivery.reason, status=delivery.status)
        if not await self.state.handle_once(self.channel, delivery.id, lambda: delivery.handle(on_new_message)):
            logger.info("%s delivery %s delivered again, ignored", self.title, delivery.id)
        return self.acknowledge()


async def send_notices(output: OutputChannel, recipient: str, notices: Tuple[str, ...]) -> None:
    for notice in notices:
        await output.send_text_message(recipient, notice)


def metadata(**values: Optional[str]) -> Optional[Dict[str, str]]:
    """Message metadata without empty values (None when nothing is left, as Rasa expects)."""
    kept = {key: value for key, value in values.items() if value}
    return kept or None
