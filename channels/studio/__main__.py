"""Run the content studio (docs/studio.md).

    python -m channels.studio            # serve on GENTINFO_STUDIO_HOST:GENTINFO_STUDIO_PORT (127.0.0.1:5058)
    python -m channels.studio purge      # delete expired unanswered questions and rolled-up raw insight events

Accounts (``python -m channels.console hash-password``) and sessions are the agent console's.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from typing import List, Optional

HOST_ENV = "GENTINFO_STUDIO_HOST"
PORT_ENV = "GENTINFO_STUDIO_PORT"
SECURE_ENV = "GENTINFO_STUDIO_COOKIE_SECURE"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5058


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


def purge() -> int:
    from bot.core import db, insights, unanswered

    engine = db.make_engine()
    db.create_schema(engine)
    questions = unanswered.purge(engine)
    insights.rollup(engine)
    events = insights.purge(engine)
    print(f"purged {questions} unanswered questions and {events} raw insight events")
    return 0


def serve() -> int:
    from aiohttp import web

    from bot.core import db
    from bot.core.handoff import HandoffStore
    from channels.console.auth import USERS_ENV, load_users
    from channels.console.auth import ConfigError as UsersError
    from channels.studio.app import make_app
    from channels.studio.roles import ROLES_ENV, ConfigError, load_roles

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url = os.environ.get("REDIS_URL", "")
    if not url:
        print("studio: REDIS_URL is not set; sessions live in Redis, as for the console (docs/studio.md)", file=sys.stderr)
        return 2
    try:
        users = load_users(os.environ.get(USERS_ENV))
        roles = load_roles(os.environ.get(ROLES_ENV), users)
        port = _port(os.environ.get(PORT_ENV))
        secure = _secure(os.environ.get(SECURE_ENV))
    except (UsersError, ConfigError, ValueError) as error:
        print(f"studio: {error}", file=sys.stderr)
        return 2
    engine = db.make_engine()
    db.create_schema(engine)
    web.run_app(make_app(engine, HandoffStore(url), users, roles, secure_cookie=secure),
                host=os.environ.get(HOST_ENV) or DEFAULT_HOST, port=port, access_log=None)
    return 0


def main(argv: List[str]) -> int:
    if argv == ["purge"]:
        return purge()
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    return serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
