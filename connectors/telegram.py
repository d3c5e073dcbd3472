"""Telegram through python-telegram-bot, as a Rasa input and output channel.

Telegram posts each update to ``/webhooks/telegram/webhook`` with the secret token we registered
(``X-Telegram-Bot-Api-Secret-Token``); replies go out with PTB's ``Bot`` in HTML parse mode.
Secrets come from the environment; without them the channel mounts and answers 503.

Register the webhook once per deployment::

    python -m connectors.telegram set-webhook
"""
from __future__ import annotations

import asyncio
import hmac
import html
import json
import logging
import re
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Text, Tuple, Union

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint
from sanic.request import Request
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, Update
from telegram.constants import MessageLimit, ParseMode
from telegram.error import TelegramError

from bot import wiring
from bot.core.conversation import TELEGRAM, ConversationId, mask
from bot.core.loops import LoopLocal
from bot.core.texts import say
from connectors import outbound
from connectors.inbox import (
    Delivery,
    Inbox,
    Incoming,
    OnNewMessage,
    Rejected,
    send_notices,
    settings_from_env,
    triage,
)
from connectors.replies import Content, chosen_payload, split_text
from connectors.state import ConversationState, default_state

logger = logging.getLogger(__name__)
_ICS_FILENAME = re.compile(r"^[\w.-]{1,80}\.ics$")
# httpx logs every request URL at INFO, and Bot API URLs contain the bot token.
logging.getLogger("httpx").setLevel(logging.WARNING)

PREFIX = TELEGRAM
WEBHOOK_PATH = "/webhooks/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
#: An update is a few KB; photos and files arrive as ids, never as bytes.
MAX_REQUEST_BYTES = 256 * 1024
#: Telegram's limit for ``callback_data``; longer payloads travel as "#<button number>".
CALLBACK_DATA_BYTES = 64
#: Rasa's greet intent, sent for Telegram's /start.
GREET = "/greet"
_START = re.compile(r"^/start(?:@\w+)?(?:\s+(\S+))?\s*$")


REQUIRED = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET")


@dataclass(frozen=True)
class TelegramSettings:
    token: str
    webhook_secret: str
    api_base_url: Optional[str] = None  # PTB's base_url: token appended, or "{token}" replaced
    public_url: Optional[str] = None  # only needed to register the webhook

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> Optional["TelegramSettings"]:
        """The settings, or None (with a warning) when the token or secret is missing."""
        environ = wiring.environ() if environ is None else environ
        if not settings_from_env(environ, REQUIRED, "Telegram"):
            return None
        return cls(
            token=environ["TELEGRAM_BOT_TOKEN"],
            webhook_secret=environ["TELEGRAM_WEBHOOK_SECRET"],
            api_base_url=environ.get("TELEGRAM_API_BASE_URL") or None,
            public_url=(environ.get("GENTINFO_PUBLIC_URL") or "").rstrip("/") or None,
        )

    def new_bot(self) -> Bot:
        if self.api_base_url:
            return Bot(self.token, base_url=self.api_base_url)
        return Bot(self.token)


class TelegramBots:
    """One initialised PTB ``Bot`` per event loop for one configuration.

    PTB's httpx client belongs to the loop it was opened on; Rasa uses one loop, scripts sending
    through ``connectors.outbound`` may run their own.
    """

    def __init__(self, settings: TelegramSettings) -> None:
        self._settings = settings
        self._bots: LoopLocal[Tuple[Bot, asyncio.Lock]] = LoopLocal(lambda: (settings.new_bot(), asyncio.Lock()))

    async def get(self) -> Bot:
        bot, lock = self._bots.get()
        async with lock:
            await bot.initialize()  # returns at once when done before
        return bot

    async def close(self) -> None:
        """Shut down the running loop's bot (server stop)."""
        entry = self._bots.pop()
        if entry is not None:
            await entry[0].shutdown()


