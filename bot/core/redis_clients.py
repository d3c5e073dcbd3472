"""Every Redis client of the assistant is made here, with one decided set of timeouts.

- connect: 2 s. Redis is on the same network; longer means it is down, and every caller has a
  fallback (the gate lets the message through, dedupe handles it, buttons are not remembered).
- command: 3 s. The slowest command is a handoff Lua script (a few ms); 3 s leaves room for a
  busy Redis without letting a hung one hang a webhook (Twilio gives up after 15 s).
- subscribers (pub/sub listeners) have no command timeout: they wait for messages for hours;
  a health check every 30 s finds a dead connection instead.

Rasa's own tracker and lock stores are configured in ``bot/stores.py`` (Rasa makes those clients).
"""
from __future__ import annotations

from typing import Any

import redis
import redis.asyncio

CONNECT_TIMEOUT_SECONDS = 2.0
COMMAND_TIMEOUT_SECONDS = 3.0
HEALTH_CHECK_SECONDS = 30


def _options(subscriber: bool, **extra: Any) -> dict:
    options: dict = {"socket_connect_timeout": CONNECT_TIMEOUT_SECONDS, "health_check_interval": HEALTH_CHECK_SECONDS}
    if not subscriber:
        options["socket_timeout"] = COMMAND_TIMEOUT_SECONDS
    options.update(extra)
    return options


def async_client(url: str, *, decode_responses: bool = False, subscriber: bool = False) -> "redis.asyncio.Redis":
    """An asyncio client (bound to the loop it is first used on: keep one per loop)."""
    return redis.asyncio.Redis.from_url(url, **_options(subscriber, decode_responses=decode_responses))


def sync_client(url: str, *, decode_responses: bool = False) -> "redis.Redis":
    """A blocking client, for scripts and checks outside an event loop."""
    return redis.Redis.from_url(url, **_options(False, decode_responses=decode_responses))
