"""The agent console: an aiohttp app with login, a JSON API and a WebSocket for live updates.

Every route needs a session except ``/login`` and the login page's stylesheet; without one, pages
redirect to ``/login`` (302) and everything else answers 401. Every state-changing request needs the
session's CSRF token (``X-CSRF-Token`` header, or the ``csrf`` form field of the logout form).
Agents' replies go to the citizen's own channel through ``connectors.outbound``.
"""
from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import re
import secrets
import string
import time
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Optional, Set, cast
from urllib.parse import urlsplit

import redis
from aiohttp import WSMsgType, web

from bot.core import handoff
from bot.core.clock import CITY_TZ
from bot.core.conversation import mask, try_parse
from bot.core.handoff import HandoffError, HandoffStore
from bot.core.texts import say
from channels.console.auth import Accounts, Session, same
from connectors import outbound

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"

STORE = web.AppKey("store", HandoffStore)
ACCOUNTS = web.AppKey("accounts", Accounts)
SETTINGS = web.AppKey("settings", dict)
SOCKETS: "web.AppKey[Set[web.WebSocketResponse]]" = web.AppKey("sockets")

#: Paths anyone may read: the login form, its stylesheet and icon.
PUBLIC_PATHS = frozenset({"/login", "/static/console.css", "/static/favicon.svg"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LOGIN_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")

#: What the citizen reads when an agent acts (texts.yml keys; the citizen's channel picks the variant).
CLAIMED = "channels.agent_claimed"
BACK_WITH_ASSISTANT = "channels.agent_handed_back"
CLOSED = "channels.agent_closed"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Sender = Callable[[str, Dict[str, Any]], Awaitable[None]]
SEND: "web.AppKey[Sender]" = web.AppKey("send")


def _page(name: str, **values: str) -> str:
    template = string.Template((HERE / "pages" / name).read_text(encoding="utf-8"))
    return template.substitute({key: html.escape(value, quote=True) for key, value in values.items()})


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def _cookie_names(secure: bool) -> Dict[str, str]:
    # The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only and Path=/.
    prefix = "__Host-" if secure else ""
    return {"session": f"{prefix}gentinfo_console", "login": f"{prefix}gentinfo_console_login"}


# --- middleware ---------------------------------------------------------------------------------


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    settings = request.app[SETTINGS]
    session = await request.app[ACCOUNTS].session(request.cookies.get(settings["cookies"]["session"]))
    if session is None:
        if request.method in SAFE_METHODS and not request.path.startswith("/api/") and request.path != "/static/console.js":
            raise web.HTTPFound("/login")
        return _error(401, "login_required", "Meld u eerst aan.")
    if request.method not in SAFE_METHODS:
        token = request.headers.get("X-CSRF-Token", "")
        if not token and request.content_type == "application/x-www-form-urlencoded":
            token = str((await request.post()).get("csrf", ""))
        if not same(token, session.csrf):
            return _error(403, "csrf", "Ongeldig of ontbrekend CSRF-token. Herlaad de pagina.")
    request["session"] = session
    return await handler(request)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HandoffError as error:
        status = {"not_found": 404, "taken": 409, "not_holder": 409, "gone": 409}.get(error.code, 400)
        return web.json_response({"error": error.code, "message": error.message, "holder": error.holder},
                                 status=status)
    except redis.RedisError as error:
        logger.error("console: Redis error: %s", error)
        return _error(503, "redis", "De wachtrij is even niet bereikbaar. Probeer het zo opnieuw.")


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


# --- login / logout ----------------------------------------------------------------------------


def _set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Strict",
                        secure=request.app[SETTINGS]["secure"])


async def login_form(request: web.Request, message: str = "", status: int = 200) -> web.Response:
    settings = request.app[SETTINGS]
    session = await request.app[ACCOUNTS].session(request.cookies.get(settings["cookies"]["session"]))
    if session is not None and request.method == "GET":
        raise web.HTTPFound("/")
    # Keep the token of this browser's login cookie: a second tab, or the browser's own favicon
    # request (redirected here), must not invalidate the form already on screen.
    current = request.cookies.get(settings["cookies"]["login"], "")
    token = current if request.method == "GET" and _LOGIN_TOKEN.match(current) else secrets.token_urlsafe(32)
    response = web.Response(text=_page("login.html", csrf=token, message=message), content_type="text/html",
                            status=status)
    _set_cookie(response, request, settings["cookies"]["login"], token, 3600)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    form = await request.post()
    if not same(str(form.get("csrf", "")), request.cookies.get(settings["cookies"]["login"], "")):
        return await login_form(request, "Uw aanmeldformulier was verlopen. Probeer opnieuw.", status=403)
    user, locked = await request.app[ACCOUNTS].verify(str(form.get("username", ""))[:64],
                                                       str(form.get("password", ""))[:1024])
    if locked:
        logger.warning("console: login refused, too many failures")
        return await login_form(request, "Te veel mislukte pogingen. Probeer het over een kwartier opnieuw.", status=429)
    if user is None:
        logger.info("console: failed login")
        return await login_form(request, "Onbekende gebruikersnaam of fout wachtwoord.", status=401)
    token, _ = await request.app[ACCOUNTS].create_session(user)
    logger.info("console: %s logged in", user)
    response = web.HTTPSeeOther("/")
    _set_cookie(response, request, settings["cookies"]["session"], token, 12 * 3600)
    _set_cookie(response, request, settings["cookies"]["login"], "", 0)  # delete (same flags, or __Host- refuses)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    session: Session = request["session"]
    await request.app[ACCOUNTS].end_session(session)
    logger.info("console: %s logged out", session.user)
    response = web.HTTPSeeOther("/login")
    _set_cookie(response, request, request.app[SETTINGS]["cookies"]["session"], "", 0)
    raise response


# --- pages and assets --------------------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    session: Session = request["session"]
    return web.Response(text=_page("console.html", csrf=session.csrf, user=session.user), content_type="text/html")


def _asset(name: str, content_type: str) -> Handler:
    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=(STATIC / name).read_bytes(), content_type=content_type, charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    return serve


# --- JSON API ----------------------------------------------------------------------------------


def _id(request: web.Request) -> str:
    handoff_id = request.match_info["id"]
    if not handoff.valid_id(handoff_id):
        raise HandoffError("not_found", "Dit gesprek bestaat niet.")
    return handoff_id


async def _json_body(request: web.Request) -> Dict[str, Any]:
    if request.content_type != "application/json":
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"error": "bad_json", "message": "Geen geldige JSON."}),
                                 content_type="application/json") from None
    return body if isinstance(body, dict) else {}


