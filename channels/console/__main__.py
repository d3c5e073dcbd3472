"""Run the agent console, or make a password hash for ``GENTINFO_CONSOLE_USERS``.

    python -m channels.console                    # serve on GENTINFO_CONSOLE_HOST:GENTINFO_CONSOLE_PORT
    python -m channels.console hash-password [NAME]
"""
from __future__ import annotations

import getpass
import json
import logging
import os
import re
import sys
from typing import List, Optional

from aiohttp import web

HOST_ENV = "GENTINFO_CONSOLE_HOST"
PORT_ENV = "GENTINFO_CONSOLE_PORT"
SECURE_ENV = "GENTINFO_CONSOLE_COOKIE_SECURE"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5057
MIN_PASSWORD_CHARS = 12


def _port(raw: Optional[str]) -> int:
    if not raw:
        return DEFAULT_PORT
    if not re.fullmatch(r"[0-9]{1,5}", raw) or not 1 <= int(raw) <= 65535:
        raise ValueError(f"{PORT_ENV} must be a port number from 1 to 65535 (got {raw!r})")
    return int(raw)


def _secure(raw: Optional[str]) -> bool:
    value = (raw or "1").strip().lower()
    if value not in ("1", "0", "true", "false", "yes", "no"):
        raise ValueError(f"{SECURE_ENV} must be 1 or 0 (got {raw!r})")
    return value in ("1", "true", "yes")


def hash_password(argv: List[str]) -> int:
    from channels.console.auth import USERNAME
    from channels.console.auth import hash_password as make_hash

    name = argv[0].lower() if argv else None
    if name is not None and not USERNAME.match(name):
        print("user names are lower case letters, digits, '.', '_' or '-'", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        password = getpass.getpass("Wachtwoord: ")
        if getpass.getpass("Nog eens: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD_CHARS:
        print(f"use at least {MIN_PASSWORD_CHARS} characters", file=sys.stderr)
        return 1
    hashed = make_hash(password)
    print(json.dumps({name: hashed}) if name else hashed)
    return 0


def serve() -> int:
    from bot.core.handoff import HandoffStore, get_config
    from channels.console.app import make_app
    from channels.console.auth import USERS_ENV, ConfigError, load_users
    from connectors import outbound

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url = os.environ.get("REDIS_URL", "")
    if not url:
        print("console: REDIS_URL is not set; the handoff queue lives in Redis (docs/handoff.md)", file=sys.stderr)
        return 2
    try:
        users = load_users(os.environ.get(USERS_ENV))
        port = _port(os.environ.get(PORT_ENV))
        secure = _secure(os.environ.get(SECURE_ENV))
        get_config()
    except (ConfigError, ValueError) as error:
        print(f"console: {error}", file=sys.stderr)
        return 2
    if not secure:
        logging.getLogger(__name__).warning("%s=0: session cookies also travel over plain http", SECURE_ENV)
    outbound.load_channels()
    web.run_app(make_app(HandoffStore(url), users, secure_cookie=secure),
                host=os.environ.get(HOST_ENV) or DEFAULT_HOST, port=port, access_log=None)
    return 0


def main(argv: List[str]) -> int:
    if argv[:1] == ["hash-password"]:
        return hash_password(argv[1:])
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    return serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
