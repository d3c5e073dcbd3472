"""Senders for reminders and notifications outside a conversation turn, one per route.

- ``telegram``: python-telegram-bot's ``Bot`` (plain text, inline keyboard for the quick answers);
- ``whatsapp``: Twilio, free text with the quick answers as a numbered list (only inside the
  24-hour window; the buttons are remembered in ``connectors.state`` so that the citizen's "2" maps
  to "Verplaatsen" — this needs ``REDIS_URL``, shared with the Rasa server);
- ``whatsapp_template``: Twilio, an approved template (``content_sid`` + ``content_variables``);
- ``sms``: Twilio, from ``TWILIO_SMS_FROM`` or a ``TWILIO_MESSAGING_SERVICE_SID``;
- ``email``: SMTP with the standard library (``GENTINFO_SMTP_*``).

No Rasa import: the reminder worker is a small process. Every provider error becomes a
``SendError`` that says whether trying again later can help; addresses never reach the logs.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Dict, FrozenSet, List, Mapping, Optional

import requests
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, InvalidToken, TelegramError
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from bot.core.reminder_scheduler import EMAIL, SMS, TELEGRAM, WHATSAPP, WHATSAPP_TEMPLATE, Notice, SendError
from connectors.replies import numbered_choices
from connectors.state import default_state

logger = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry the bot token

TWILIO_API_URL = "https://api.twilio.com"
TIMEOUT_SECONDS = 15.0
SMTP_SECURITY = ("starttls", "ssl", "none")


class _RebasedHttpClient(TwilioHttpClient):
    """Twilio's HTTP client sending to ``TWILIO_API_BASE_URL`` (a proxy, the local fake in tests)."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base_url = base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> TwilioResponse:
        if url.startswith(TWILIO_API_URL):
            url = self._base_url + url[len(TWILIO_API_URL):]
        return super().request(method, url, *args, **kwargs)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    security: str = "starttls"
    user: Optional[str] = None
    password: Optional[str] = None


def smtp_from_env(environ: Mapping[str, str]) -> Optional[SmtpSettings]:
    host = environ.get("GENTINFO_SMTP_HOST")
    if not host:
        return None
    security = (environ.get("GENTINFO_SMTP_SECURITY") or "starttls").lower()
    if security not in SMTP_SECURITY or not environ.get("GENTINFO_SMTP_FROM"):
        raise ValueError("GENTINFO_SMTP_FROM is required and GENTINFO_SMTP_SECURITY must be starttls, ssl or none")
    default_port = {"starttls": 587, "ssl": 465, "none": 25}[security]
    return SmtpSettings(host, int(environ.get("GENTINFO_SMTP_PORT") or default_port), environ["GENTINFO_SMTP_FROM"],
                        security, environ.get("GENTINFO_SMTP_USER") or None,
                        environ.get("GENTINFO_SMTP_PASSWORD") or None)


