"""WhatsApp through Twilio, as a Rasa input and output channel.

Twilio posts each WhatsApp message to ``/webhooks/whatsapp/webhook`` (form-encoded, signed with
``X-Twilio-Signature``); replies go out through Twilio's Messages API with the official ``twilio``
client. Credentials come from the environment, never from ``credentials.yml``; without them the
channel still mounts and answers 503, so an assistant without WhatsApp account starts as usual.
See docs/channels.md for the set-up and the 24-hour rule.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Text, Union
from urllib.parse import parse_qs

import requests
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import response
from sanic.request import Request, RequestParameters
from sanic.response import HTTPResponse
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from bot import wiring
from bot.core.conversation import WHATSAPP, ConversationId, mask
from connectors import outbound
from connectors.inbox import Delivery, Inbox, Incoming, OnNewMessage, Rejected, metadata, send_notices, settings_from_env, triage
from connectors.replies import Content, chosen_payload, numbered_choices, split_text
from connectors.state import ConversationState, default_state

logger = logging.getLogger(__name__)

PREFIX = WHATSAPP
WEBHOOK_PATH = "/webhooks/whatsapp/webhook"
#: Twilio refuses a message body above 1,600 characters (error 21617).
MAX_BODY_CHARS = 1600
#: A Twilio webhook is a few hundred bytes; far more is not Twilio.
MAX_REQUEST_BYTES = 64 * 1024
TWILIO_API_URL = "https://api.twilio.com"
TWILIO_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class WhatsAppSettings:
    account_sid: str
    auth_token: str
    sender: str  # our WhatsApp address, "whatsapp:+14155238886"
    public_url: str  # base URL Twilio calls, e.g. "https://gentinfo.stad.gent"
    api_base_url: Optional[str] = None  # Twilio API elsewhere (a fake in tests, a proxy)

    REQUIRED = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_FROM", "GENTINFO_PUBLIC_URL")

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> Optional["WhatsAppSettings"]:
        """The settings, or None (with a warning) when any required variable is missing."""
        environ = wiring.environ() if environ is None else environ
        if not settings_from_env(environ, cls.REQUIRED, "WhatsApp"):
            return None
        sender = environ["TWILIO_WHATSAPP_FROM"]
        return cls(
            account_sid=environ["TWILIO_ACCOUNT_SID"],
            auth_token=environ["TWILIO_AUTH_TOKEN"],
            sender=sender if sender.startswith(f"{PREFIX}:") else f"{PREFIX}:{sender}",
            public_url=environ["GENTINFO_PUBLIC_URL"].rstrip("/"),
            api_base_url=(environ.get("TWILIO_API_BASE_URL") or "").rstrip("/") or None,
        )


class _RebasedHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client, sending to another base URL.

    The SDK builds absolute ``https://api.twilio.com`` URLs; a custom HTTP client is Twilio's
    documented way to send them elsewhere (a test fake or an outgoing proxy).
    """

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base_url = base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> TwilioResponse:
        if url.startswith(TWILIO_API_URL):
            url = self._base_url + url[len(TWILIO_API_URL):]
        return super().request(method, url, *args, **kwargs)


#: Twilio's client logs a dozen INFO lines per request; keep its warnings only.
_http_logger = logging.getLogger(f"{__name__}.http")
_http_logger.setLevel(logging.WARNING)


def twilio_client(settings: WhatsAppSettings) -> Client:
    options: Dict[str, Any] = {"timeout": TWILIO_TIMEOUT_SECONDS, "logger": _http_logger}
    if settings.api_base_url:
        http_client: TwilioHttpClient = _RebasedHttpClient(settings.api_base_url, **options)
    else:
        http_client = TwilioHttpClient(**options)
    return Client(settings.account_sid, settings.auth_token, http_client=http_client)


class WhatsAppOutput(OutputChannel):
    """Sends Rasa responses as WhatsApp messages through Twilio's Messages API."""

    @classmethod
    def name(cls) -> Text:
        return PREFIX

    def __init__(self, client: Client, sender: str, state: ConversationState) -> None:
        self._client = client
        self._sender = sender
        self._state = state

    async def _create(self, recipient_id: Text, **fields: Any) -> None:
        """One Messages API call, in a thread: the twilio client blocks. Failures are logged, not
        raised, so that Rasa still saves the conversation (like Rasa's own Twilio channel)."""
        to = str(ConversationId.of(PREFIX, recipient_id))
        try:
            message = await asyncio.to_thread(self._client.messages.create, to=to, from_=self._sender, **fields)
        except TwilioRestException as error:
            logger.error("Twilio refused a message to %s: %s %s", mask(to), error.code, error.msg)
            return
        except requests.RequestException as error:
            logger.error("Twilio unreachable, message to %s not sent: %s", mask(to), type(error).__name__)
            return
        logger.info("WhatsApp message %s queued for %s", message.sid, mask(to))

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        for part in split_text(text, MAX_BODY_CHARS):
            await self._create(recipient_id, body=part)

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        """WhatsApp free-form messages have no buttons: a numbered list, remembered so that the
        citizen's "2" (or the title) maps back to the payload."""
        conversation = str(ConversationId.of(PREFIX, recipient_id))
        await self._state.remember_buttons(conversation, [dict(b) for b in buttons])
        await self.send_text_message(recipient_id, numbered_choices(text, buttons))

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self._create(recipient_id, media_url=[image])

    async def send_attachment(self, recipient_id: Text, attachment: Text, **kwargs: Any) -> None:
        if str(attachment).startswith(("https://", "http://")):
            await self._create(recipient_id, media_url=[attachment])
        else:
            await self.send_text_message(recipient_id, str(attachment))

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        """``{"content_sid": "HX…", "content_variables": {...}}`` sends an approved template, the only
        way to write to a citizen after the 24-hour window. Anything else is not for WhatsApp."""
        if not json_message.get("content_sid"):
            logger.warning("custom message without content_sid is not sent on WhatsApp")
            return
        fields: Dict[str, Any] = {"content_sid": json_message["content_sid"]}
        variables = json_message.get("content_variables")
        if variables:
            fields["content_variables"] = variables if isinstance(variables, str) else json.dumps(variables)
        await self._create(recipient_id, **fields)