async def _item(store: HandoffStore, entry: handoff.Handoff) -> Dict[str, Any]:
    data = entry.as_dict()
    data["position"] = await store.position(entry.id) if entry.status == "waiting" else None
    data["recent"] = [e for e in await store.recent(entry.id, 6) if e["type"] in ("citizen", "agent")][-3:]
    return data


async def get_queue(request: web.Request) -> web.Response:
    store = request.app[STORE]
    now = time.time()
    moment = datetime.fromtimestamp(now, CITY_TZ)
    return web.json_response({
        "waiting": [await _item(store, entry) for entry in await store.waiting()],
        "held": [await _item(store, entry) for entry in await store.held()],
        "availability": await store.availability(),
        "open_now": await store.agents_available(moment),
        "hours": store.config.hours_text(),
        "now": now,
        "me": request["session"].user,
    })


async def get_conversation(request: web.Request) -> web.Response:
    store = request.app[STORE]
    entry = await store.get(_id(request))
    if entry is None:
        raise HandoffError("not_found", "Dit gesprek bestaat niet (meer).")
    return web.json_response({"handoff": await _item(store, entry), "transcript": await store.transcript(entry.id)})


async def get_transcript(request: web.Request) -> web.Response:
    store = request.app[STORE]
    handoff_id = _id(request)
    after = request.query.get("after", "-")
    if after != "-" and not all(part.isdigit() for part in after.split("-", 1)):
        return _error(400, "bad_after", "after is een stream-id")
    return web.json_response({"transcript": await store.transcript(handoff_id, after=after)})


async def _send(request: web.Request, conversation: str, text: str) -> Optional[str]:
    """Send to the citizen; the error text when it could not be sent."""
    try:
        await request.app[SEND](conversation, {"text": text})
    except outbound.UnknownChannel as error:
        return str(error)
    except Exception as error:  # any channel failure is reported to the agent
        logger.exception("console: sending to %s failed", mask(conversation))
        return type(error).__name__
    return None


async def claim(request: web.Request) -> web.Response:
    store = request.app[STORE]
    entry = await store.claim(_id(request), request["session"].user)
    problem = await _send(request, entry.conversation, _citizen_text(CLAIMED, entry.conversation))
    if problem:
        await store.system_note(entry.id, f"Melding aan de burger niet verstuurd: {problem}")
    return web.json_response({"handoff": await _item(store, entry)})


async def reply(request: web.Request) -> web.Response:
    store = request.app[STORE]
    handoff_id = _id(request)
    body = await _json_body(request)
    entry = await store.get(handoff_id)
    if entry is None:
        raise HandoffError("not_found", "Dit gesprek bestaat niet (meer).")
    message = await store.agent_message(handoff_id, request["session"].user, str(body.get("text") or ""))
    problem = await _send(request, entry.conversation, message["text"])
    if problem:
        await store.system_note(handoff_id, f"Dit antwoord is niet afgeleverd: {problem}")
        return web.json_response({"error": "not_delivered", "message": f"Niet afgeleverd: {problem}",
                                  "entry": message}, status=502)
    return web.json_response({"entry": message})


