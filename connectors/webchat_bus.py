"""The web chat's push bus: bot messages that arrive outside a request reach the browser's stream.

Redis pub/sub when ``REDIS_URL`` is set, so that any process (Rasa, the handoff console) reaches the
browser whichever process holds its stream; an in-process bus otherwise (single-process default).

Redis keys (``<session>`` is the browser's uuid, the only key to its conversation)::

    gentinfo:webchat:{<session>}:seq       string   last pushed event id, 1 hour
    gentinfo:webchat:{<session>}:backlog   list     the last 50 pushed events (JSON), 1 hour
    gentinfo:webchat:push:<session>        pub/sub  live events
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, defaultdict, deque
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Deque, Dict, List, Optional, Set, Tuple

from redis.exceptions import RedisError

from bot import wiring
from bot.core import redis_clients

logger = logging.getLogger(__name__)

#: Pushed messages kept per conversation, so a stream that reconnects gets what it missed.
BACKLOG_SIZE = 50
BACKLOG_SECONDS = 3600
SUBSCRIBE_TIMEOUT_SECONDS = 5.0

Event = Tuple[int, Dict[str, Any]]


class BusUnavailable(RuntimeError):
    """The push bus (Redis) cannot be reached right now."""


class PushBus:
    """Delivers pushed bot messages to the open streams of a conversation.

    Each pushed message gets an id that grows per conversation; a short backlog lets a stream that
    reconnects with its last id catch up, so a dropped connection loses nothing.
    """

    def __init__(self) -> None:
        self._streams: Dict[str, Set[asyncio.Queue]] = defaultdict(set)

    async def publish(self, session: str, message: Dict[str, Any]) -> int:
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections (server shutdown)."""

    async def _backlog(self, session: str, after: int) -> List[Event]:
        raise NotImplementedError

    async def _ready(self) -> None:
        """Wait until events published from now on reach ``_deliver``."""

    def _deliver(self, session: str, event: Optional[Event]) -> None:
        for queue in self._streams.get(session, ()):
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self, session: str, after: int) -> AsyncIterator["asyncio.Queue[Optional[Event]]"]:
        """A queue of the conversation's events with an id above ``after``, oldest first.

        ``None`` in the queue means the bus lost its source: end the stream so the browser
        reconnects and catches up from the backlog.
        """
        queue: "asyncio.Queue[Optional[Event]]" = asyncio.Queue()
        self._streams[session].add(queue)
        try:
            await self._ready()
            missed = await self._backlog(session, after)
            live: List[Optional[Event]] = []
            while not queue.empty():
                live.append(queue.get_nowait())
            # Live events may have come in while the backlog was read: merge, in id order, once.
            merged = {event[0]: event for event in missed + [e for e in live if e is not None]}
            for event_id in sorted(merged):
                queue.put_nowait(merged[event_id])
            if None in live:
                queue.put_nowait(None)
            yield queue
        finally:
            streams = self._streams.get(session)
            if streams is not None:
                streams.discard(queue)
                if not streams:
                    del self._streams[session]


class InProcessBus(PushBus):
    """The bus for a single process without Redis (embedded default)."""

    def __init__(self) -> None:
        super().__init__()
        self._sequence: Dict[str, int] = defaultdict(int)
        # session -> (time of last push, events); oldest first, so expiry pops from the front.
        self._backlogs: "OrderedDict[str, Tuple[float, Deque[Event]]]" = OrderedDict()

    async def publish(self, session: str, message: Dict[str, Any]) -> int:
        now = time.monotonic()
        _expire(self._backlogs, now - BACKLOG_SECONDS, key=lambda entry: entry[0])
        self._sequence[session] += 1
        event = (self._sequence[session], message)
        _, events = self._backlogs.pop(session, (now, deque(maxlen=BACKLOG_SIZE)))
        events.append(event)
        self._backlogs[session] = (now, events)
        self._deliver(session, event)
        return event[0]

    async def _backlog(self, session: str, after: int) -> List[Event]:
        _, events = self._backlogs.get(session, (0.0, ()))
        return [event for event in events if event[0] > after]