def _content_kind(content_type: str) -> Content:
    kind = content_type.split(";")[0].strip().lower()
    if kind.startswith("audio/"):
        return Content.voice
    if kind == "image/webp":  # WhatsApp stickers
        return Content.sticker
    if kind.startswith("image/"):
        return Content.image
    if kind.startswith("video/"):
        return Content.video
    if kind in ("text/vcard", "text/x-vcard"):
        return Content.contact
    if kind.startswith(("application/", "text/")):
        return Content.document
    return Content.other


def _float(value: Optional[str]) -> Optional[float]:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


class WhatsAppInput(Inbox):
    """Receives Twilio's WhatsApp webhooks; only correctly signed requests reach the assistant."""

    channel = PREFIX
    title = "WhatsApp"
    max_request_bytes = MAX_REQUEST_BYTES

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """Secrets come from the environment; ``credentials.yml`` only switches the channel on."""
        return cls(WhatsAppSettings.from_env())

    def __init__(self, settings: Optional[WhatsAppSettings], state: Optional[ConversationState] = None) -> None:
        super().__init__(settings, state)
        self.settings: Optional[WhatsAppSettings] = settings
        if settings is not None:
            self._validator = RequestValidator(settings.auth_token)
            self._output = WhatsAppOutput(twilio_client(settings), settings.sender, self.state)

    def _signed_url(self, request: Request) -> str:
        """The URL Twilio called: the public base (we may sit behind a proxy) plus our path."""
        assert self.settings is not None
        query = f"?{request.query_string}" if request.query_string else ""
        return f"{self.settings.public_url}{request.path}{query}"

    def acknowledge(self) -> HTTPResponse:
        return response.text(str(MessagingResponse()), content_type="text/xml")

    async def read(self, request: Request) -> Union[Delivery, Rejected]:
        if not request.content_type.startswith("application/x-www-form-urlencoded"):
            return Rejected(400, "expected a form-encoded Twilio webhook")
        try:
            # Sanic's request.form drops empty values, which Twilio signs too (e.g. Body="").
            form = RequestParameters(parse_qs(request.body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return Rejected(400, "body is not UTF-8")
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not self._validator.validate(self._signed_url(request), form, signature):
            return Rejected(403, "invalid signature")
        sender, message_sid = str(form.get("From", "")), str(form.get("MessageSid", ""))
        if not sender.startswith(f"{PREFIX}:") or not message_sid:
            return Rejected(400, "not a WhatsApp message")
        return Delivery(message_sid, lambda on_new_message: self._handle(form, on_new_message))

    async def _handle(self, form: RequestParameters, on_new_message: OnNewMessage) -> None:
        assert self._output is not None
        output = self._output
        conversation = str(ConversationId.of(PREFIX, str(form.get("From"))))
        message_sid = form.get("MessageSid")
        logger.info("WhatsApp message %s from %s", message_sid, mask(conversation))
        logger.debug("WhatsApp text from %s: %r", conversation, form.get("Body"))

        latitude, longitude = _float(form.get("Latitude")), _float(form.get("Longitude"))
        num_media = form.get("NumMedia") or ""
        media = int(num_media) if num_media.isdigit() else 0
        offered = await self.state.take_buttons(conversation)
        button_payload = form.get("ButtonPayload")
        triaged = triage(
            Incoming(
                text=form.get("Body") or "",
                location=(latitude, longitude) if latitude is not None and longitude is not None else None,
                content=_content_kind(form.get("MediaContentType0") or "") if media else None,
                has_payload=bool(button_payload),
            ),
            PREFIX,
        )
        await send_notices(output, conversation, triaged.notices)
        if triaged.text is None:
            return
        payload = button_payload or chosen_payload(triaged.text, offered, by_number=True)
        await on_new_message(
            UserMessage(
                payload or triaged.text,
                output,
                conversation,
                input_channel=self.name(),
                message_id=message_sid,
                metadata=metadata(profile_name=form.get("ProfileName")),
            )
        )


def _sender(*_: Optional[str]) -> Optional[WhatsAppOutput]:
    settings = WhatsAppSettings.from_env()
    return None if settings is None else WhatsAppOutput(twilio_client(settings), settings.sender, default_state())


#: One Twilio client per configuration, reused across outbound sends.
_senders = wiring.Shared(_sender, *WhatsAppSettings.REQUIRED, "TWILIO_API_BASE_URL")


def _output_from_env() -> OutputChannel:
    """Outbound factory (``connectors.outbound``)."""
    output = _senders()
    if output is None:
        raise outbound.UnknownChannel("WhatsApp channel not configured (TWILIO_* and GENTINFO_PUBLIC_URL)")
    return output


outbound.register(PREFIX, _output_from_env)
