"""Pytest fixtures for the fake remote APIs (registered as a plugin from tests/conftest.py).

Session-scoped: each fake starts once; tests call ``.clear()`` before they assert on calls.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio


@pytest.fixture(scope="session")
def fake_twilio() -> Iterator[FakeTwilio]:
    """A local Twilio (Messages API + signed WhatsApp webhooks); ``.env()`` configures the connector."""
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_telegram() -> Iterator[FakeTelegram]:
    """A local Telegram Bot API (+ webhook updates); ``.env()`` configures the connector."""
    fake = FakeTelegram().start()
    yield fake
    fake.stop()
