"""Webhook deliveries are handled once, and a delivery whose handling failed is handled on retry."""
from __future__ import annotations

import asyncio
from typing import List

import pytest

from connectors.state import ConversationState, MemoryState, RedisState


@pytest.fixture(params=["memory", "redis"])
def state(request: pytest.FixtureRequest) -> ConversationState:
    if request.param == "memory":
        return MemoryState()
    return RedisState(request.getfixturevalue("redis_url"), prefix="gentinfotest")


def test_a_delivery_is_handled_once_and_a_failed_one_again_on_retry(state: ConversationState) -> None:
    handled: List[str] = []

    async def handle() -> None:
        handled.append("ok")

    async def fail() -> None:
        raise ConnectionError("assistant unavailable")

    async def scenario() -> List[bool]:
        with pytest.raises(ConnectionError):
            await state.handle_once("whatsapp", "SM-failed", fail)
        return [
            await state.handle_once("whatsapp", "SM-failed", handle),  # the platform's retry
            await state.handle_once("whatsapp", "SM-failed", handle),  # a duplicate of that retry
            await state.handle_once("telegram", "SM-failed", handle),  # same id, other channel
        ]

    assert asyncio.run(scenario()) == [True, False, True]
    assert handled == ["ok", "ok"]
