"""HTTP API of the KAFKA-meldpunt for the city's staff: read, follow up and export suggestions.

It runs as its own small aiohttp process (``python -m channels.kafka_api``) next to Rasa, so staff
tools never talk to the bot. Every ``/api/`` route needs ``Authorization: Bearer <token>`` with the
token from ``GENTINFO_KAFKA_API_TOKEN``; without that variable the process refuses to start, so an
unprotected register is never served. Database calls run in worker threads to keep the event loop
free. Logs name references and statuses only, never suggestion text or contact details.
See ``docs/kafka.md``.
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import re
import sys
from datetime import date, datetime, timedelta
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, FrozenSet, List, Optional, Tuple, cast

from aiohttp import web

from bot.core import kafka
from bot.core.db import create_schema, make_engine
from bot.core.kafka import CITY_TZ, Filters, KafkaRegister

logger = logging.getLogger(__name__)

TOKEN_ENV = "GENTINFO_KAFKA_API_TOKEN"
HOST_ENV = "GENTINFO_KAFKA_API_HOST"
PORT_ENV = "GENTINFO_KAFKA_API_PORT"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5056
#: Shorter tokens are refused: the token is the only thing between the internet and personal data.
MIN_TOKEN_CHARS = 32
PURGE_INTERVAL = timedelta(days=1)
MAX_OFFSET = 10**9 - 1

REGISTER = web.AppKey("register", KafkaRegister)

_FILTER_PARAMS = frozenset({"from", "to", "product", "status"})
_PAGE_PARAMS = _FILTER_PARAMS | {"limit", "offset"}
_PRODUCT_ID = re.compile(r"^[a-z0-9_]{1,64}$")
_NUMBER = re.compile(r"^[0-9]{1,9}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An answer other than 2xx, always sent as ``{"error": code, "message": ...}``."""

    def __init__(self, status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _json(data: object, status: int = 200, headers: Optional[Dict[str, str]] = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=kafka.safe_json_dumps)


def _error_response(status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None) -> web.Response:
    return _json({"error": code, "message": message}, status=status, headers=headers)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes JSON; unexpected ones are logged without their (possibly personal) details."""
    try:
        return await handler(request)
    except ApiError as error:
        return _error_response(error.status, error.code, error.message, error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {k: v for k, v in error.headers.items() if k.lower() in ("allow", "www-authenticate")}
        return _error_response(error.status, error.reason.lower().replace(" ", "_"), error.reason, headers)
    except Exception as error:
        logger.error("unhandled %s on %s %s", type(error).__name__, request.method, request.path)
        logger.debug("unhandled error", exc_info=True)
        return _error_response(500, "internal_error", "internal error; see the server log")


def _bearer_auth(token: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    expected = token.encode("utf-8")

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(401, "unauthorized", "bearer token required", {"WWW-Authenticate": 'Bearer realm="kafka"'})
        # Bytes, because compare_digest refuses non-ASCII str; constant time against token guessing.
        if not hmac.compare_digest(given.strip().encode("utf-8"), expected):
            raise ApiError(
                401, "invalid_token", "bearer token not accepted",
                {"WWW-Authenticate": 'Bearer realm="kafka", error="invalid_token"'},
            )
        return await handler(request)

    return auth


async def _no_store(_request: web.Request, response: web.StreamResponse) -> None:
    """Answers hold personal data: no caching by browsers or proxies, no content sniffing."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"


# -- query parsing ---------------------------------------------------------------------------------
def _single(request: web.Request, allowed: FrozenSet[str]) -> Dict[str, str]:
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        raise ApiError(400, "bad_request", f"unknown query parameter(s): {', '.join(unknown)}")
    params: Dict[str, str] = {}
    for name in request.query:
        values = request.query.getall(name)
        if len(values) > 1:
            raise ApiError(400, "bad_request", f"query parameter {name!r} given more than once")
        params[name] = values[0]
    return params


def _date(params: Dict[str, str], name: str) -> Optional[date]:
    if not params.get(name):
        return None
    try:
        return date.fromisoformat(params[name])
    except ValueError:
        raise ApiError(400, "bad_request", f"{name!r} must be a date as YYYY-MM-DD") from None


def _int(params: Dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not _NUMBER.match(raw) or not low <= int(raw) <= high:
        raise ApiError(400, "bad_request", f"{name!r} must be a whole number from {low} to {high}")
    return int(raw)


def _filters(params: Dict[str, str]) -> Filters:
    product = params.get("product") or None
    if product is not None and not _PRODUCT_ID.match(product):
        raise ApiError(400, "bad_request", "'product' must be a catalogue id (a-z, 0-9, _) or 'anders'")
    try:
        status = params.get("status")
        return Filters(_date(params, "from"), _date(params, "to"), product, kafka.parse_status(status) if status else None)
    except kafka.KafkaError as error:
        raise ApiError(400, "bad_request", str(error)) from None


def _page(request: web.Request) -> Tuple[Filters, int, int]:
    params = _single(request, _PAGE_PARAMS)
    limit = _int(params, "limit", kafka.DEFAULT_PAGE_SIZE, 1, kafka.MAX_PAGE_SIZE)
    return _filters(params), limit, _int(params, "offset", 0, 0, MAX_OFFSET)


def _reference(request: web.Request) -> str:
    try:
        return kafka.parse_reference(request.match_info["reference"])
    except kafka.InvalidReference:
        raise ApiError(400, "bad_request", "reference must look like KAFKA-2026-000123") from None


# -- handlers --------------------------------------------------------------------------------------
async def healthz(request: web.Request) -> web.Response:
    try:
        await asyncio.to_thread(request.app[REGISTER].ping)
    except Exception as error:
        logger.warning("health check failed: %s", type(error).__name__)
        return _json({"status": "unavailable"}, status=503)
    return _json({"status": "ok"})


async def list_suggestions(request: web.Request) -> web.Response:
    filters, limit, offset = _page(request)
    register = request.app[REGISTER]
    items = await asyncio.to_thread(register.list, filters, limit=limit, offset=offset)
    total = await asyncio.to_thread(register.count, filters)
    records = [kafka.to_record(s, catalogue=register.catalogue) for s in items]
    return _json({"total": total, "limit": limit, "offset": offset, "items": records})


async def get_suggestion(request: web.Request) -> web.Response:
    _single(request, frozenset())
    reference = _reference(request)
    register = request.app[REGISTER]
    try:
        suggestion = await asyncio.to_thread(register.get, reference)
    except kafka.UnknownReference:
        raise ApiError(404, "not_found", f"no suggestion {reference}") from None
    return _json(kafka.to_record(suggestion, catalogue=register.catalogue, include_conversation=True))


async def patch_suggestion(request: web.Request) -> web.Response:
    _single(request, frozenset())
    reference = _reference(request)
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "bad_request", "body must be JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        raise ApiError(400, "bad_request", 'body must be an object like {"status": "in_behandeling", "note": "..."}')
    unknown = sorted(set(body) - {"status", "note"})
    if unknown:
        raise ApiError(400, "bad_request", f"unknown field(s): {', '.join(unknown)}")
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise ApiError(400, "bad_request", "'note' must be a string or null")
    register = request.app[REGISTER]
    try:
        suggestion = await asyncio.to_thread(register.update_status, reference, body["status"], note)
    except kafka.UnknownReference:
        raise ApiError(404, "not_found", f"no suggestion {reference}") from None
    except (kafka.UnknownStatus, kafka.InvalidSuggestion) as error:
        raise ApiError(400, "bad_request", str(error)) from None
    return _json(kafka.to_record(suggestion, catalogue=register.catalogue, include_conversation=True))


def _attachment(extension: str) -> Dict[str, str]:
    stamp = datetime.now(CITY_TZ).strftime("%Y%m%d-%H%M")
    return {"Content-Disposition": f'attachment; filename="kafka-{stamp}.{extension}"'}


async def _export(request: web.Request) -> Tuple[KafkaRegister, List[kafka.Suggestion]]:
    filters = _filters(_single(request, _FILTER_PARAMS))
    register = request.app[REGISTER]
    return register, await asyncio.to_thread(register.list, filters, limit=None)


async def export_csv(request: web.Request) -> web.Response:
    register, items = await _export(request)
    # The byte order mark makes Excel read the file as UTF-8 (accents, emoji).
    body = "\ufeff" + kafka.export_csv(items, catalogue=register.catalogue)
    return web.Response(text=body, content_type="text/csv", charset="utf-8", headers=_attachment("csv"))


async def export_json(request: web.Request) -> web.Response:
    register, items = await _export(request)
    body = kafka.export_json(items, catalogue=register.catalogue)
    return web.Response(text=body, content_type="application/json", charset="utf-8", headers=_attachment("json"))


# -- application -----------------------------------------------------------------------------------
def _daily_purge(retention_days: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """Purge once before serving (start-up fails loudly on a broken database), then every day."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        register = app[REGISTER]
        await asyncio.to_thread(register.purge_contact_details, retention_days)

        async def loop() -> None:
            while True:
                await asyncio.sleep(PURGE_INTERVAL.total_seconds())
                try:
                    await asyncio.to_thread(register.purge_contact_details, retention_days)
                except Exception as error:
                    logger.error("retention purge failed: %s", type(error).__name__)

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


def make_app(register: KafkaRegister, token: str, *, retention_days: Optional[int] = None) -> web.Application:
    """The staff API; with ``retention_days`` it also runs the contact-details purge (start-up, daily)."""
    if len(token.strip()) < MIN_TOKEN_CHARS:
        raise ValueError(
            f"{TOKEN_ENV} must be at least {MIN_TOKEN_CHARS} characters; "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    app = web.Application(middlewares=[_errors, _bearer_auth(token.strip())])
    app[REGISTER] = register
    # aiosignal 1.4's Signal type does not fit aiohttp 3.9's annotation of on_response_prepare.
    app.on_response_prepare.append(cast(Any, _no_store))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/kafka/suggestions", list_suggestions)
    app.router.add_get("/api/kafka/suggestions/{reference}", get_suggestion)
    app.router.add_patch("/api/kafka/suggestions/{reference}", patch_suggestion)
    app.router.add_get("/api/kafka/export.csv", export_csv)
    app.router.add_get("/api/kafka/export.json", export_json)
    if retention_days is not None:
        app.cleanup_ctx.append(_daily_purge(retention_days))
    return app


def _port(raw: Optional[str]) -> int:
    if not raw:
        return DEFAULT_PORT
    if not _NUMBER.match(raw) or not 1 <= int(raw) <= 65535:
        raise ValueError(f"{PORT_ENV} must be a port number from 1 to 65535 (got {raw!r})")
    return int(raw)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = os.environ.get(TOKEN_ENV, "")
    if not token.strip():
        print(
            f"kafka_api: {TOKEN_ENV} is not set; refusing to serve the KAFKA register without authentication.\n"
            "Generate a token with: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            file=sys.stderr,
        )
        return 2
    try:
        retention_days = kafka.retention_days_from_env()
        port = _port(os.environ.get(PORT_ENV))
        engine = make_engine()
        create_schema(engine)
        app = make_app(KafkaRegister(engine), token, retention_days=retention_days)
    except ValueError as error:
        print(f"kafka_api: {error}", file=sys.stderr)
        return 2
    web.run_app(app, host=os.environ.get(HOST_ENV) or DEFAULT_HOST, port=port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
