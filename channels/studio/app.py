"""The content studio: an aiohttp app with the agent console's accounts, sessions and CSRF tokens.

Accounts are the console's (``GENTINFO_CONSOLE_USERS``, argon2, checked by
``channels.console.auth.Accounts``; sessions in the same Redis). ``GENTINFO_STUDIO_ROLES`` gives each
user a role; users without one are ``agent``:

| role   | may                                                                              |
|--------|----------------------------------------------------------------------------------|
| agent  | read content, versions, diffs, unanswered questions, insights (+ CSV); preview  |
| editor | + edit drafts, publish, turn unanswered questions into synonyms or new topics    |
| admin  | + roll back to an older version, dismiss unanswered questions                    |

Every route except ``/login`` and the stylesheet needs a session (pages 302 → /login, the rest 401);
every state-changing request needs the session's CSRF token; a role too low answers 403. The page
loads only its own script and stylesheet (CSP without inline code) and puts every text in the page
with ``textContent``.
"""
from __future__ import annotations

import html
import logging
import re
import secrets
import string
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Dict

from aiohttp import web
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.core.content_store import ContentError, ContentStore
from bot.core.handoff import HandoffStore
from channels.console.auth import Accounts, Session, same
from channels.studio import api
from channels.studio.forms import FormError
from channels.studio.roles import SETTINGS, role_of

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
ACCOUNTS = web.AppKey("accounts", Accounts)
HANDOFF = web.AppKey("handoff", HandoffStore)

PUBLIC_PATHS = frozenset({"/login", "/static/studio.css", "/static/favicon.svg"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LOGIN_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _page(name: str, **values: str) -> str:
    template = string.Template((HERE / "pages" / name).read_text(encoding="utf-8"))
    return template.substitute({key: html.escape(value, quote=True) for key, value in values.items()})


def error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "message": message, **extra}, status=status)


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    settings = request.app[SETTINGS]
    session = await request.app[ACCOUNTS].session(request.cookies.get(settings["cookie"]))
    if session is None:
        if request.method in SAFE_METHODS and not request.path.startswith(("/api/", "/static/")):
            raise web.HTTPFound("/login")
        return error(401, "login_required", "Meld u eerst aan.")
    if request.method not in SAFE_METHODS:
        token = request.headers.get("X-CSRF-Token", "")
        if not token and request.content_type == "application/x-www-form-urlencoded":
            token = str((await request.post()).get("csrf", ""))
        if not same(token, session.csrf):
            return error(403, "csrf", "Ongeldig of ontbrekend CSRF-token. Herlaad de pagina.")
    request["session"] = session
    return await handler(request)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ContentError as problem:
        return error(400, "invalid", str(problem), problems=[p.as_dict() for p in problem.problems])
    except FormError as problem:
        return error(400, "bad_form", str(problem))
    except SQLAlchemyError as problem:
        logger.error("studio: database error: %s", type(problem).__name__)
        return error(503, "database", "De databank is even niet bereikbaar. Probeer het zo opnieuw.")


def _secure_headers(response: web.StreamResponse) -> None:
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer, redirects and errors included (raised ones are responses too)."""
    try:
        response = await handler(request)
    except web.HTTPException as raised:
        _secure_headers(raised)
        raise
    _secure_headers(response)
    return response


def _set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Strict",
                        secure=request.app[SETTINGS]["secure"])


async def login_form(request: web.Request, message: str = "", status: int = 200) -> web.Response:
    settings = request.app[SETTINGS]
    if request.method == "GET" and await request.app[ACCOUNTS].session(request.cookies.get(settings["cookie"])):
        raise web.HTTPFound("/")
    current = request.cookies.get(settings["login_cookie"], "")
    token = current if request.method == "GET" and _LOGIN_TOKEN.match(current) else secrets.token_urlsafe(32)
    response = web.Response(text=_page("login.html", csrf=token, message=message), content_type="text/html",
                            status=status)
    _set_cookie(response, request, settings["login_cookie"], token, 3600)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    form = await request.post()
    if not same(str(form.get("csrf", "")), request.cookies.get(settings["login_cookie"], "")):
        return await login_form(request, "Uw aanmeldformulier was verlopen. Probeer opnieuw.", status=403)
    user, locked = await request.app[ACCOUNTS].verify(str(form.get("username", ""))[:64],
                                                       str(form.get("password", ""))[:1024])
    if locked:
        return await login_form(request, "Te veel mislukte pogingen. Probeer het over een kwartier opnieuw.", status=429)
    if user is None:
        logger.info("studio: failed login")
        return await login_form(request, "Onbekende gebruikersnaam of fout wachtwoord.", status=401)
    token, _ = await request.app[ACCOUNTS].create_session(user)
    logger.info("studio: %s logged in", user)
    response = web.HTTPSeeOther("/")
    _set_cookie(response, request, settings["cookie"], token, 12 * 3600)
    _set_cookie(response, request, settings["login_cookie"], "", 0)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    session: Session = request["session"]
    await request.app[ACCOUNTS].end_session(session)
    response = web.HTTPSeeOther("/login")
    _set_cookie(response, request, request.app[SETTINGS]["cookie"], "", 0)
    raise response


async def index(request: web.Request) -> web.Response:
    session: Session = request["session"]
    return web.Response(text=_page("studio.html", csrf=session.csrf, user=session.user, role=role_of(request)),
                        content_type="text/html")


def _asset(name: str, content_type: str) -> Handler:
    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=(STATIC / name).read_bytes(), content_type=content_type, charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    return serve


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[HANDOFF].close()


def make_app(engine: Engine, redis_store: HandoffStore, users: Dict[str, str], roles: Dict[str, str], *,
             secure_cookie: bool = True) -> web.Application:
    """The studio on ``engine`` (content, unanswered questions, insights); sessions in ``redis_store``'s Redis."""
    app = web.Application(middlewares=[_headers, _errors, _authenticate], client_max_size=1024 * 1024)
    prefix = "__Host-" if secure_cookie else ""
    app[ACCOUNTS] = Accounts(users, redis_store)
    app[HANDOFF] = redis_store
    app[SETTINGS] = {"secure": secure_cookie, "roles": roles, "cookie": f"{prefix}gentinfo_studio",
                     "login_cookie": f"{prefix}gentinfo_studio_login"}
    app[api.STORE] = ContentStore(engine)
    app.cleanup_ctx.append(_lifetime)
    router = app.router
    router.add_get("/login", login_form)
    router.add_post("/login", login)
    router.add_post("/logout", logout)
    router.add_get("/", index)
    router.add_get("/static/studio.css", _asset("studio.css", "text/css"))
    router.add_get("/static/studio.js", _asset("studio.js", "application/javascript"))
    router.add_get("/static/favicon.svg", _asset("favicon.svg", "image/svg+xml"))
    api.add_routes(router)
    return app