class TelegramOutput(OutputChannel):
    """Sends Rasa responses with PTB's ``Bot``: escaped HTML, inline keyboards for buttons."""

    @classmethod
    def name(cls) -> Text:
        return PREFIX

    def __init__(self, bots: TelegramBots, state: ConversationState) -> None:
        self._bots = bots
        self._state = state

    async def _call(self, method: str, recipient_id: Text, **kwargs: Any) -> None:
        """One Bot API call. Failures (citizen blocked the bot, network) are logged, not raised, so
        that Rasa still saves the conversation."""
        chat = ConversationId.of(PREFIX, recipient_id)
        try:
            bot = await self._bots.get()
            await getattr(bot, method)(chat_id=chat.native, **kwargs)
        except TelegramError as error:
            logger.error("Telegram %s to %s failed: %s", method, chat.masked, error)

    async def _send_text(self, recipient_id: Text, text: Text, reply_markup: Optional[InlineKeyboardMarkup]) -> None:
        parts = split_text(text, MessageLimit.MAX_TEXT_LENGTH) or ([say("channels.choose", PREFIX)] if reply_markup else [])
        for index, part in enumerate(parts):
            markup = reply_markup if index == len(parts) - 1 else None  # keyboard under the last part
            await self._call(
                "send_message", recipient_id, text=html.escape(part, quote=False), parse_mode=ParseMode.HTML,
                reply_markup=markup,
            )

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self._send_text(recipient_id, text, None)

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        """One button per row (titles are long in Dutch). Buttons are remembered so that a payload
        too long for ``callback_data`` can travel as its number."""
        conversation = str(ConversationId.of(PREFIX, recipient_id))
        await self._state.remember_buttons(conversation, [dict(b) for b in buttons])
        rows = []
        for number, button in enumerate(buttons, start=1):
            payload = str(button.get("payload", ""))
            data = payload if 0 < len(payload.encode("utf-8")) <= CALLBACK_DATA_BYTES else f"#{number}"
            rows.append([InlineKeyboardButton(str(button.get("title", "")), callback_data=data)])
        await self._send_text(recipient_id, text, InlineKeyboardMarkup(rows))

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self._call("send_photo", recipient_id, photo=image)

    async def send_attachment(self, recipient_id: Text, attachment: Text, **kwargs: Any) -> None:
        if str(attachment).startswith(("https://", "http://")):
            await self._call("send_document", recipient_id, document=attachment)
        else:
            await self.send_text_message(recipient_id, str(attachment))

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        """The appointment's calendar file (``{"type": "ics", ...}``, see docs/appointments.md) goes
        as a document; other custom payloads are skipped (Rasa's default would show raw JSON)."""
        content = json_message.get("content")
        if json_message.get("type") != "ics" or not isinstance(content, str):
            logger.warning("custom message is not sent on Telegram")
            return
        filename = str(json_message.get("filename") or "")
        if not _ICS_FILENAME.match(filename):
            filename = "afspraak.ics"
        await self._call("send_document", recipient_id, document=InputFile(content.encode("utf-8"), filename=filename))


def _unreadable_kind(message: Message) -> Optional[Content]:
    if message.voice or message.audio or message.video_note:
        return Content.voice
    if message.photo:
        return Content.image
    if message.sticker:
        return Content.sticker
    if message.video or message.animation:
        return Content.video
    if message.document:
        return Content.document
    if message.contact:
        return Content.contact
    return None


