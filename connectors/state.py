"""Small per-conversation state shared by the messaging connectors.

Two things must survive between webhook calls: which deliveries were already handled (Twilio and
Telegram re-deliver a webhook they think failed, the web chat's browser retries a message whose
answer it did not get) and which buttons the assistant offered last (WhatsApp has no real buttons,
the citizen answers "2"). With ``REDIS_URL`` set the state lives in Redis, so every Rasa worker and
restart sees it; without it (the embedded default) it lives in memory, good enough for one process.

Redis keys (``<prefix>`` is ``gentinfo``; ``<ckey>`` a hash of the conversation id, no phone numbers)::

    <prefix>:seen:<channel>:<delivery id>   string  a handled delivery, 26 hours
    <prefix>:buttons:<ckey>                 string  JSON of the buttons offered last, 24 hours

When Redis is down, every delivery counts as new: the three connectors handle the message (the
citizen may, rarely, get an answer twice) rather than refuse or drop it (the citizen would get
none). The handoff gate decides the same way; see ``connectors/inbox.py``.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

import redis
import redis.asyncio

from bot import wiring
from bot.core import redis_clients
from bot.core.conversation import key as conversation_key
from bot.core.loops import LoopLocal

logger = logging.getLogger(__name__)

#: Twilio retries for minutes, Telegram for up to a day: remember deliveries a little longer.
DEDUPE_TTL_SECONDS = 26 * 60 * 60
#: Buttons are only meaningful while the citizen can still answer (WhatsApp's 24-hour window).
BUTTONS_TTL_SECONDS = 24 * 60 * 60

Button = Dict[str, Any]


class ConversationState:
    """Interface of the two stores; see ``MemoryState`` and ``RedisState``."""

    async def first_delivery(self, channel: str, delivery_id: str) -> bool:
        """True the first time a delivery id is seen (within the TTL), False for a re-delivery."""
        raise NotImplementedError

    async def forget_delivery(self, channel: str, delivery_id: str) -> None:
        """Release a delivery id, so that the next delivery of it is handled again."""
        raise NotImplementedError

    async def handle_once(self, channel: str, delivery_id: str, handle: Callable[[], Awaitable[None]]) -> bool:
        """Run ``handle`` for the first delivery only (False for a re-delivery). When handling
        fails, the id is released and the error goes on: the webhook answers 5xx, the platform
        retries, and that retry is handled instead of being dropped as a duplicate."""
        if not await self.first_delivery(channel, delivery_id):
            return False
        try:
            await handle()
        except BaseException:
            await self.forget_delivery(channel, delivery_id)
            raise
        return True

    async def remember_buttons(self, conversation: str, buttons: List[Button]) -> None:
        raise NotImplementedError

    async def offered_buttons(self, conversation: str) -> List[Button]:
        """The buttons offered last, left in place (Telegram keyboards stay clickable)."""
        raise NotImplementedError

    async def take_buttons(self, conversation: str) -> List[Button]:
        """The buttons offered last, forgotten at once: any answer closes that question."""
        raise NotImplementedError


class _ExpiringDict:
    """A dict whose entries expire; one TTL per dict, so insertion order is expiry order."""

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._clock = clock
        self._items: "OrderedDict[str, Tuple[float, Any]]" = OrderedDict()

    def _purge(self) -> None:
        now = self._clock()
        while self._items:
            key, (expires, _) = next(iter(self._items.items()))
            if expires > now:
                return
            del self._items[key]

    def get(self, key: str) -> Any:
        self._purge()
        entry = self._items.get(key)
        return entry[1] if entry else None

    def set(self, key: str, value: Any) -> None:
        self._purge()
        self._items.pop(key, None)
        self._items[key] = (self._clock() + self._ttl, value)

    def pop(self, key: str) -> Any:
        self._purge()
        entry = self._items.pop(key, None)
        return entry[1] if entry else None


class MemoryState(ConversationState):
    """In-process state for the embedded default (no Redis): lost on restart, not shared."""

    def __init__(
        self,
        dedupe_ttl: float = DEDUPE_TTL_SECONDS,
        buttons_ttl: float = BUTTONS_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._seen = _ExpiringDict(dedupe_ttl, clock)
        self._buttons = _ExpiringDict(buttons_ttl, clock)

    async def first_delivery(self, channel: str, delivery_id: str) -> bool:
        key = f"{channel}:{delivery_id}"
        with self._lock:
            if self._seen.get(key) is not None:
                return False
            self._seen.set(key, True)
            return True

    async def forget_delivery(self, channel: str, delivery_id: str) -> None:
        with self._lock:
            self._seen.pop(f"{channel}:{delivery_id}")

    async def remember_buttons(self, conversation: str, buttons: List[Button]) -> None:
        with self._lock:
            self._buttons.set(conversation, [dict(b) for b in buttons])

    async def offered_buttons(self, conversation: str) -> List[Button]:
        with self._lock:
            return list(self._buttons.get(conversation) or [])

    async def take_buttons(self, conversation: str) -> List[Button]:
        with self._lock:
            return list(self._buttons.pop(conversation) or [])


class RedisState(ConversationState):
    """State in Redis, shared by all workers. Redis trouble degrades, never drops a message:
    a delivery counts as new and buttons are simply not remembered."""

    def __init__(
        self,
        url: str,
        prefix: str = "gentinfo",
        dedupe_ttl: int = DEDUPE_TTL_SECONDS,
        buttons_ttl: int = BUTTONS_TTL_SECONDS,
    ) -> None:
        self._prefix = prefix
        self._dedupe_ttl = dedupe_ttl
        self._buttons_ttl = buttons_ttl
        self._clients: LoopLocal[redis.asyncio.Redis] = LoopLocal(
            lambda: redis_clients.async_client(url)
        )

    def _buttons_key(self, conversation: str) -> str:
        return f"{self._prefix}:buttons:{conversation_key(conversation)}"

    async def first_delivery(self, channel: str, delivery_id: str) -> bool:
        key = f"{self._prefix}:seen:{channel}:{delivery_id}"
        try:
            return bool(await self._clients.get().set(key, 1, nx=True, ex=self._dedupe_ttl))
        except redis.RedisError as error:
            logger.warning("Redis unavailable for de-duplication, handling delivery anyway: %s", error)
            return True

    async def forget_delivery(self, channel: str, delivery_id: str) -> None:
        try:
            await self._clients.get().delete(f"{self._prefix}:seen:{channel}:{delivery_id}")
        except redis.RedisError as error:
            logger.warning("Redis unavailable, a retry of this delivery will be ignored: %s", type(error).__name__)

    async def remember_buttons(self, conversation: str, buttons: List[Button]) -> None:
        value = json.dumps(buttons, ensure_ascii=False)
        try:
            await self._clients.get().set(self._buttons_key(conversation), value, ex=self._buttons_ttl)
        except redis.RedisError as error:
            logger.warning("Redis unavailable, offered buttons not remembered: %s", error)

    async def _read(self, conversation: str, delete: bool) -> List[Button]:
        client = self._clients.get()
        key = self._buttons_key(conversation)
        try:
            raw = await (client.getdel(key) if delete else client.get(key))
        except redis.RedisError as error:
            logger.warning("Redis unavailable, offered buttons unknown: %s", error)
            return []
        return json.loads(raw) if raw else []

    async def offered_buttons(self, conversation: str) -> List[Button]:
        return await self._read(conversation, delete=False)

    async def take_buttons(self, conversation: str) -> List[Button]:
        return await self._read(conversation, delete=True)

    async def close(self) -> None:
        """Close the running loop's connections (tests, short-lived scripts)."""
        client = self._clients.pop()
        if client is not None:
            await client.close()


def _build(url: Optional[str]) -> ConversationState:
    logger.info("Connector state in %s", "Redis" if url else "memory (no REDIS_URL)")
    return RedisState(url) if url else MemoryState()


#: The process-wide store: Redis when ``REDIS_URL`` is set, else memory (see ``bot/wiring.py``).
default_state: wiring.Shared[ConversationState] = wiring.Shared(_build, "REDIS_URL")
