"""Telegram channel: real Sanic server, real python-telegram-bot, a local Bot API
(tests/fakes/telegram_api.py).

The assistant is a double for Rasa's agent (tests/fakes/assistant.py); everything from the webhook
to the Bot API call is the real connector.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable, Iterator, List

import pytest

from bot.core.texts import say
from connectors import outbound
from connectors import telegram as telegram_connector
from connectors.state import ConversationState, MemoryState, RedisState
from connectors.telegram import GREET, TelegramInput, TelegramSettings
from tests.fakes.assistant import ChannelServer
from tests.fakes.telegram_api import CHAT_ID, CONTENT, FakeTelegram, parse_html

CONVERSATION = f"telegram:{CHAT_ID}"
LONG_PAYLOAD = '/ask_product_info{"product": "identiteitskaart", "location": "wijkkantoor_sint_amandsberg"}'
BUTTONS = [
    {"title": "Reispas", "payload": '/ask_product_info{"product": "reispas"}'},
    {"title": "Identiteitskaart in Sint-Amandsberg", "payload": LONG_PAYLOAD},
]


@pytest.fixture
def api(fake_telegram: FakeTelegram) -> FakeTelegram:
    fake_telegram.clear()
    return fake_telegram


@pytest.fixture
def serve(api: FakeTelegram) -> Iterator[Callable[[ConversationState], ChannelServer]]:
    """Starts the channel (configured for the fake) with a given state store."""
    servers: List[ChannelServer] = []

    def start(state: ConversationState) -> ChannelServer:
        servers.append(ChannelServer(TelegramInput(TelegramSettings.from_env(api.env()), state)).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def telegram(serve: Callable[[ConversationState], ChannelServer]) -> ChannelServer:
    return serve(MemoryState())


def texts(api: FakeTelegram) -> List[str]:
    """What the citizen reads: each accepted sendMessage, its HTML parsed as Telegram does."""
    return [parse_html(call.params["text"]) for call in api.sent() if call.status == 200]


def test_text_message_reaches_assistant_and_reply_is_sent(api, telegram):
    reply = api.deliver(telegram.url, api.message_update("Waar vind ik mijn afvalkalender?"))

    assert reply.status_code == 200
    [message] = telegram.assistant.messages
    assert message.text == "Waar vind ik mijn afvalkalender?"
    assert message.sender_id == CONVERSATION and message.input_channel == "telegram"
    assert message.metadata == {"language_code": "nl"}
    [call] = api.wait_for(1)
    assert call.status == 200
    assert call.params["chat_id"] == str(CHAT_ID) and call.params["parse_mode"] == "HTML"
    assert texts(api) == ["U vroeg: Waar vind ik mijn afvalkalender?"]


@pytest.mark.parametrize("secret", ["wrong-secret", ""])
def test_wrong_or_missing_secret_token_is_refused(api, telegram, secret):
    reply = api.deliver(telegram.url, api.message_update("hallo"), secret=secret)

    assert reply.status_code == 403
    assert telegram.assistant.messages == []
    assert api.calls == []


def test_reply_is_html_escaped(api, telegram):
    answer = "Kinderen <12 jaar betalen €20 & ouders tekenen. <b>niet</b> vergeten"
    telegram.assistant.replies["prijs"] = [{"text": answer}]
    api.deliver(telegram.url, api.message_update("prijs"))

    [call] = api.sent()
    assert call.status == 200  # the fake parses HTML like Telegram: a raw "<12" would be a 400
    assert call.params["text"] == (
        "Kinderen &lt;12 jaar betalen €20 &amp; ouders tekenen. &lt;b&gt;niet&lt;/b&gt; vergeten"
    )
    assert texts(api) == [answer]


def test_long_reply_is_split_at_4096_characters(api, telegram):
    answer = " ".join(f"Zin {n}: breng uw identiteitskaart & pasfoto mee." for n in range(400))
    telegram.assistant.replies["lang"] = [{"text": answer}]
    api.deliver(telegram.url, api.message_update("lang"))

    calls = api.sent()
    assert len(calls) >= 4 and all(call.status == 200 for call in calls)
    assert all(len(text) <= 4096 and text.endswith(".") for text in texts(api))
    assert " ".join(texts(api)) == answer


def test_buttons_become_an_inline_keyboard(api, telegram):
    telegram.assistant.replies["welke dienst"] = [{"text": "Waarover gaat uw vraag?", "buttons": BUTTONS}]
    api.deliver(telegram.url, api.message_update("welke dienst"))

    [call] = api.sent()
    assert call.status == 200  # callback_data over 64 bytes would be BUTTON_DATA_INVALID
    assert call.params["reply_markup"] == {"inline_keyboard": [
        [{"text": "Reispas", "callback_data": BUTTONS[0]["payload"]}],
        [{"text": "Identiteitskaart in Sint-Amandsberg", "callback_data": "#2"}],
    ]}


@pytest.mark.parametrize("data, payload", [(BUTTONS[0]["payload"], BUTTONS[0]["payload"]), ("#2", LONG_PAYLOAD)])
def test_button_tap_is_answered_and_routed_as_the_payload(api, telegram, data, payload):
    telegram.assistant.replies["welke dienst"] = [{"text": "Waarover gaat uw vraag?", "buttons": BUTTONS}]
    api.deliver(telegram.url, api.message_update("welke dienst"))
    update = api.callback_update(data)
    api.deliver(telegram.url, update)

    [answered] = api.sent("answerCallbackQuery")
    assert answered.status == 200
    assert answered.params["callback_query_id"] == update["callback_query"]["id"]
    assert telegram.assistant.texts[-1] == payload
    assert telegram.assistant.messages[-1].sender_id == CONVERSATION


def test_tap_on_a_forgotten_long_button_asks_to_type_again(api, telegram):
    api.deliver(telegram.url, api.callback_update("#3"))

    assert telegram.assistant.messages == []
    assert texts(api) == [say("channels.expired_choice")]


@pytest.mark.parametrize(
    "text, expected",
    [("/start", [GREET]), ("/start afspraak", [GREET, "afspraak"]),
     ("/start afspraak_reispas", [GREET, "afspraak reispas"]), ("/start@gentinfo_test_bot", [GREET])],
)
def test_start_greets_and_passes_the_deep_link_payload(api, telegram, text, expected):
    api.deliver(telegram.url, api.message_update(text))
    assert telegram.assistant.texts == expected


def test_edited_message_is_answered_as_a_new_question(api, telegram):
    api.deliver(telegram.url, api.message_update("Wat kost een rijbewijs?", edited=True))
    assert telegram.assistant.texts == ["Wat kost een rijbewijs?"]
    assert texts(api) == ["U vroeg: Wat kost een rijbewijs?"]


@pytest.mark.parametrize("kind, noun", [("voice", "spraakbericht"), ("photo", "foto"), ("sticker", "sticker"),
                                        ("document", "bestand"), ("video", "video"), ("contact", "contactgegevens")])
def test_non_text_content_gets_a_friendly_answer(api, telegram, kind, noun):
    api.deliver(telegram.url, api.message_update(**CONTENT[kind]))

    assert telegram.assistant.messages == []
    [answer] = texts(api)
    assert noun in answer and "alleen tekst" in answer


def test_photo_caption_is_still_answered(api, telegram):
    api.deliver(telegram.url, api.message_update(caption="Is deze pasfoto goed?", **CONTENT["photo"]))

    assert telegram.assistant.texts == ["Is deze pasfoto goed?"]
    notice, echo = texts(api)
    assert "foto" in notice.lower() and echo == "U vroeg: Is deze pasfoto goed?"


def test_shared_location_suggests_the_nearest_office(api, telegram):
    api.deliver(telegram.url, api.message_update(location={"latitude": 51.0885, "longitude": 3.6805}))

    [answer] = texts(api)
    assert "Wijkkantoor Wondelgem" in answer
    assert telegram.assistant.messages == []


@pytest.fixture(params=["memory", "redis"])
def any_state(request: pytest.FixtureRequest) -> ConversationState:
    if request.param == "memory":
        return MemoryState()
    return RedisState(request.getfixturevalue("redis_url"))


def test_duplicate_update_id_is_answered_once(api, serve, any_state):
    telegram = serve(any_state)
    update = api.message_update("hallo")
    assert api.deliver(telegram.url, update).status_code == 200
    assert api.deliver(telegram.url, update).status_code == 200

    assert telegram.assistant.texts == ["hallo"]
    assert len(api.sent()) == 1


def test_bot_is_initialised_once_and_reused(api, telegram):
    for text in ("een", "twee", "drie"):
        api.deliver(telegram.url, api.message_update(text))
    assert [call.endpoint for call in api.calls].count("getMe") == 1
    assert len(api.sent()) == 3


@pytest.mark.parametrize("body", [b"", b"{not json", b"[1, 2]", b'{"message": {"text": "hallo"}}',
                                  b'{"update_id": 5, "message": {"text": "geen chat"}}'])
def test_malformed_updates_get_400_not_500(api, telegram, body):
    assert api.deliver(telegram.url, body=body).status_code == 400
    assert telegram.assistant.messages == [] and api.sent() == []


def test_huge_update_is_refused(api, telegram):
    assert api.deliver(telegram.url, api.message_update("x" * 300_000)).status_code == 413
    assert telegram.assistant.messages == []


def test_emoji_only_and_empty_messages(api, telegram):
    api.deliver(telegram.url, api.message_update("🙏"))
    api.deliver(telegram.url, api.message_update(" "))

    assert telegram.assistant.texts == ["🙏"]
    assert texts(api) == ["U vroeg: 🙏", say("channels.empty")]


def test_without_configuration_the_channel_answers_503(api, monkeypatch, caplog):
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET", raising=False)
    with caplog.at_level(logging.WARNING, logger="connectors.telegram"):
        channel = TelegramInput.from_credentials(None)
    assert "not configured" in caplog.text
    server = ChannelServer(channel).start()
    try:
        assert api.deliver(server.url, api.message_update("hallo")).status_code == 503
    finally:
        server.stop()
    assert server.assistant.messages == [] and api.calls == []
    with pytest.raises(outbound.UnknownChannel):
        outbound.output_channel_for(CONVERSATION)


def test_set_webhook_command_registers_url_secret_and_updates(api, monkeypatch, capsys):
    for name, value in api.env().items():
        monkeypatch.setenv(name, value)

    assert telegram_connector.main(["set-webhook"]) == 0

    [call] = api.sent("setWebhook")
    assert call.status == 200
    assert call.params["url"] == f"{api.public_url}/webhooks/telegram/webhook"
    assert call.params["secret_token"] == api.webhook_secret
    assert call.params["allowed_updates"] == ["message", "edited_message", "callback_query"]
    assert "webhooks/telegram/webhook" in capsys.readouterr().out


def test_outbound_send_from_another_event_loop(api, wiring):
    wiring(**api.env(), REDIS_URL="")

    asyncio.run(outbound.send(CONVERSATION, {"text": "Uw afspraak is bevestigd.", "buttons": BUTTONS[:1]}))
    asyncio.run(outbound.send(CONVERSATION, {"image": "https://stad.gent/img/reispas.png"}))

    [message] = api.wait_for(1)
    assert message.params["chat_id"] == str(CHAT_ID) and message.params["text"] == "Uw afspraak is bevestigd."
    assert message.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "Reispas"
    [photo] = api.wait_for(1, method="sendPhoto")
    assert photo.params["photo"] == "https://stad.gent/img/reispas.png"


def test_calendar_file_is_sent_as_a_document(api, wiring):
    wiring(**api.env(), REDIS_URL="")
    ics = {"type": "ics", "filename": "afspraak-GNT-7K3Q9.ics", "content": "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"}

    asyncio.run(outbound.send(CONVERSATION, {"custom": ics}))
    asyncio.run(outbound.send(CONVERSATION, {"custom": {**ics, "filename": "../../etc/passwd"}}))

    first, second = api.wait_for(2, method="sendDocument")
    assert first.params["chat_id"] == str(CHAT_ID) and first.params["document"] == "afspraak-GNT-7K3Q9.ics"
    assert second.params["document"] == "afspraak.ics"


def test_info_logs_carry_neither_chat_id_nor_text_nor_token(api, telegram, caplog):
    with caplog.at_level(logging.INFO):
        api.deliver(telegram.url, api.message_update("Mijn adres is Veldstraat 1"))
    lines = [record.getMessage() for record in caplog.records if record.levelno >= logging.INFO]
    assert any(line.startswith("Telegram update") for line in lines)
    assert not any(str(CHAT_ID) in line or "Veldstraat" in line or api.token in line for line in lines)
