"""A local Telegram: the Bot API methods our connector calls, and the webhook updates it receives.

The API part answers ``/bot{token}/{method}`` like api.telegram.org: ``{"ok": true, "result": …}``,
or ``{"ok": false, "error_code": …, "description": …}`` for a wrong token, a message over 4,096
characters, HTML that does not parse, or ``callback_data`` over 64 bytes. The webhook part builds
realistic updates and posts them with the secret token header, as Telegram does.
"""
from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import secrets
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import requests
from aiohttp import web

from tests.fakes import PUBLIC_URL
from tests.fakes.background import ApiCall, FakeApi

WEBHOOK_PATH = "/webhooks/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
CHAT_ID = 123456789
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
#: Parameters Telegram reads as JSON when they arrive form-encoded.
JSON_FIELDS = {"reply_markup", "allowed_updates", "entities", "caption_entities", "link_preview_options",
               "reply_parameters"}
#: Tags Telegram's HTML parse mode accepts.
HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code", "pre",
             "blockquote", "tg-emoji"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(?:\s[^<>]*)?>")
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")

#: Message fields of the kinds of content a citizen can send, as Telegram describes them.
CONTENT: Dict[str, Any] = {
    "voice": {"voice": {"file_id": "AwACAgQ", "file_unique_id": "AgAD1", "duration": 4, "mime_type": "audio/ogg"}},
    "photo": {"photo": [{"file_id": "AgACAgQ", "file_unique_id": "AQAD2", "width": 90, "height": 67},
                        {"file_id": "AgACAgR", "file_unique_id": "AQAD3", "width": 1280, "height": 960}]},
    "sticker": {"sticker": {"file_id": "CAACAgI", "file_unique_id": "AgAD4", "type": "regular", "width": 512,
                            "height": 512, "is_animated": False, "is_video": False, "emoji": "👍"}},
    "document": {"document": {"file_id": "BQACAgQ", "file_unique_id": "AgAD5", "file_name": "attest.pdf",
                              "mime_type": "application/pdf"}},
    "video": {"video": {"file_id": "BAACAgQ", "file_unique_id": "AgAD6", "width": 640, "height": 360,
                        "duration": 7}},
    "contact": {"contact": {"phone_number": "+32470000000", "first_name": "Buur"}},
}


class BadRequest(Exception):
    """A Bot API 400, with Telegram's own wording."""


