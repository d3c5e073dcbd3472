"""The embedded default's conversation store forgets idle conversations and stays bounded."""
from __future__ import annotations

import asyncio
from typing import List, Optional

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.memory_store import ExpiringInMemoryTrackerStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def conversation(sender_id: str, text: str = "hallo") -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender_id, [])
    tracker.update(UserUttered(text, {"name": "greet", "confidence": 1.0}))
    tracker.update(SlotSet("product", "reispas"))
    return tracker


def store(clock: Clock, idle: int = 60, most: int = 100) -> ExpiringInMemoryTrackerStore:
    return ExpiringInMemoryTrackerStore(Domain.empty(), idle_seconds=idle, max_conversations=most, clock=clock)


def retrieve(conversations: ExpiringInMemoryTrackerStore, sender_id: str) -> Optional[DialogueStateTracker]:
    return asyncio.run(conversations.retrieve(sender_id))


def test_a_saved_conversation_comes_back_with_its_events() -> None:
    conversations = store(Clock())
    asyncio.run(conversations.save(conversation("a", "ik wil een reispas")))
    tracker = retrieve(conversations, "a")
    assert tracker is not None and tracker.latest_message is not None
    assert tracker.latest_message.text == "ik wil een reispas"
    assert [type(event).__name__ for event in tracker.events] == ["UserUttered", "SlotSet"]


def test_a_conversation_idle_longer_than_the_limit_is_forgotten() -> None:
    clock = Clock()
    conversations = store(clock, idle=60)
    asyncio.run(conversations.save(conversation("quiet")))
    clock.now += 30
    asyncio.run(conversations.save(conversation("busy")))
    clock.now += 31  # "quiet" idle 61 s, "busy" 31 s
    assert retrieve(conversations, "quiet") is None
    assert retrieve(conversations, "busy") is not None
    asyncio.run(conversations.save(conversation("new")))
    assert sorted(asyncio.run(conversations.keys())) == ["busy", "new"] and len(conversations) == 2


def test_a_new_message_keeps_a_conversation_alive() -> None:
    clock = Clock()
    conversations = store(clock, idle=60)
    for _ in range(5):
        asyncio.run(conversations.save(conversation("talking")))
        clock.now += 50
    assert retrieve(conversations, "talking") is not None


def test_never_more_than_the_maximum_the_least_recently_active_go_first() -> None:
    clock = Clock()
    conversations = store(clock, idle=3600, most=100)
    senders: List[str] = [f"c{n}" for n in range(1000)]
    for sender in senders:
        asyncio.run(conversations.save(conversation(sender)))
        clock.now += 1
    assert len(conversations) == 100
    assert retrieve(conversations, "c899") is None and retrieve(conversations, "c900") is not None


def test_the_environment_overrides_the_endpoints_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENTINFO_CONVERSATION_IDLE_SECONDS", "5")
    monkeypatch.setenv("GENTINFO_MAX_CONVERSATIONS", "nonsense")
    conversations = ExpiringInMemoryTrackerStore(Domain.empty(), idle_seconds=60, max_conversations=7)
    assert conversations.idle_seconds == 5 and conversations.max_conversations == 20_000
