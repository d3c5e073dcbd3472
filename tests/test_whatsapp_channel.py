"""WhatsApp channel: real Sanic server, real twilio SDK, a local Twilio (tests/fakes/twilio_api.py).

The assistant is a double for Rasa's agent (tests/fakes/assistant.py); everything from the signed
webhook to the Messages API call is the real connector.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Callable, Iterator, List

import pytest
import redis
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from bot.core.texts import say
from connectors import outbound
from connectors.inbox import MAX_INPUT_CHARS
from connectors.replies import split_text
from connectors.state import ConversationState, MemoryState, RedisState
from connectors.whatsapp import WhatsAppInput, WhatsAppOutput, WhatsAppSettings, twilio_client
from tests.fakes.assistant import ChannelServer
from tests.fakes.twilio_api import CITIZEN, FakeTwilio

BUTTONS = [
    {"title": "Reispas", "payload": '/ask_product_info{"product": "reispas"}'},
    {"title": "Identiteitskaart", "payload": '/ask_product_info{"product": "eid"}'},
]
LONG_ANSWER = " ".join(f"Dit is zin nummer {n} over uw reispas en wat u moet meebrengen." for n in range(60))


@pytest.fixture
def twilio(fake_twilio: FakeTwilio) -> FakeTwilio:
    fake_twilio.clear()
    return fake_twilio


@pytest.fixture
def serve(twilio: FakeTwilio) -> Iterator[Callable[[ConversationState], ChannelServer]]:
    """Starts the channel (configured for the fake) with a given state store."""
    servers: List[ChannelServer] = []

    def start(state: ConversationState) -> ChannelServer:
        channel = WhatsAppInput(WhatsAppSettings.from_env(twilio.env()), state)
        servers.append(ChannelServer(channel).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def whatsapp(serve: Callable[[ConversationState], ChannelServer]) -> ChannelServer:
    return serve(MemoryState())


@pytest.fixture(params=["memory", "redis"])
def any_state(request: pytest.FixtureRequest) -> ConversationState:
    if request.param == "memory":
        return MemoryState()
    return RedisState(request.getfixturevalue("redis_url"))


def bodies(twilio: FakeTwilio) -> List[str]:
    return [call.params.get("Body", "") for call in twilio.calls]


def test_signed_message_reaches_assistant_and_reply_goes_out_through_twilio(twilio, whatsapp):
    params = twilio.incoming("Hoeveel kost een reispas?", profile_name="An")
    reply = twilio.deliver(whatsapp.url, params)

    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/xml") and "<Response" in reply.text
    [message] = whatsapp.assistant.messages
    assert message.text == "Hoeveel kost een reispas?"
    assert message.sender_id == CITIZEN  # "whatsapp:+32…", the conversation id
    assert message.input_channel == "whatsapp"
    assert message.message_id == params["MessageSid"]
    assert message.metadata == {"profile_name": "An"}
    [call] = twilio.wait_for(1)
    assert call.status == 201
    assert call.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert call.params == {"To": CITIZEN, "From": twilio.whatsapp_from, "Body": "U vroeg: Hoeveel kost een reispas?"}


@pytest.mark.parametrize("forgery", ["wrong token", "unsigned", "body changed", "internal url"])
def test_forged_or_unsigned_webhook_is_refused_and_reaches_nobody(twilio, whatsapp, forgery):
    params = twilio.incoming("hallo")
    url = f"{whatsapp.url}/webhooks/whatsapp/webhook"
    if forgery == "wrong token":
        reply = twilio.deliver(whatsapp.url, params, auth_token="0" * 32)
    elif forgery == "unsigned":
        reply = twilio.deliver(whatsapp.url, params, sign=False)
    elif forgery == "body changed":
        signature = twilio.signature(params)
        reply = requests.post(url, data={**params, "Body": "iets anders"},
                              headers={"X-Twilio-Signature": signature}, timeout=10)
    else:  # signed for the address the assistant listens on, not the public URL Twilio calls
        signature = RequestValidator(twilio.auth_token).compute_signature(url, params)
        reply = requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)

    assert reply.status_code == 403
    assert whatsapp.assistant.messages == []
    assert twilio.calls == []


def test_long_reply_is_split_on_sentence_boundaries(twilio, whatsapp):
    whatsapp.assistant.replies["lang"] = [{"text": LONG_ANSWER}]
    twilio.deliver(whatsapp.url, twilio.incoming("lang"))

    calls = twilio.calls
    assert len(calls) >= 3
    assert all(call.status == 201 for call in calls)  # the fake refuses bodies over 1,600 (21617)
    parts = [call.params["Body"] for call in calls]
    assert all(len(part) <= 1600 and part.endswith(".") for part in parts)
    assert " ".join(parts) == LONG_ANSWER


@given(st.text(alphabet=st.sampled_from("ab .!?\n"), max_size=400), st.integers(min_value=2, max_value=60))
@settings(max_examples=200, deadline=None)
def test_split_text_keeps_every_word_within_the_limit(text, limit):
    parts = split_text(text, limit)
    assert all(0 < len(part) <= limit for part in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


def test_buttons_become_a_numbered_list_and_the_number_maps_back(twilio, whatsapp):
    whatsapp.assistant.replies["welke dienst"] = [{"text": "Waarover gaat uw vraag?", "buttons": BUTTONS}]
    twilio.deliver(whatsapp.url, twilio.incoming("welke dienst"))
    [offer] = bodies(twilio)
    assert offer == f"Waarover gaat uw vraag?\n\n1. Reispas\n2. Identiteitskaart\n\n{say('channels.numbered_choice_hint')}"

    twilio.deliver(whatsapp.url, twilio.incoming("2"))
    assert whatsapp.assistant.texts[-1] == BUTTONS[1]["payload"]


def test_button_title_maps_back_and_an_answer_closes_the_choice(twilio, whatsapp):
    whatsapp.assistant.replies["welke dienst"] = [{"text": "Waarover gaat uw vraag?", "buttons": BUTTONS}]
    twilio.deliver(whatsapp.url, twilio.incoming("welke dienst"))
    twilio.deliver(whatsapp.url, twilio.incoming(" reispas "))
    assert whatsapp.assistant.texts[-1] == BUTTONS[0]["payload"]

    twilio.deliver(whatsapp.url, twilio.incoming("welke dienst"))
    twilio.deliver(whatsapp.url, twilio.incoming("iets anders"))
    twilio.deliver(whatsapp.url, twilio.incoming("2"))  # the earlier list no longer applies
    assert whatsapp.assistant.texts[-2:] == ["iets anders", "2"]


def test_offered_buttons_live_in_redis_without_phone_numbers(twilio, serve, redis_url):
    whatsapp = serve(RedisState(redis_url))
    whatsapp.assistant.replies["welke dienst"] = [{"text": "Waarover gaat uw vraag?", "buttons": BUTTONS}]
    twilio.deliver(whatsapp.url, twilio.incoming("welke dienst"))

    client = redis.Redis.from_url(redis_url)
    keys = [key.decode() for key in client.keys("gentinfo:buttons:*")]
    assert len(keys) == 1 and "32470123456" not in keys[0]
    assert json.loads(client.get(keys[0])) == BUTTONS

    twilio.deliver(whatsapp.url, twilio.incoming("1"))
    assert whatsapp.assistant.texts[-1] == BUTTONS[0]["payload"]
    assert client.keys("gentinfo:buttons:*") == []
    client.close()


def test_template_button_payload_is_used_as_the_message(twilio, whatsapp):
    twilio.deliver(whatsapp.url, twilio.incoming("Ja", button_payload="/affirm"))
    assert whatsapp.assistant.texts == ["/affirm"]


def test_same_message_sid_delivered_twice_is_answered_once(twilio, serve, any_state):
    whatsapp = serve(any_state)
    params = twilio.incoming("hallo")
    assert twilio.deliver(whatsapp.url, params).status_code == 200
    assert twilio.deliver(whatsapp.url, params).status_code == 200

    assert whatsapp.assistant.texts == ["hallo"]
    assert len(twilio.calls) == 1


def test_voice_note_gets_a_friendly_dutch_answer(twilio, whatsapp):
    media = [("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "audio/ogg")]
    twilio.deliver(whatsapp.url, twilio.incoming("", media=media))

    assert whatsapp.assistant.messages == []
    [answer] = bodies(twilio)
    assert "spraakbericht" in answer and "alleen tekst" in answer and "typen" in answer


@pytest.mark.parametrize(
    "content_type, noun",
    [("image/jpeg", "foto"), ("image/webp", "sticker"), ("video/mp4", "video"),
     ("application/pdf", "bestand"), ("text/vcard", "contactgegevens")],
)
def test_other_media_get_an_answer_naming_what_was_sent(twilio, whatsapp, content_type, noun):
    twilio.deliver(whatsapp.url, twilio.incoming("", media=[("https://media.example/1", content_type)]))
    [answer] = bodies(twilio)
    assert noun in answer and "alleen tekst" in answer
    assert whatsapp.assistant.messages == []


def test_photo_with_caption_keeps_the_caption(twilio, whatsapp):
    twilio.deliver(whatsapp.url, twilio.incoming("Is deze pasfoto goed?", media=[("https://media.example/2", "image/jpeg")]))

    assert whatsapp.assistant.texts == ["Is deze pasfoto goed?"]
    notice, echo = bodies(twilio)
    assert "foto" in notice.lower() and "uw tekst wel" in notice
    assert echo == "U vroeg: Is deze pasfoto goed?"


def test_shared_location_suggests_the_nearest_office(twilio, whatsapp):
    twilio.deliver(whatsapp.url, twilio.incoming("", location=(51.0625, 3.7125)))  # next to Rabot

    [answer] = bodies(twilio)
    assert "Wijkkantoor Rabot" in answer and "Rabotstraat 40" in answer
    assert whatsapp.assistant.messages == []


def test_images_and_attachments_are_sent_as_media(twilio, whatsapp):
    image, leaflet = "https://stad.gent/img/reispas.png", "https://stad.gent/docs/folder.pdf"
    whatsapp.assistant.replies["toon"] = [{"image": image}, {"attachment": leaflet}]
    twilio.deliver(whatsapp.url, twilio.incoming("toon"))

    calls = twilio.wait_for(2)
    assert [call.lists["MediaUrl"] for call in calls] == [[image], [leaflet]]
    assert all(call.status == 201 and "Body" not in call.params for call in calls)


def test_emoji_only_message_reaches_the_assistant(twilio, whatsapp):
    assert twilio.deliver(whatsapp.url, twilio.incoming("👍🙂")).status_code == 200
    assert whatsapp.assistant.texts == ["👍🙂"]


def test_empty_message_gets_a_friendly_answer(twilio, whatsapp):
    assert twilio.deliver(whatsapp.url, twilio.incoming("   ")).status_code == 200
    assert bodies(twilio) == [say("channels.empty")]
    assert whatsapp.assistant.messages == []


def test_very_long_message_is_clipped_with_a_notice(twilio, whatsapp):
    text = "Ik heb een vraag over mijn verhuis. " * 200
    assert twilio.deliver(whatsapp.url, twilio.incoming(text)).status_code == 200

    [message] = whatsapp.assistant.messages
    assert 0 < len(message.text) <= MAX_INPUT_CHARS and text.startswith(message.text)
    assert bodies(twilio)[0] == say("channels.too_long")


def test_huge_request_is_refused_before_anything_else(twilio, whatsapp):
    reply = twilio.deliver(whatsapp.url, twilio.incoming("x" * 100_000))
    assert reply.status_code == 413
    assert whatsapp.assistant.messages == [] and twilio.calls == []


def test_malformed_requests_get_400_not_500(twilio, whatsapp):
    url = f"{whatsapp.url}/webhooks/whatsapp/webhook"
    no_sender = {k: v for k, v in twilio.incoming("hallo").items() if k != "From"}
    sms = twilio.incoming("hallo", sender="+32470123456")
    assert twilio.deliver(whatsapp.url, no_sender).status_code == 400
    assert twilio.deliver(whatsapp.url, sms).status_code == 400
    assert requests.post(url, json={"Body": "hallo"}, timeout=10).status_code == 400
    not_utf8 = requests.post(url, data=b"Body=\xff\xfe", timeout=10,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert not_utf8.status_code == 400
    assert whatsapp.assistant.messages == [] and twilio.calls == []


def test_without_configuration_the_channel_answers_503(twilio, monkeypatch, caplog):
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_FROM", "GENTINFO_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level(logging.WARNING, logger="connectors.whatsapp"):
        channel = WhatsAppInput.from_credentials(None)
    assert "not configured" in caplog.text
    server = ChannelServer(channel).start()
    try:
        assert twilio.deliver(server.url, twilio.incoming("hallo")).status_code == 503
    finally:
        server.stop()
    assert server.assistant.messages == []
    with pytest.raises(outbound.UnknownChannel):
        outbound.output_channel_for(CITIZEN)


def test_outbound_send_uses_the_registered_factory(twilio, monkeypatch):
    for name, value in twilio.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)

    asyncio.run(outbound.send(CITIZEN, {"text": "Uw afspraak is bevestigd.", "buttons": BUTTONS}))
    asyncio.run(outbound.send(CITIZEN, {"custom": {"content_sid": "HX0123", "content_variables": {"1": "12 mei"}}}))

    first, template = twilio.wait_for(2)
    assert first.params["To"] == CITIZEN and first.params["Body"].startswith("Uw afspraak is bevestigd.\n\n1. Reispas")
    assert template.params["ContentSid"] == "HX0123"
    assert json.loads(template.params["ContentVariables"]) == {"1": "12 mei"}


def test_refused_send_is_logged_not_raised(twilio, caplog):
    settings = WhatsAppSettings.from_env({**twilio.env(), "TWILIO_AUTH_TOKEN": "f" * 32})
    assert settings is not None
    output = WhatsAppOutput(twilio_client(settings), settings.sender, MemoryState())
    with caplog.at_level(logging.ERROR, logger="connectors.whatsapp"):
        asyncio.run(output.send_text_message(CITIZEN, "hallo"))
    [call] = twilio.calls
    assert call.status == 401
    assert "20003" in caplog.text and "32470123456" not in caplog.text


def test_info_logs_carry_neither_phone_number_nor_text(twilio, whatsapp, caplog):
    with caplog.at_level(logging.INFO):
        twilio.deliver(whatsapp.url, twilio.incoming("Mijn rijksregisternummer is 85.07.30-033.61"))
    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("connectors")]
    assert info, "the connector logs each message at INFO"
    assert not any("32470123456" in line or "rijksregisternummer" in line for line in info)


def test_memory_state_forgets_after_its_ttl():
    now = [0.0]
    state = MemoryState(dedupe_ttl=60, buttons_ttl=30, clock=lambda: now[0])

    async def scenario() -> list:
        seen = [await state.first_delivery("whatsapp", "SM1"), await state.first_delivery("whatsapp", "SM1")]
        await state.remember_buttons(CITIZEN, BUTTONS)
        now[0] = 31.0
        seen.append(await state.offered_buttons(CITIZEN))
        now[0] = 61.0
        seen.append(await state.first_delivery("whatsapp", "SM1"))
        return seen

    assert asyncio.run(scenario()) == [True, False, [], True]
