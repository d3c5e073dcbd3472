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
import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.core.handoff import HandoffStore

USERS_ENV = "GENTINFO_CONSOLE_USERS"
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
#: Sessions end after this long without a request, and in any case after ``MAX_SECONDS``.
IDLE_SECONDS = 8 * 3600
MAX_SECONDS = 12 * 3600
#: Failed logins per user name before the name is locked for ``LOCK_SECONDS``.
MAX_FAILURES = 10
LOCK_SECONDS = 15 * 60

_hasher = PasswordHasher()


class ConfigError(ValueError):
    """The accounts configuration is missing or broken."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def load_users(value: Optional[str]) -> Dict[str, str]:
    """``{"an": "$argon2id$…"}`` from JSON text or from a JSON file path."""
    raw = (value or "").strip()
    if not raw:
        raise ConfigError(f"{USERS_ENV} is not set: no agent can log in")
    if not raw.startswith("{"):
        try:
            raw = Path(raw).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"{USERS_ENV}: cannot read {raw!r}: {error.strerror}") from None
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise ConfigError(f"{USERS_ENV} is not valid JSON: {error}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{USERS_ENV} must be a JSON object of user name -> argon2 hash")
    users: Dict[str, str] = {}
    for name, hashed in data.items():
        if not isinstance(name, str) or not USERNAME.match(name):
            raise ConfigError(f"{USERS_ENV}: user name {name!r} must be lower case letters, digits, '.', '_' or '-'")
        if not isinstance(hashed, str) or not hashed.startswith("$argon2"):
            raise ConfigError(f"{USERS_ENV}: the password of {name!r} is not an argon2 hash "
                              "(make one with: python -m channels.console hash-password)")
        users[name] = hashed
    return users


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

        if password and await asyncio.to_thread(check):
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
