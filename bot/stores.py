"""Rasa's Redis tracker and lock stores, made safe for several Rasa servers and Redis restarts.

Configured by type in ``endpoints.production.yml`` (Rasa loads a store class by module path), so
the fixes live in subclasses instead of patches of Rasa's own classes:

- both stores reconnect and retry a command when Redis restarts, with socket timeouts;
- every change of a conversation lock is an optimistic transaction (WATCH/MULTI/EXEC): Rasa 3.6
  changes a lock with GET-then-SET, so with two Rasa servers concurrent messages of one
  conversation lose tickets and run at the same time (tests/test_ops.py, tests/test_faults.py);
- a message whose ticket expired while waiting behind a server that died mid-turn takes a new
  ticket instead of waiting forever (Rasa 3.6's ``LockStore.lock`` loops when no valid ticket
  is left).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Dict, Optional, Text, Tuple

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.core.tracker_store import RedisTrackerStore
from rasa.utils.endpoints import EndpointConfig
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError
from redis.retry import Retry

logger = logging.getLogger(__name__)

Change = Callable[[Optional[TicketLock]], Tuple[Optional[TicketLock], Any]]


def redis_retry_settings() -> Dict[str, Any]:
    """Connection settings for Rasa's Redis clients: reconnect and retry a command up to 3 times."""
    return {
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "socket_connect_timeout": 2.0,
        "health_check_interval": 30,
    }


def _resilient(client: Any) -> None:
    pool_kwargs = client.connection_pool.connection_kwargs
    pool_kwargs.update(redis_retry_settings())
    # Rasa's tracker store sets no socket timeout: a hung Redis would hang the server.
    if not pool_kwargs.get("socket_timeout"):
        pool_kwargs["socket_timeout"] = 5.0


class GentinfoRedisTrackerStore(RedisTrackerStore):
    """Rasa's Redis tracker store with reconnects and retries."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _resilient(self.red)


class GentinfoRedisLockStore(RedisLockStore):
    """Rasa's Redis lock store with atomic lock changes, retries and renewal of expired tickets."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        if endpoint_config is not None:  # how Rasa creates a lock store given by module path
            kwargs = {"host": endpoint_config.url or "localhost", **endpoint_config.kwargs, **kwargs}
        super().__init__(**kwargs)
        _resilient(self.red)

    def _change(self, conversation_id: Text, change: Change) -> Any:
        key = self.key_prefix + conversation_id
        with self.red.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    new, result = change(TicketLock.from_dict(json.loads(raw)) if raw else None)
                    pipe.multi()
                    if new is None:
                        pipe.delete(key)
                    else:
                        pipe.set(key, new.dumps())
                    pipe.execute()
                    return result
                except WatchError:
                    continue  # someone changed the lock meanwhile: read it again

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def change(lock: Optional[TicketLock]) -> Tuple[TicketLock, int]:
            lock = lock or TicketLock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        try:
            return self._change(conversation_id, change)
        except Exception as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        def change(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is None:
                return None, None
            lock.remove_ticket_for(ticket_number)
            lock.remove_expired_tickets()
            return (lock if lock.is_someone_waiting() else None), None

        self._change(conversation_id, change)

    def update_lock(self, conversation_id: Text) -> None:
        def change(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is not None:
                lock.remove_expired_tickets()
            return (lock if lock is not None and lock.is_someone_waiting() else None), None

        self._change(conversation_id, change)

    @asynccontextmanager
    async def lock(
        self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME, wait_time_in_seconds: float = 1
    ) -> AsyncIterator[TicketLock]:
        ticket = self.issue_ticket(conversation_id, lock_lifetime)
        try:
            lock, ticket = await self._acquire(conversation_id, ticket, lock_lifetime, wait_time_in_seconds)
            yield lock
        finally:
            self.cleanup(conversation_id, ticket)

    async def _acquire(
        self, conversation_id: Text, ticket: int, lifetime: float, wait_seconds: float
    ) -> Tuple[TicketLock, int]:
        """Wait for our turn; take a new ticket when ours expired (for two lifetimes at most)."""
        deadline = time.monotonic() + 2 * lifetime
        while True:
            lock = self.get_lock(conversation_id)
            if lock is not None and not lock.is_locked(ticket):
                return lock, ticket
            if lock is None or lock._ticket_for_ticket_number(ticket) is None:
                if time.monotonic() > deadline:
                    raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
                logger.warning("stores.lock.ticket_renewed: a message waited longer than its ticket "
                               "(a Rasa server probably died mid-turn)")
                ticket = self.issue_ticket(conversation_id, lifetime)
                continue
            await asyncio.sleep(wait_seconds)
            self.update_lock(conversation_id)
