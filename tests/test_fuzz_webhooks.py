"""Fuzzing the citizen-facing webhooks: 1,000 random and malformed requests, never a 5xx.

All four channels are mounted on one Sanic app exactly as Rasa mounts them (``channel.register``
under ``/webhooks/``), together with the ops channel whose middleware is part of every production
server; the agent is the recording double of tests/fakes/assistant.py. Each channel gets 250
requests: random bytes, text in odd encodings, JSON of any shape, forms with Twilio's field names,
Telegram- and web-chat-shaped objects, huge bodies, and any content type; some carry valid
credentials (a correct Twilio signature, the Telegram secret) so the parsing behind the checks is
fuzzed too.

Checked for every request: the status is 2xx or 4xx; a request that was refused (4xx) or forged
(no valid signature or secret) reaches neither the assistant nor Redis (no conversation, no
de-duplication key).
"""
from __future__ import annotations

import json
import uuid
from typing import Any, Dict, Iterator, Optional, Set, Tuple
from urllib.parse import parse_qsl, urlencode

import pytest
import redis
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasa.core.channels.channel import register
from rasa.core.channels.rest import RestInput

from connectors.ops import OpsInput
from connectors.state import RedisState
from connectors.telegram import SECRET_HEADER, TelegramInput, TelegramSettings
from connectors.webchat import WebChatInput
from connectors.whatsapp import WhatsAppInput, WhatsAppSettings
from tests.conftest import TEST_REDIS_URL
from tests.fakes.assistant import ChannelServer
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import WEBHOOK_PATH as WHATSAPP_PATH
from tests.fakes.twilio_api import FakeTwilio

