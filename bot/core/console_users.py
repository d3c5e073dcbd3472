"""The agent console's accounts configuration (``GENTINFO_CONSOLE_USERS``), read and checked.

Plain JSON and names: both the console (``channels/console/auth.py``) and the start-up check
(``bot/profile.py``) read it, so it lives below both, without the password hashing library.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, Optional

USERS_ENV = "GENTINFO_CONSOLE_USERS"
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class ConfigError(ValueError):
    """The accounts configuration is missing or broken."""


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