def _expire(entries: "OrderedDict[str, Any]", before: float, key: Callable[[Any], float]) -> None:
    while entries:
        oldest = next(iter(entries))
        if key(entries[oldest]) >= before:
            return
        del entries[oldest]


# Atomic, so that concurrent publishers (Rasa and the handoff console) never interleave ids.
_PUBLISH_SCRIPT = """
local id = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local event = '{"id":' .. id .. ',"message":' .. ARGV[1] .. '}'
redis.call('RPUSH', KEYS[2], event)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', KEYS[3], event)
return id
"""
_KEY_PREFIX = "gentinfo:webchat:"
_CHANNEL_PATTERN = _KEY_PREFIX + "push:*"


class RedisBus(PushBus):
    """The bus across processes: Redis pub/sub plus a short backlog list per conversation.

    A process keeps ONE pattern subscription and fans out to its own streams, so open browser
    streams do not each hold a Redis connection.
    """

    def __init__(self, url: str) -> None:
        super().__init__()
        self._redis = redis_clients.async_client(url)
        # Pub/sub waits for hours: its own client, without the command timeout.
        self._subscriber = redis_clients.async_client(url, subscriber=True)
        self._publish = self._redis.register_script(_PUBLISH_SCRIPT)
        self._listener: Optional[asyncio.Task] = None
        self._listening = asyncio.Event()

    async def publish(self, session: str, message: Dict[str, Any]) -> int:
        try:
            return int(
                await self._publish(
                    keys=[
                        f"{_KEY_PREFIX}{{{session}}}:seq",
                        f"{_KEY_PREFIX}{{{session}}}:backlog",
                        f"{_KEY_PREFIX}push:{session}",
                    ],
                    args=[json.dumps(message), BACKLOG_SIZE, BACKLOG_SECONDS],
                )
            )
        except (RedisError, OSError) as error:
            raise BusUnavailable(str(error)) from error

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await self._redis.close(close_connection_pool=True)
        await self._subscriber.close(close_connection_pool=True)

    async def _backlog(self, session: str, after: int) -> List[Event]:
        try:
            raw = await self._redis.lrange(f"{_KEY_PREFIX}{{{session}}}:backlog", 0, -1)
        except (RedisError, OSError) as error:
            raise BusUnavailable(str(error)) from error
        events = [_decode_event(item) for item in raw]
        return [event for event in events if event[0] > after]

    async def _ready(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.ensure_future(self._listen())
        try:
            await asyncio.wait_for(self._listening.wait(), SUBSCRIBE_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            raise BusUnavailable("no Redis subscription") from None

    async def _listen(self) -> None:
        """Receive all web pushes; on a Redis failure end the local streams and resubscribe."""
        delay = 0.5
        while True:
            pubsub = self._subscriber.pubsub()
            try:
                await pubsub.psubscribe(_CHANNEL_PATTERN)
                async for item in pubsub.listen():
                    if item["type"] == "psubscribe":
                        # Confirmed by Redis: from here on no publish can slip past us.
                        self._listening.set()
                        delay = 0.5
                    elif item["type"] == "pmessage":
                        session = item["channel"].decode().rsplit(":", 1)[1]
                        self._deliver(session, _decode_event(item["data"]))
            except (RedisError, OSError) as error:
                logger.warning("webchat.push.redis_lost", extra={"error": str(error)})
            finally:
                self._listening.clear()
                await pubsub.reset()
            for session in list(self._streams):
                self._deliver(session, None)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def _decode_event(raw: bytes) -> Event:
    event = json.loads(raw)
    return int(event["id"]), event["message"]


def _build(url: Optional[str]) -> PushBus:
    return RedisBus(url) if url else InProcessBus()


#: The bus of this event loop: Redis when ``REDIS_URL`` is set, in-process otherwise.
default_bus: wiring.Shared[PushBus] = wiring.Shared(_build, "REDIS_URL", per_loop=True)


async def close_buses() -> None:
    """Close the buses of the running loop (server shutdown, tests)."""
    for bus in default_bus.take_built():
        await bus.close()
