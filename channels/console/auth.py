"""Agent accounts, sessions and CSRF tokens for the console.

Accounts come from configuration only: ``GENTINFO_CONSOLE_USERS`` holds JSON (or the path of a JSON
file) mapping a user name to an argon2 hash made with ``python -m channels.console hash-password``.
Sessions are random tokens in an HttpOnly, SameSite=Strict cookie; the session itself (user, CSRF
token) lives in Redis under the SHA-256 of the token, so every console process knows it, logout ends
it everywhere and a stolen Redis dump holds no usable cookie.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.core.console_users import USERNAME as USERNAME
from bot.core.console_users import USERS_ENV as USERS_ENV
from bot.core.console_users import ConfigError as ConfigError
from bot.core.console_users import load_users as load_users
from bot.core.handoff import HandoffStore

#: Sessions end after this long without a request, and in any case after ``MAX_SECONDS``.
IDLE_SECONDS = 8 * 3600
MAX_SECONDS = 12 * 3600
#: Failed logins per user name before the name is locked for ``LOCK_SECONDS``.
MAX_FAILURES = 10
LOCK_SECONDS = 15 * 60

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@dataclass(frozen=True)
class Session:
    key: str
    user: str
    csrf: str
    created: float


def same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


class Accounts:
    """Checks passwords (argon2, in a thread) and keeps sessions in Redis."""

    def __init__(self, users: Dict[str, str], store: HandoffStore) -> None:
        self._users = users
        self._store = store
        self._dummy = _hasher.hash(secrets.token_hex(16))  # unknown names cost as much as known ones

    def _key(self, *parts: str) -> str:
        return ":".join((self._store.prefix, *parts))

    @staticmethod
    def _digest(value: str) -> str:
        return hashlib.sha256(value.encode("utf-8")).hexdigest()

    async def verify(self, username: str, password: str) -> Tuple[Optional[str], bool]:
        """(user name, locked): the user name when the password is right, else None."""
        name = username.strip().lower()
        failures_key = self._key("login_failures", self._digest(name))
        redis = self._store.redis
        failures = int(await redis.get(failures_key) or 0)
        if failures >= MAX_FAILURES:
            return None, True
        hashed = self._users.get(name) if USERNAME.match(name) else None

        def check() -> bool:
            try:
                return _hasher.verify(hashed or self._dummy, password) and hashed is not None
            except (VerificationError, InvalidHashError):
                return False

        verified = await asyncio.to_thread(check) if password else False
        if verified:
            await redis.delete(failures_key)
            return name, False
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(failures_key)
            pipe.expire(failures_key, LOCK_SECONDS)
            await pipe.execute()
        return None, False

    async def create_session(self, user: str) -> Tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(self._digest(token), user, secrets.token_urlsafe(32), time.time())
        key = self._key("session", session.key)
        async with self._store.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"user": user, "csrf": session.csrf, "created": repr(session.created)})
            pipe.expire(key, IDLE_SECONDS)
            await pipe.execute()
        return token, session

    async def session(self, token: Optional[str]) -> Optional[Session]:
        if not token or len(token) > 128:
            return None
        digest = self._digest(token)
        key = self._key("session", digest)
        data = await self._store.redis.hgetall(key)
        if not data or data.get("user") not in self._users:  # removed accounts lose their sessions
            return None
        created = float(data.get("created") or 0)
        if time.time() - created > MAX_SECONDS:
            await self._store.redis.delete(key)
            return None
        await self._store.redis.expire(key, IDLE_SECONDS)
        return Session(digest, data["user"], data.get("csrf", ""), created)

    async def end_session(self, session: Session) -> None:
        await self._store.redis.delete(self._key("session", session.key))