class ChannelNotifier:
    """``bot.core.reminder_scheduler.Notifier`` on the real SDKs; ``routes`` is what is configured."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        routes = set()
        self._loop = asyncio.new_event_loop()  # PTB and redis.asyncio are async; the worker is not
        self._bot: Optional[Bot] = None
        token = environ.get("TELEGRAM_BOT_TOKEN")
        if token:
            base = environ.get("TELEGRAM_API_BASE_URL")
            self._bot = Bot(token, base_url=base) if base else Bot(token)
            routes.add(TELEGRAM)
        self._twilio: Optional[Client] = None
        self._whatsapp_from = environ.get("TWILIO_WHATSAPP_FROM") or ""
        self._sms_from = environ.get("TWILIO_SMS_FROM") or None
        self._messaging_service = environ.get("TWILIO_MESSAGING_SERVICE_SID") or None
        if environ.get("TWILIO_ACCOUNT_SID") and environ.get("TWILIO_AUTH_TOKEN"):
            self._twilio = _twilio_client(environ)
            if self._whatsapp_from:
                if not self._whatsapp_from.startswith("whatsapp:"):
                    self._whatsapp_from = f"whatsapp:{self._whatsapp_from}"
                routes |= {WHATSAPP, WHATSAPP_TEMPLATE}
            if self._sms_from or self._messaging_service:
                routes.add(SMS)
        self._smtp = smtp_from_env(environ)
        if self._smtp:
            routes.add(EMAIL)
        self.routes: FrozenSet[str] = frozenset(routes)

    def close(self) -> None:
        if self._bot is not None:
            self._loop.run_until_complete(self._bot.shutdown())
        self._loop.close()

    def send(self, notice: Notice) -> str:
        if notice.route not in self.routes:
            raise SendError(f"route {notice.route} not configured", retryable=False)
        if notice.route == TELEGRAM:
            return self._telegram(notice)
        if notice.route == EMAIL:
            return self._email(notice)
        return self._twilio_send(notice)

    # -- Telegram ---------------------------------------------------------------------------------
    def _telegram(self, notice: Notice) -> str:
        assert self._bot is not None
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(b["title"], callback_data=b["payload"])]
                                       for b in notice.buttons]) if notice.buttons else None

        async def send() -> int:
            assert self._bot is not None
            await self._bot.initialize()
            message = await self._bot.send_message(chat_id=notice.address, text=notice.text, reply_markup=markup)
            return int(message.message_id)

        try:
            return str(self._loop.run_until_complete(send()))
        except (BadRequest, Forbidden, InvalidToken) as error:  # blocked bot, unknown chat, bad token
            raise SendError(f"telegram_{type(error).__name__}", retryable=False) from error
        except TelegramError as error:  # network, time-out, 5xx, RetryAfter
            raise SendError(f"telegram_{type(error).__name__}", retryable=True) from error

    # -- Twilio: WhatsApp, template, SMS ----------------------------------------------------------
    def _twilio_send(self, notice: Notice) -> str:
        assert self._twilio is not None
        fields: Dict[str, Any] = {}
        if notice.route == SMS:
            to = notice.address
            if self._messaging_service:
                fields["messaging_service_sid"] = self._messaging_service
            else:
                fields["from_"] = self._sms_from
            fields["body"] = notice.text
        else:
            to = f"whatsapp:{notice.address}"
            fields["from_"] = self._whatsapp_from
            if notice.route == WHATSAPP_TEMPLATE:
                fields["content_sid"] = notice.content_sid
                fields["content_variables"] = json.dumps(notice.content_variables, ensure_ascii=False)
            elif notice.buttons:
                fields["body"] = numbered_choices(notice.text, notice.buttons)
                self._remember(to, notice.buttons)
            else:
                fields["body"] = notice.text
        try:
            return str(self._twilio.messages.create(to=to, **fields).sid)
        except TwilioRestException as error:
            retryable = error.status >= 500 or error.status == 429
            raise SendError(f"twilio_{error.code or error.status}", retryable=retryable) from error
        except requests.RequestException as error:
            raise SendError(f"twilio_{type(error).__name__}", retryable=True) from error

    def _remember(self, conversation: str, buttons: List[Dict[str, str]]) -> None:
        """So that the citizen's "2" in the Rasa server becomes the second quick answer."""
        try:
            self._loop.run_until_complete(default_state().remember_buttons(conversation, [dict(b) for b in buttons]))
        except Exception as error:  # typed titles still work; never block the reminder
            logger.warning("quick answers not remembered (%s): the citizen can type them", type(error).__name__)

    # -- e-mail -----------------------------------------------------------------------------------
    def _email(self, notice: Notice) -> str:
        settings = self._smtp
        assert settings is not None
        message = EmailMessage()
        message["From"] = settings.sender
        message["To"] = notice.address
        message["Subject"] = notice.subject or ""
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to a reminder
        message.set_content(notice.text)
        try:
            if settings.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=TIMEOUT_SECONDS,
                                                        context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT_SECONDS)
            with client:
                if settings.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if settings.user:
                    client.login(settings.user, settings.password or "")
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            raise SendError(f"smtp_{codes[0] if codes else 'refused'}",
                            retryable=all(400 <= code < 500 for code in codes)) from error
        except smtplib.SMTPResponseException as error:
            raise SendError(f"smtp_{error.smtp_code}", retryable=400 <= error.smtp_code < 500) from error
        except (smtplib.SMTPException, OSError) as error:  # connection refused, time-out, disconnect
            raise SendError(f"smtp_{type(error).__name__}", retryable=True) from error
        return str(message["Message-ID"])


def _twilio_client(environ: Mapping[str, str]) -> Client:
    options: Dict[str, Any] = {"timeout": TIMEOUT_SECONDS, "logger": logging.getLogger(f"{__name__}.twilio")}
    logging.getLogger(f"{__name__}.twilio").setLevel(logging.WARNING)
    base = (environ.get("TWILIO_API_BASE_URL") or "").rstrip("/")
    http_client = _RebasedHttpClient(base, **options) if base else TwilioHttpClient(**options)
    return Client(environ["TWILIO_ACCOUNT_SID"], environ["TWILIO_AUTH_TOKEN"], http_client=http_client)
