"""WhatsApp and Telegram through the real running assistant (trained model, action server).

The ``assistant`` fixture (tests/conftest.py) starts Rasa with ``credentials.yml`` and the
environment from ``fake_twilio.env()`` and ``fake_telegram.env()``; it exposes ``.url``. Until that
fixture exists these tests are skipped, and only then.
"""
from __future__ import annotations

import re
from typing import Any

import pytest

from tests.fakes.telegram_api import CHAT_ID, FakeTelegram, parse_html
from tests.fakes.twilio_api import CITIZEN, FakeTwilio

GREETING = re.compile(r"\b(dag|hallo|welkom|goeiedag|goedendag)\b", re.IGNORECASE)
#: A real turn (NLU, policies, maybe the action server) on a 2-core machine.
TURN_SECONDS = 60.0


@pytest.fixture
def rasa(request: pytest.FixtureRequest) -> Any:
    try:
        return request.getfixturevalue("assistant")
    except pytest.FixtureLookupError:
        pytest.skip("the `assistant` fixture (running Rasa with credentials.yml) is not defined yet")


def test_signed_whatsapp_hallo_gets_a_dutch_greeting(rasa, fake_twilio: FakeTwilio):
    fake_twilio.clear()
    reply = fake_twilio.deliver(rasa.url, fake_twilio.incoming("hallo"))

    assert reply.status_code == 200
    first = fake_twilio.wait_for(1, timeout=TURN_SECONDS)[0]
    assert first.status == 201 and first.params["To"] == CITIZEN
    assert GREETING.search(first.params["Body"]), first.params["Body"]


def test_telegram_update_gets_an_answer(rasa, fake_telegram: FakeTelegram):
    fake_telegram.clear()
    reply = fake_telegram.deliver(rasa.url, fake_telegram.message_update("/start"))

    assert reply.status_code == 200
    first = fake_telegram.wait_for(1, timeout=TURN_SECONDS)[0]
    assert first.status == 200 and first.params["chat_id"] == str(CHAT_ID)
    assert GREETING.search(parse_html(first.params["text"])), first.params["text"]


def test_forged_webhooks_are_refused_by_the_running_assistant(rasa, fake_twilio: FakeTwilio, fake_telegram: FakeTelegram):
    fake_twilio.clear()
    fake_telegram.clear()

    assert fake_twilio.deliver(rasa.url, fake_twilio.incoming("hallo"), auth_token="0" * 32).status_code == 403
    assert fake_telegram.deliver(rasa.url, fake_telegram.message_update("hallo"), secret="fout").status_code == 403
    assert fake_twilio.calls == []
    assert fake_telegram.sent() == []