async def note(request: web.Request) -> web.Response:
    body = await _json_body(request)
    entry = await request.app[STORE].note(_id(request), request["session"].user, str(body.get("text") or ""))
    return web.json_response({"entry": entry})


def _citizen_text(key: str, conversation: str) -> str:
    parsed = try_parse(conversation)
    return say(key, parsed.text_channel if parsed else None)


def _finish(outcome: str, citizen_text: str) -> Handler:
    async def finish(request: web.Request) -> web.Response:
        store = request.app[STORE]
        entry = await store.finish(_id(request), request["session"].user, outcome)
        problem = await _send(request, entry.conversation, _citizen_text(citizen_text, entry.conversation))
        if problem:
            logger.warning("console: %s notice not sent: %s", outcome, problem)
        return web.json_response({"handoff": entry.as_dict(), "delivered": problem is None})

    return finish


async def set_availability(request: web.Request) -> web.Response:
    body = await _json_body(request)
    value = str(body.get("value") or "")
    if value not in ("auto", "open", "closed"):
        return _error(400, "bad_value", "Kies auto, open of closed.")
    await request.app[STORE].set_availability(value)
    logger.info("console: %s set live chat to %s", request["session"].user, value)
    return web.json_response({"availability": value})


# --- live updates ------------------------------------------------------------------------------


async def websocket(request: web.Request) -> web.WebSocketResponse:
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text="cross-origin WebSocket refused")
    socket = web.WebSocketResponse(heartbeat=30)
    await socket.prepare(request)
    sockets: Set[web.WebSocketResponse] = request.app[SOCKETS]
    sockets.add(socket)
    try:
        await socket.send_json({"type": "hello", "user": request["session"].user})
        async for message in socket:
            if message.type == WSMsgType.TEXT and message.data == "ping":
                await socket.send_str("pong")
            elif message.type == WSMsgType.ERROR:
                break
    finally:
        sockets.discard(socket)
    return socket


def _relay(app: web.Application) -> AsyncIterator[None]:
    """Forward every handoff event from Redis (any process) to this process's WebSockets."""

    sockets: Set[web.WebSocketResponse] = app[SOCKETS]

    async def relay() -> None:
        delay = 0.5
        while True:
            try:
                async for event in app[STORE].events():
                    delay = 0.5
                    for socket in list(sockets):
                        if not socket.closed:
                            with contextlib.suppress(ConnectionError, RuntimeError):
                                await socket.send_json(event)
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as error:
                # Once subscribed again, the first event ("resync") makes the pages reload what they missed.
                logger.warning("console: live updates interrupted (%s), reconnecting", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(relay())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for socket in list(sockets):
            await socket.close(code=1001, message=b"server shutdown")
        await app[STORE].close()

    return context(app)


# --- the app -----------------------------------------------------------------------------------


def make_app(store: HandoffStore, users: Dict[str, str], *, secure_cookie: bool = True,
             send: Sender = outbound.send) -> web.Application:
    """The console. ``send`` delivers to a conversation id (``connectors.outbound.send``)."""
    app = web.Application(middlewares=[_errors, _authenticate], client_max_size=64 * 1024)
    app[STORE] = store
    app[ACCOUNTS] = Accounts(users, store)
    app[SETTINGS] = {"secure": secure_cookie, "cookies": _cookie_names(secure_cookie)}
    app[SOCKETS] = set()
    app[SEND] = send
    # aiosignal 1.4's Signal type does not fit aiohttp 3.9's annotation of on_response_prepare.
    app.on_response_prepare.append(cast(Any, _headers))
    app.cleanup_ctx.append(_relay)
    router = app.router
    router.add_get("/login", login_form)
    router.add_post("/login", login)
    router.add_post("/logout", logout)
    router.add_get("/", index)
    router.add_get("/static/console.css", _asset("console.css", "text/css"))
    router.add_get("/static/console.js", _asset("console.js", "application/javascript"))
    router.add_get("/static/favicon.svg", _asset("favicon.svg", "image/svg+xml"))
    router.add_get("/api/queue", get_queue)
    router.add_get("/api/conversations/{id}", get_conversation)
    router.add_get("/api/conversations/{id}/transcript", get_transcript)
    router.add_post("/api/conversations/{id}/claim", claim)
    router.add_post("/api/conversations/{id}/reply", reply)
    router.add_post("/api/conversations/{id}/note", note)
    router.add_post("/api/conversations/{id}/handback", _finish("handback", BACK_WITH_ASSISTANT))
    router.add_post("/api/conversations/{id}/close", _finish("closed", CLOSED))
    router.add_post("/api/availability", set_availability)
    router.add_get("/api/ws", websocket)
    return app