class TelegramInput(Inbox):
    """Receives Telegram webhook updates; only requests with our secret token reach the assistant."""

    channel = PREFIX
    title = "Telegram"
    max_request_bytes = MAX_REQUEST_BYTES

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """Secrets come from the environment; ``credentials.yml`` only switches the channel on."""
        return cls(TelegramSettings.from_env())

    def __init__(self, settings: Optional[TelegramSettings], state: Optional[ConversationState] = None) -> None:
        super().__init__(settings, state)
        self.settings: Optional[TelegramSettings] = settings
        self.bots = TelegramBots(settings) if settings else None
        self._output = TelegramOutput(self.bots, self.state) if self.bots else None

    def extend(self, webhook: Blueprint) -> None:
        @webhook.listener("after_server_stop")
        async def close_bot(*_: Any) -> None:
            if self.bots is not None:
                await self.bots.close()

    async def read(self, request: Request) -> Union[Delivery, Rejected]:
        assert self.settings is not None and self.bots is not None
        secret = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(secret.encode("utf-8"), self.settings.webhook_secret.encode("utf-8")):
            return Rejected(403, "invalid secret token")
        try:
            bot = await self.bots.get()
        except TelegramError as error:
            logger.error("Telegram Bot API unavailable, update left for Telegram to retry: %s", error)
            return Rejected(503, "Telegram API unavailable")
        try:
            data = json.loads(request.body)
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an update")
            update = Update.de_json(data, bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            return Rejected(400, "not a Telegram update")
        return Delivery(str(update.update_id), lambda on_new_message: self._handle(update, on_new_message))

    async def _handle(self, update: Update, on_new_message: OnNewMessage) -> None:
        assert self._output is not None and self.bots is not None
        output = self._output
        chat = update.effective_chat or update.effective_user
        if chat is None:
            return  # e.g. a poll or a chat-member change: nothing to answer
        conversation = str(ConversationId(PREFIX, str(chat.id)))
        user = update.effective_user
        metadata = {"language_code": user.language_code} if user and user.language_code else None

        async def ask(text: str) -> None:
            await on_new_message(
                UserMessage(text, output, conversation, input_channel=self.name(),
                            message_id=str(update.update_id), metadata=metadata)
            )

        if update.callback_query is not None:
            query = update.callback_query
            bot = await self.bots.get()
            try:
                await bot.answer_callback_query(query.id)  # stops the button's loading spinner
            except TelegramError as error:
                logger.warning("answerCallbackQuery failed: %s", error)
            logger.info("Telegram button from %s", mask(conversation))
            payload = query.data or ""
            if payload.startswith("#") and payload[1:].isdigit():
                payload = chosen_payload(payload[1:], await self.state.offered_buttons(conversation), by_number=True) or ""
                if not payload:
                    await output.send_text_message(conversation, say("channels.expired_choice", PREFIX))
                    return
            await ask(payload)
            return

        message = update.message or update.edited_message
        if message is None:
            return  # update kinds we did not subscribe to
        text = (message.text or message.caption or "").strip()
        logger.info("Telegram update %s from %s", update.update_id, mask(conversation))
        logger.debug("Telegram text from %s: %r", conversation, text)

        start = _START.match(text)
        if start:
            await ask(GREET)
            if start.group(1):  # deep link t.me/<bot>?start=afspraak_reispas
                await ask(start.group(1).replace("_", " ").replace("-", " "))
            return

        place = message.location or (message.venue.location if message.venue else None)
        triaged = triage(
            Incoming(
                text=text,
                location=(place.latitude, place.longitude) if place is not None else None,
                content=_unreadable_kind(message),
            ),
            PREFIX,
        )
        await send_notices(output, conversation, triaged.notices)
        if triaged.text is not None:
            await ask(triaged.text)


def _bots(*_: Optional[str]) -> Optional[TelegramBots]:
    settings = TelegramSettings.from_env()
    return TelegramBots(settings) if settings else None


#: One set of bots per configuration, reused across outbound sends.
_senders = wiring.Shared(_bots, *REQUIRED, "TELEGRAM_API_BASE_URL")


def _output_from_env() -> OutputChannel:
    """Outbound factory (``connectors.outbound``)."""
    bots = _senders()
    if bots is None:
        raise outbound.UnknownChannel("Telegram channel not configured (TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_SECRET)")
    return TelegramOutput(bots, default_state())


outbound.register(PREFIX, _output_from_env)


async def set_webhook(settings: TelegramSettings) -> str:
    """Register ``<GENTINFO_PUBLIC_URL>/webhooks/telegram/webhook`` with our secret token."""
    if not settings.public_url:
        raise SystemExit("GENTINFO_PUBLIC_URL is not set: Telegram needs the public https URL of the assistant")
    url = settings.public_url + WEBHOOK_PATH
    async with settings.new_bot() as bot:
        await bot.set_webhook(url=url, secret_token=settings.webhook_secret, allowed_updates=ALLOWED_UPDATES)
    return url


def main(argv: List[str]) -> int:
    if argv != ["set-webhook"]:
        print("usage: python -m connectors.telegram set-webhook", file=sys.stderr)
        return 2
    settings = TelegramSettings.from_env()
    if settings is None:
        print("set TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET first", file=sys.stderr)
        return 1
    url = asyncio.run(set_webhook(settings))
    print(f"Telegram webhook set to {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
