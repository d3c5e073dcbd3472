"""The embedded default's conversation store: Rasa's in-memory tracker store, bounded.

Rasa 3.6's ``InMemoryTrackerStore`` keeps every conversation it ever saw, as JSON text, until the
process stops: a server that runs for weeks grows without bound. This one (``endpoints.yml``:
``tracker_store: type: bot.memory_store.ExpiringInMemoryTrackerStore``):

- forgets a conversation ``idle_seconds`` after its last message (default 2 hours; Rasa starts a
  new session after ``session_expiration_time`` = 60 minutes of silence anyway, so nothing a
  citizen could still use is lost);
- keeps at most ``max_conversations`` (default 20,000): beyond that the least recently active one
  goes first, so even a burst of new conversations cannot exhaust memory;
- keeps each conversation zlib-compressed (a tracker's JSON compresses about 10×).

Expiry costs nothing per message: conversations are kept in order of their last message, so the
expired ones are at the front and are removed as new messages come in. ``GENTINFO_CONVERSATION_IDLE_SECONDS``
and ``GENTINFO_MAX_CONVERSATIONS`` override the values of ``endpoints.yml`` (the benchmark uses them).
The production profile keeps conversations in Redis with their own expiry (``bot/stores.py``).
"""
from __future__ import annotations

import logging
import os
import time
import zlib
from collections import OrderedDict
from typing import Any, Callable, Iterable, Optional, Text, Tuple

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

logger = logging.getLogger(__name__)

DEFAULT_IDLE_SECONDS = 2 * 3600
DEFAULT_MAX_CONVERSATIONS = 20_000
IDLE_ENV = "GENTINFO_CONVERSATION_IDLE_SECONDS"
MAX_ENV = "GENTINFO_MAX_CONVERSATIONS"


def _setting(env: str, configured: Any, default: int) -> int:
    raw = os.environ.get(env) or configured
    try:
        value = int(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        logger.warning("memory_store: %s=%r is not a whole number; using %d", env, raw, default)
        return default
    return max(1, value)


class ExpiringInMemoryTrackerStore(InMemoryTrackerStore):
    """Rasa's in-memory tracker store with idle expiry, a size bound and compression."""

    def __init__(
        self,
        domain: Optional[Domain] = None,
        event_broker: Optional[EventBroker] = None,
        idle_seconds: Optional[int] = None,
        max_conversations: Optional[int] = None,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("host", None)  # Rasa passes the endpoint's (absent) url as host
        super().__init__(domain or Domain.empty(), event_broker, **kwargs)
        self.idle_seconds = _setting(IDLE_ENV, idle_seconds, DEFAULT_IDLE_SECONDS)
        self.max_conversations = _setting(MAX_ENV, max_conversations, DEFAULT_MAX_CONVERSATIONS)
        self._clock = clock
        #: conversation id -> (time of its last message, compressed JSON), oldest message first
        self._conversations: "OrderedDict[Text, Tuple[float, bytes]]" = OrderedDict()

    def __len__(self) -> int:
        return len(self._conversations)

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        serialised = self.serialise_tracker(tracker).encode()
        self._conversations[tracker.sender_id] = (self._clock(), zlib.compress(serialised, 1))
        self._conversations.move_to_end(tracker.sender_id)
        self._forget_old()

    def _forget_old(self) -> None:
        oldest_kept = self._clock() - self.idle_seconds
        conversations = self._conversations
        while conversations:
            sender_id, (last_message, _) = next(iter(conversations.items()))
            if last_message >= oldest_kept and len(conversations) <= self.max_conversations:
                return
            del conversations[sender_id]

    async def keys(self) -> Iterable[Text]:
        self._forget_old()
        return list(self._conversations.keys())

    async def _retrieve(self, sender_id: Text, fetch_all_sessions: bool) -> Optional[DialogueStateTracker]:
        import rasa.shared.core.trackers

        entry = self._conversations.get(sender_id)
        if entry is None or entry[0] < self._clock() - self.idle_seconds:
            return None
        tracker = self.deserialise_tracker(sender_id, zlib.decompress(entry[1]))
        if tracker is None or fetch_all_sessions:
            return tracker
        sessions = rasa.shared.core.trackers.get_trackers_for_conversation_sessions(tracker)
        return sessions[-1] if len(sessions) > 1 else tracker