def parse_html(text: str) -> str:
    """The text a reader sees, or BadRequest where Telegram's HTML parser refuses the text."""
    plain: List[str] = []
    open_tags: List[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "<":
            tag = _TAG.match(text, index)
            name = tag.group(2).lower() if tag else text[index + 1:index + 10]
            if tag is None or name not in HTML_TAGS:
                raise BadRequest(f"Bad Request: can't parse entities: Unsupported start tag \"{name}\" at byte offset {index}")
            if tag.group(1):
                if not open_tags or open_tags.pop() != name:
                    raise BadRequest(f"Bad Request: can't parse entities: Unmatched end tag at byte offset {index}")
            else:
                open_tags.append(name)
            index = tag.end()
        elif char == "&" and _ENTITY.match(text, index):
            entity = _ENTITY.match(text, index)
            assert entity is not None
            decoded = html.unescape(entity.group(0))
            if decoded == entity.group(0):
                raise BadRequest(f"Bad Request: can't parse entities: Unsupported HTML entity at byte offset {index}")
            plain.append(decoded)
            index = entity.end()
        else:
            plain.append(char)
            index += 1
    if open_tags:
        raise BadRequest(f"Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"{open_tags[-1]}\"")
    return "".join(plain)


def _chat_id(value: Any) -> Any:
    text = str(value)
    return int(text) if text.lstrip("-").isdigit() else text


class FakeTelegram(FakeApi):
    """Plays the Telegram Bot API for one bot (``calls`` include getMe)."""

    def __init__(self) -> None:
        self.bot_id = 7000000000 + secrets.randbelow(10**6)
        self.token = f"{self.bot_id}:{secrets.token_urlsafe(26)}"
        self.webhook_secret = secrets.token_urlsafe(24)
        self.public_url = PUBLIC_URL
        self.webhook: Dict[str, Any] = {}
        #: Seconds each sendMessage answer is held back after it was recorded (a slow API: a test
        #: can kill a client while it waits for the answer to a message Telegram already took).
        self.delay = 0.0
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        super().__init__(app)

    # -- inspection -------------------------------------------------------------------------------
    def wait_for(self, count: int, timeout: float = 5.0, method: str = "sendMessage") -> List[ApiCall]:
        """The first ``count`` requests to ``method``; fails after ``timeout`` seconds."""
        return self._recorder.wait_for(count, timeout, endpoint=method)

    def sent(self, method: str = "sendMessage") -> List[ApiCall]:
        return [call for call in self.calls if call.endpoint == method]

    def env(self) -> Dict[str, str]:
        """What the Telegram connector needs to use this fake instead of api.telegram.org."""
        return {
            "TELEGRAM_BOT_TOKEN": self.token,
            "TELEGRAM_WEBHOOK_SECRET": self.webhook_secret,
            "TELEGRAM_API_BASE_URL": f"{self.url}/bot",
            "GENTINFO_PUBLIC_URL": self.public_url,
        }

    def _next_id(self) -> int:
        with self._ids_lock:
            return next(self._ids)

    # -- the Bot API ----------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        params: Dict[str, Any] = {}
        if request.content_type == "application/json":
            params = dict(await request.json())
        elif request.method == "POST":
            for key, value in (await request.post()).items():
                params[key] = value.filename if isinstance(value, web.FileField) else str(value)
        params.update({k: v for k, v in request.query.items() if k not in params})
        for key in JSON_FIELDS & params.keys():
            if isinstance(params[key], str):
                params[key] = json.loads(params[key])
        call = ApiCall(method=request.method, path=request.path, endpoint=request.match_info["method"],
                       params=params, headers=dict(request.headers))
        status, body = self._answer(request.match_info["token"], call)
        call.status = status
        self._recorder.add(call)
        if self.delay and call.endpoint == "sendMessage":
            await asyncio.sleep(self.delay)
        return web.json_response(body, status=status)

    def _answer(self, token: str, call: ApiCall) -> Tuple[int, Dict[str, Any]]:
        if token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        handler = getattr(self, f"_method_{call.endpoint}", None)
        if handler is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        try:
            return 200, {"ok": True, "result": handler(call.params)}
        except BadRequest as error:
            return 400, {"ok": False, "error_code": 400, "description": str(error)}

    def _bot_user(self) -> Dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Gentinfo", "username": "gentinfo_test_bot",
                "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}

    def _message(self, params: Dict[str, Any], **content: Any) -> Dict[str, Any]:
        if "chat_id" not in params:
            raise BadRequest("Bad Request: chat_id is empty")
        message = {"message_id": self._next_id(), "from": self._bot_user(), "date": int(time.time()),
                   "chat": {"id": _chat_id(params["chat_id"]), "type": "private", "first_name": "Citizen"}, **content}
        markup = params.get("reply_markup")
        if markup:
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA:
                        raise BadRequest("Bad Request: BUTTON_DATA_INVALID")
            message["reply_markup"] = markup
        return message

    def _method_getMe(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return self._bot_user()

    def _method_sendMessage(self, params: Dict[str, Any]) -> Dict[str, Any]:
        text = str(params.get("text", ""))
        if str(params.get("parse_mode", "")).upper() == "HTML":
            text = parse_html(text)
        if not text.strip():
            raise BadRequest("Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise BadRequest("Bad Request: message is too long")
        return self._message(params, text=text)

    def _method_sendPhoto(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return self._message(params, photo=[{"file_id": "AgACAgQ", "file_unique_id": "AQAD7", "width": 800, "height": 600}])

    def _method_sendDocument(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return self._message(params, document={"file_id": "BQACAgQ", "file_unique_id": "AgAD8"})

    def _method_answerCallbackQuery(self, params: Dict[str, Any]) -> bool:
        if not params.get("callback_query_id"):
            raise BadRequest("Bad Request: query is too old and response timeout expired or query ID is invalid")
        return True

    def _method_setWebhook(self, params: Dict[str, Any]) -> bool:
        if not str(params.get("url", "")).startswith("https://"):
            raise BadRequest("Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = dict(params)
        return True

    def _method_deleteWebhook(self, params: Dict[str, Any]) -> bool:
        self.webhook = {}
        return True

    # -- webhook updates, as Telegram sends them ------------------------------------------------
    def _user(self, chat_id: int) -> Dict[str, Any]:
        return {"id": chat_id, "is_bot": False, "first_name": "Citizen", "language_code": "nl"}

    def message_update(
        self, text: Optional[str] = None, *, chat_id: int = CHAT_ID, edited: bool = False,
        update_id: Optional[int] = None, **fields: Any,
    ) -> Dict[str, Any]:
        """An update with a (possibly edited) message; ``fields`` adds raw message fields, e.g.
        ``**CONTENT["voice"]``, ``caption=…`` or ``location={"latitude": …, "longitude": …}``."""
        message: Dict[str, Any] = {
            "message_id": self._next_id(), "from": self._user(chat_id), "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Citizen"}, **fields,
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if edited:
            message["edit_date"] = int(time.time())
        return {"update_id": update_id or self._next_id(), "edited_message" if edited else "message": message}

    def callback_update(self, data: str, *, chat_id: int = CHAT_ID, update_id: Optional[int] = None) -> Dict[str, Any]:
        """A tap on an inline keyboard button under one of the bot's messages."""
        message = {"message_id": self._next_id(), "from": self._bot_user(), "date": int(time.time()),
                   "chat": {"id": chat_id, "type": "private", "first_name": "Citizen"}, "text": "Maak een keuze."}
        query = {"id": str(secrets.randbits(60)), "from": self._user(chat_id), "chat_instance": "-42",
                 "message": message, "data": data}
        return {"update_id": update_id or self._next_id(), "callback_query": query}

    def deliver(self, server_url: str, update: Any = None, *, secret: Optional[str] = None,
                body: Optional[bytes] = None) -> requests.Response:
        """POST an update to the assistant at ``server_url`` with our secret token (``secret``
        replaces it, ``""`` leaves the header out); ``body`` sends raw bytes, for malformed requests."""
        headers = {"Content-Type": "application/json"}
        if secret != "":
            headers[SECRET_HEADER] = self.webhook_secret if secret is None else secret
        data = body if body is not None else json.dumps(update).encode("utf-8")
        return requests.post(server_url.rstrip("/") + WEBHOOK_PATH, data=data, headers=headers, timeout=30)
