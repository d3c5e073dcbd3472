"""Roles in the studio: who may read, edit and publish, and roll back (see app.py's table)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional

from aiohttp import web

ROLES_ENV = "GENTINFO_STUDIO_ROLES"
ROLES = ("agent", "editor", "admin")
RANK = {role: rank for rank, role in enumerate(ROLES)}
SETTINGS = web.AppKey("settings", dict)


class ConfigError(ValueError):
    """``GENTINFO_STUDIO_ROLES`` is broken."""


def load_roles(value: Optional[str], users: Dict[str, str]) -> Dict[str, str]:
    """``{"an": "editor", "sofie": "admin"}`` from JSON text or a JSON file path; others are agents."""
    raw = (value or "").strip()
    if not raw:
        return {}
    if not raw.startswith("{"):
        try:
            raw = Path(raw).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"{ROLES_ENV}: cannot read {raw!r}: {error.strerror}") from None
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise ConfigError(f"{ROLES_ENV} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{ROLES_ENV} must be a JSON object of user name -> role")
    for name, role in data.items():
        if role not in ROLES:
            raise ConfigError(f"{ROLES_ENV}: role of {name!r} must be one of {', '.join(ROLES)}")
        if name not in users:
            raise ConfigError(f"{ROLES_ENV}: {name!r} has no account in GENTINFO_CONSOLE_USERS")
    return dict(data)


def role_of(request: web.Request) -> str:
    return str(request.app[SETTINGS]["roles"].get(request["session"].user, "agent"))


def require(request: web.Request, role: str) -> None:
    """403 unless the user's role is at least ``role``."""
    if RANK[role_of(request)] < RANK[role]:
        raise web.HTTPForbidden(text=json.dumps({"error": "role", "message": _ROLE_TEXT[role]}),
                                content_type="application/json")


_ROLE_TEXT = {
    "editor": "Alleen redacteurs en beheerders kunnen dit doen.",
    "admin": "Alleen beheerders kunnen dit doen.",
    "agent": "",
}