EXAMPLES_PER_CHANNEL = 250
FUZZ = settings(max_examples=EXAMPLES_PER_CHANNEL, deadline=None, derandomize=False, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

PATHS = {
    "whatsapp": WHATSAPP_PATH,
    "telegram": "/webhooks/telegram/webhook",
    "webchat": "/webhooks/webchat/webhook",
    "rest": "/webhooks/rest/webhook",
}


class Mounted:
    """The app, its agent double and the Redis key prefix of this run."""

    def __init__(self, server: ChannelServer, prefix: str, twilio: FakeTwilio, telegram: FakeTelegram) -> None:
        self.server = server
        self.prefix = prefix
        self.twilio = twilio
        self.telegram = telegram
        self.http = requests.Session()
        self.redis = redis.Redis.from_url(TEST_REDIS_URL)
        self.requests: Dict[str, int] = {}
        self.accepted: Dict[str, int] = {}

    def count(self, channel: str, before: int) -> None:
        self.requests[channel] = self.requests.get(channel, 0) + 1
        self.accepted[channel] = self.accepted.get(channel, 0) + (self.received - before)

    @property
    def received(self) -> int:
        return len(self.server.assistant.messages)

    def redis_keys(self) -> Set[bytes]:
        """This run's keys (other test processes may empty DB 15 meanwhile; they never add ours)."""
        return set(self.redis.scan_iter(f"{self.prefix}:*", count=1000))


@pytest.fixture(scope="module")
def mounted(fake_twilio: FakeTwilio, fake_telegram: FakeTelegram) -> Iterator[Mounted]:
    try:
        redis.Redis.from_url(TEST_REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip(f"Redis not reachable at {TEST_REDIS_URL}")
    prefix = f"fuzz{uuid.uuid4().hex[:10]}"
    state = RedisState(TEST_REDIS_URL, prefix=prefix)
    server = ChannelServer(OpsInput(safeguards=False))
    register(
        [
            RestInput(),
            WebChatInput(origins=["https://stad.gent"]),
            WhatsAppInput(WhatsAppSettings.from_env(fake_twilio.env()), state),
            TelegramInput(TelegramSettings.from_env(fake_telegram.env()), state),
        ],
        server.app,
        route="/webhooks/",
    )
    server.start()
    result = Mounted(server, prefix, fake_twilio, fake_telegram)
    yield result
    server.stop()
    for key in result.redis.scan_iter(f"{prefix}:*"):
        result.redis.delete(key)
    result.redis.close()


# -- strategies ----------------------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
ODD_VALUES = st.sampled_from([
    "whatsapp:+32470123456", "whatsapp:", "SM" + "0" * 32, "", " ", "0", "1", "-1", "٣", "nan", "inf", "1e309",
    "99999999999999999999", "image/jpeg", "audio/ogg", "text/vcard", "/greet", "/start x", "🙂", "\x00", "\ud7ff",
    "<script>alert(1)</script>", "%", "ab " * 700,
])


def mostly(good: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times out of four: deep code paths need requests that pass the first checks."""
    return st.integers(0, 3).flatmap(lambda choice: odd if choice == 3 else good)


TWILIO_FIELDS = ["From", "To", "Body", "MessageSid", "NumMedia", "MediaContentType0", "MediaUrl0", "Latitude",
                 "Longitude", "ButtonPayload", "ProfileName", "AccountSid", "WaId"]
TWILIO_FORM = st.dictionaries(st.sampled_from(TWILIO_FIELDS) | st.text(max_size=8), st.text(max_size=60) | ODD_VALUES,
                              max_size=10)
#: Forms as Twilio sends them, with odd values: with a valid signature these reach the connector's parsing.
WHATSAPP_FORM = st.fixed_dictionaries(
    {"From": mostly(st.sampled_from(["whatsapp:+32470123456", "whatsapp:+32470000001"]), ODD_VALUES),
     "MessageSid": mostly(st.uuids().map(lambda u: "SM" + u.hex), ODD_VALUES),
     "Body": st.text(max_size=300) | ODD_VALUES},
    optional={name: st.text(max_size=40) | ODD_VALUES for name in TWILIO_FIELDS[4:]},
)
TELEGRAM_USER = st.fixed_dictionaries(
    {"id": st.integers(min_value=1, max_value=2**40), "is_bot": st.booleans(), "first_name": st.text(max_size=10)},
    optional={"language_code": mostly(st.sampled_from(["nl", "fr", "en"]), JSON)},
)
_MESSAGE_BASE = {
    "message_id": st.integers(min_value=1, max_value=2**31),
    "date": st.integers(min_value=0, max_value=2**31),
    "chat": st.fixed_dictionaries({"id": st.integers(min_value=-2**40, max_value=2**40),
                                   "type": mostly(st.sampled_from(["private", "group"]), st.text(max_size=5))}),
    "from": mostly(TELEGRAM_USER, JSON),
}
TELEGRAM_TEXT = st.fixed_dictionaries({**_MESSAGE_BASE, "text": mostly(st.text(min_size=1, max_size=300), ODD_VALUES)},
                                      optional={
    "caption": mostly(st.text(max_size=50), JSON),
    "location": mostly(st.fixed_dictionaries({"latitude": st.floats(allow_nan=False, allow_infinity=False),
                                              "longitude": st.floats(allow_nan=False, allow_infinity=False)}), JSON),
})
#: A photo, voice note, sticker, ... with whatever content (usually not what Telegram would send).
TELEGRAM_MEDIA = st.sampled_from(["photo", "voice", "sticker", "document", "contact", "venue", "video"]).flatmap(
    lambda kind: st.fixed_dictionaries({**_MESSAGE_BASE, kind: JSON}))
TELEGRAM_MESSAGE = mostly(TELEGRAM_TEXT, TELEGRAM_MEDIA | JSON)
#: Unique ids: a repeated update_id is (rightly) ignored as a re-delivery.
UPDATE_ID = mostly(st.uuids().map(lambda u: 1 + u.int % 2**31), st.integers() | JSON)
CALLBACK_QUERY = mostly(st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=10), "chat_instance": st.text(max_size=5), "from": mostly(TELEGRAM_USER, JSON),
     "data": st.text(max_size=80) | ODD_VALUES | st.sampled_from(["#1", "#2", "#99", "#0", "#-1"])},
    optional={"message": TELEGRAM_MESSAGE}), JSON)
TELEGRAM_UPDATE = st.one_of(
    st.fixed_dictionaries({"update_id": UPDATE_ID, "message": TELEGRAM_MESSAGE}),
    st.fixed_dictionaries({"update_id": UPDATE_ID, "edited_message": TELEGRAM_MESSAGE}),
    st.fixed_dictionaries({"update_id": UPDATE_ID, "callback_query": CALLBACK_QUERY}),
    st.fixed_dictionaries({"update_id": UPDATE_ID}, optional={
        "message": JSON, "callback_query": JSON, "channel_post": JSON, "poll": JSON, "my_chat_member": JSON}),
)
WEBCHAT_MESSAGE = mostly(st.fixed_dictionaries(
    {"sender": mostly(st.uuids(version=4).map(str), st.uuids().map(str) | st.text(max_size=40) | JSON),
     "message": mostly(st.text(min_size=1, max_size=2500), ODD_VALUES | JSON)},
    optional={"label": mostly(st.text(max_size=250), JSON),
              "message_id": mostly(st.text(alphabet="abcdef0123456789-", min_size=1, max_size=64),
                                   st.text(max_size=80) | JSON)},
), JSON)
REST_MESSAGE = mostly(st.fixed_dictionaries(
    {"sender": mostly(st.text(min_size=1, max_size=300), JSON), "message": st.text(max_size=300) | ODD_VALUES | JSON},
    optional={"metadata": JSON, "input_channel": JSON},
), JSON)
CONTENT_TYPES = st.sampled_from([
    "application/json", "application/x-www-form-urlencoded", "text/plain", "text/plain; charset=utf-16",
    "multipart/form-data; boundary=xyz", "application/octet-stream", "text/xml", "", "application/json; charset=latin-1",
    "garbage/\x7f", "application/x-www-form-urlencoded; charset=utf-8",
])
ENCODINGS = st.sampled_from(["utf-8", "utf-16", "latin-1", "utf-8-sig"])


def _form(value: Any) -> bytes:
    fields = value if isinstance(value, dict) else {"x": value}
    return urlencode({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}).encode(
        "utf-8", "surrogatepass")


@st.composite
def body(draw: st.DrawFn, shaped: st.SearchStrategy[Any], as_form: bool = False) -> Tuple[bytes, str]:
    """(bytes, content type): mostly a channel-shaped object with odd values (JSON, or a form for
    Twilio) sent with its right content type; otherwise anything at all, with any content type."""
    kind = draw(st.sampled_from(["shaped"] * 4 + ["json", "form", "bytes", "text", "huge", "empty"]))
    if kind == "shaped":
        if as_form:
            data, right_type = _form(draw(shaped)), "application/x-www-form-urlencoded"
        else:
            data, right_type = json.dumps(draw(shaped)).encode("utf-8"), "application/json"
        return data, right_type if draw(st.integers(0, 3)) else draw(CONTENT_TYPES)
    if kind == "json":
        data = json.dumps(draw(JSON)).encode("utf-8")
    elif kind == "form":
        data = _form(draw(TWILIO_FORM))
    elif kind == "bytes":
        data = draw(st.binary(max_size=4096))
    elif kind == "text":
        data = draw(st.text(max_size=500)).encode(draw(ENCODINGS), "replace")
    elif kind == "huge":
        data = draw(st.sampled_from([b"{", b"a=", b"\xff", b'{"message": "'])) * draw(
            st.sampled_from([70_000, 300_000, 1_100_000]))
    else:
        data = b""
    return data, draw(CONTENT_TYPES)


def post(mounted: Mounted, channel: str, data: bytes, headers: Dict[str, str]) -> requests.Response:
    return mounted.http.post(mounted.server.url + PATHS[channel], data=data, headers=headers, timeout=30)


def check(answer: requests.Response, before: int, mounted: Mounted, *, forged: bool,
          keys_before: Optional[Set[bytes]] = None) -> None:
    assert answer.status_code < 500, f"{answer.status_code}: {answer.text[:300]}"
    if forged or answer.status_code >= 400:
        assert mounted.received == before, "a refused or forged request reached the assistant"
    if forged and keys_before is not None:
        assert not mounted.redis_keys() - keys_before, "a forged request left state in Redis"


# -- the four webhooks ---------------------------------------------------------------------------
@FUZZ
@given(request=body(WHATSAPP_FORM, as_form=True), sign=st.sampled_from(["valid", "valid", "none", "wrong"]))
def test_whatsapp_webhook(mounted: Mounted, request: Tuple[bytes, str], sign: str) -> None:
    data, content_type = request
    headers = {"Content-Type": content_type}
    if sign == "valid":
        # Twilio signs the form fields it posts: sign what the body's fields are.
        try:
            params = dict(parse_qsl(data.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            params = {}
        headers["X-Twilio-Signature"] = mounted.twilio.signature(params)
    elif sign == "wrong":
        headers["X-Twilio-Signature"] = "bm90IGEgc2lnbmF0dXJl"
    before, keys = mounted.received, mounted.redis_keys()
    answer = post(mounted, "whatsapp", data, headers)
    check(answer, before, mounted, forged=sign != "valid", keys_before=keys)
    for message in mounted.server.assistant.messages[before:]:
        assert message.sender_id.startswith("whatsapp:") and message.input_channel == "whatsapp"
    mounted.count("whatsapp", before)


@FUZZ
@given(request=body(TELEGRAM_UPDATE), secret=st.sampled_from(["valid", "valid", "none", "wrong"]))
def test_telegram_webhook(mounted: Mounted, request: Tuple[bytes, str], secret: str) -> None:
    data, content_type = request
    headers = {"Content-Type": content_type}
    if secret == "valid":
        headers[SECRET_HEADER] = mounted.telegram.webhook_secret
    elif secret == "wrong":
        headers[SECRET_HEADER] = mounted.telegram.webhook_secret[:-1] + "x"
    before, keys = mounted.received, mounted.redis_keys()
    answer = post(mounted, "telegram", data, headers)
    check(answer, before, mounted, forged=secret != "valid", keys_before=keys)
    for message in mounted.server.assistant.messages[before:]:
        assert message.sender_id.startswith("telegram:") and message.input_channel == "telegram"
    mounted.count("telegram", before)


@FUZZ
@given(request=body(WEBCHAT_MESSAGE), origin=st.sampled_from([None, "https://stad.gent", "https://evil.example"]))
def test_webchat_webhook(mounted: Mounted, request: Tuple[bytes, str], origin: str) -> None:
    data, content_type = request
    headers = {"Content-Type": content_type, **({"Origin": origin} if origin else {})}
    before, keys = mounted.received, mounted.redis_keys()
    answer = post(mounted, "webchat", data, headers)
    check(answer, before, mounted, forged=origin == "https://evil.example", keys_before=keys)
    for message in mounted.server.assistant.messages[before:]:
        assert message.sender_id.startswith("web:") and message.input_channel == "webchat"
    mounted.count("webchat", before)


@FUZZ
@given(request=body(REST_MESSAGE))
def test_rest_webhook(mounted: Mounted, request: Tuple[bytes, str]) -> None:
    data, content_type = request
    before = mounted.received
    answer = post(mounted, "rest", data, {"Content-Type": content_type})
    check(answer, before, mounted, forged=False)
    for message in mounted.server.assistant.messages[before:]:
        assert isinstance(message.text, str) and isinstance(message.sender_id, str)
    mounted.count("rest", before)


def test_the_fuzzing_also_reached_the_assistant(mounted: Mounted) -> None:
    """Not only refusals were fuzzed: on every channel some odd requests were valid messages."""
    if set(mounted.requests) != set(PATHS):
        pytest.skip("run together with the four fuzz tests")
    assert all(mounted.accepted[channel] > 0 for channel in PATHS), dict(mounted.accepted)
    print(f"\nfuzz: messages that reached the assistant per channel: {dict(mounted.accepted)}")

