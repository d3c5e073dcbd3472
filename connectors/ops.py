"""Operations endpoints of the Rasa server, and what keeps a citizen informed when a part fails.

A Rasa input channel (``credentials.yml``: ``connectors.ops.OpsInput:``) that no citizen talks to:

- ``GET /webhooks/ops/health``: liveness, the process answers (no dependency is checked);
- ``GET /webhooks/ops/ready``: readiness: the model is loaded, the action server answers ``/health``,
  Redis answers PING (when ``REDIS_URL`` is set), the database answers ``select 1`` (when
  ``GENTINFO_DATABASE_URL`` is set); 503 with the reasons otherwise;
- ``GET /webhooks/ops/metrics``: Prometheus text: messages and latency per channel (an app-wide
  middleware registered when the server starts), custom action calls, polite error answers and the
  process' own CPU/memory. The same middleware answers 400 to REST-channel bodies that Rasa's
  ``RestInput`` would answer with a 500 (a JSON list, a non-text message). The business counters of the actions are on the action server's
  ``/metrics`` (``bot/action_server.py``): Prometheus scrapes both.

This channel changes nothing in Rasa. The polite answers when the action server or Redis fails,
and the other fixes of Rasa 3.6's own classes, are in ``bot/rasa_fixes.py``, installed by the entry
point that starts Rasa (``python -m bot.server run …``); when Rasa was started without them
(``python -m rasa run``), this channel says so in the log. It also installs the masking of phone
numbers and e-mail addresses in INFO+ logs (``bot/logsafe.py``; idempotent, the entry point does too),
so that masking never depends on how the process was started.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text, Tuple

import aiohttp
from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import logsafe, metrics, rasa_fixes

logger = logging.getLogger(__name__)

PREFIX = "/webhooks/"
CHECK_TIMEOUT_SECONDS = 2.0


# ------------------------------------------------------------------------------------------------
# Metrics middleware
# ------------------------------------------------------------------------------------------------
_START = "gentinfo_started"


def _channel_of(request: Request) -> Tuple[str, bool]:
    """(channel or area, is a message): ``POST /webhooks/<channel>/webhook`` is a message."""
    path = request.path
    if not path.startswith(PREFIX):
        return "rasa_api", False
    parts = path[len(PREFIX):].split("/")
    if getattr(request, "route", None) is None:
        return "unmatched", False
    channel = parts[0] or "unknown"
    return channel, request.method == "POST" and len(parts) >= 2 and parts[1] == "webhook"




async def _observe(request: Request, response_: HTTPResponse) -> None:
    try:
        channel, is_message = _channel_of(request)
        status = str(getattr(response_, "status", 0))
        if is_message:
            metrics.MESSAGES.labels(channel=channel, status=status).inc()
            started = getattr(request.ctx, _START, None)
            if started is not None:
                metrics.MESSAGE_SECONDS.labels(channel=channel).observe(time.perf_counter() - started)
        elif channel != "ops":
            metrics.HTTP_REQUESTS.labels(area=channel, status=status).inc()
    except Exception as error:
        logger.debug("ops.metrics.failed: %s", error)


REST_WEBHOOK = "/webhooks/rest/webhook"
#: A REST message is a sender id and a text; far more is not a message.
REST_MAX_BYTES = 64 * 1024


def _rest_problem(request: Request) -> Optional[Tuple[int, str]]:
    """Why a request to Rasa's REST channel cannot be a message, or None.

    Rasa 3.6's ``RestInput`` calls ``request.json.get(...)`` and answers 500 to a JSON list, a
    number or a non-text ``message``; this check turns those into a 400 before they reach it.
    """
    body = request.body or b""
    if len(body) > REST_MAX_BYTES:
        return 413, "request too large"
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return 400, "body must be a JSON object"
    if not isinstance(payload, dict):
        return 400, "body must be a JSON object"
    if not isinstance(payload.get("message"), str):
        return 400, "message must be a text"
    sender = payload.get("sender", "default")
    if not isinstance(sender, str) or not sender.strip() or len(sender) > 256:
        return 400, "sender must be a text of at most 256 characters"
    for key in ("metadata",):
        if payload.get(key) is not None and not isinstance(payload[key], dict):
            return 400, f"{key} must be a JSON object"
    if payload.get("input_channel") is not None and not isinstance(payload["input_channel"], str):
        return 400, "input_channel must be a text"
    return None


async def _start_timer(request: Request) -> Optional[HTTPResponse]:
    setattr(request.ctx, _START, time.perf_counter())
    if request.method == "POST" and request.path == REST_WEBHOOK:
        problem = _rest_problem(request)
        if problem is not None:
            return response.json({"error": problem[1]}, status=problem[0])
    return None


def install_middleware(app: Any) -> None:
    """Time every request of ``app`` and check REST bodies (idempotent; Sanic reads its middleware
    per request, so registering it when the server starts is enough)."""
    if getattr(app.ctx, "gentinfo_ops_middleware", False):
        return
    app.ctx.gentinfo_ops_middleware = True
    app.register_middleware(_start_timer, "request")
    app.register_middleware(_observe, "response")


# ------------------------------------------------------------------------------------------------
# Readiness
# ------------------------------------------------------------------------------------------------
class Readiness:
    """The checks behind ``/ready``; each one has ``CHECK_TIMEOUT_SECONDS``."""

    def __init__(self, environ: Optional[Dict[str, str]] = None) -> None:
        env = dict(os.environ if environ is None else environ)
        self.redis_url = env.get("REDIS_URL") or None
        self.database_url = env.get("GENTINFO_DATABASE_URL") or None
        self.action_endpoint_url = env.get("ACTION_ENDPOINT_URL") or None
        self._redis: Any = None
        self._engine: Any = None

    async def check(self, app: Any) -> Tuple[bool, Dict[str, str]]:
        names = ["model", "action_server"]
        checks: List[Awaitable[Optional[str]]] = [self._model(app), self._action_server(app)]
        if self.redis_url:
            names.append("redis")
            checks.append(self._guarded(self._redis_ping()))
        if self.database_url:
            names.append("database")
            checks.append(self._guarded(self._database_ping()))
        results = await asyncio.gather(*checks)
        report = {name: problem or "ok" for name, problem in zip(names, results, strict=True)}
        return all(problem is None for problem in results), report

    @staticmethod
    async def _guarded(check: Awaitable[Optional[str]]) -> Optional[str]:
        try:
            return await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            return f"no answer within {CHECK_TIMEOUT_SECONDS:g} s"
        except Exception as error:
            return f"{type(error).__name__}: {str(error)[:200]}"

    @staticmethod
    async def _model(app: Any) -> Optional[str]:
        agent = getattr(app.ctx, "agent", None)
        if agent is None:
            return "no agent yet (the model is still loading)"
        is_ready = getattr(agent, "is_ready", None)
        if callable(is_ready) and not is_ready():
            return "no model loaded"
        return None

    def _action_health_url(self, app: Any) -> Optional[str]:
        agent = getattr(app.ctx, "agent", None)
        endpoint = getattr(agent, "action_endpoint", None)
        url = getattr(endpoint, "url", None) or self.action_endpoint_url
        if not url:
            return None
        base = url.rstrip("/")
        if base.endswith("/webhook"):
            base = base[: -len("/webhook")]
        return f"{base}/health"

    async def _action_server(self, app: Any) -> Optional[str]:
        url = self._action_health_url(app)
        if url is None:
            return "no action endpoint configured"
        try:
            timeout = aiohttp.ClientTimeout(total=CHECK_TIMEOUT_SECONDS)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as answer:
                if answer.status != 200:
                    return f"{url} answered {answer.status}"
        except asyncio.TimeoutError:
            return f"{url}: no answer within {CHECK_TIMEOUT_SECONDS:g} s"
        except aiohttp.ClientError as error:
            return f"{url} unreachable ({type(error).__name__})"
        return None

    async def _redis_ping(self) -> Optional[str]:
        import redis.asyncio

        if self._redis is None:
            self._redis = redis.asyncio.Redis.from_url(
                self.redis_url, socket_timeout=CHECK_TIMEOUT_SECONDS, socket_connect_timeout=CHECK_TIMEOUT_SECONDS
            )
        await self._redis.ping()
        return None

    async def _database_ping(self) -> Optional[str]:
        from sqlalchemy import text

        from bot.core.db import make_engine

        if self._engine is None:
            self._engine = make_engine(self.database_url)

        def ping() -> None:
            with self._engine.connect() as connection:
                connection.execute(text("select 1"))

        await asyncio.to_thread(ping)
        return None

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.close()
            self._redis = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


# ------------------------------------------------------------------------------------------------
# The channel
# ------------------------------------------------------------------------------------------------
class OpsInput(InputChannel):
    """``/webhooks/ops/{health,ready,metrics}``; no messages are accepted here."""

    @classmethod
    def name(cls) -> Text:
        return "ops"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls()

    def __init__(self, readiness: Optional[Readiness] = None, safeguards: bool = True) -> None:
        if safeguards:  # tests of the endpoints alone leave the process as it is
            logsafe.install()
            if not rasa_fixes.installed():
                logger.warning("ops.rasa_fixes.missing: Rasa was started without bot/rasa_fixes.py; "
                               "start it with `python -m bot.server run …` for the polite error answers")
        self.readiness = readiness or Readiness()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        ops = Blueprint("gentinfo_ops", __name__)

        @ops.listener("before_server_start")
        async def measure_everything(app: Any, _loop: Any) -> None:
            install_middleware(app)

        @ops.listener("after_server_stop")
        async def close_checks(*_: Any) -> None:
            await self.readiness.close()

        @ops.route("/health", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"}, headers={"Cache-Control": "no-store"})

        @ops.route("/ready", methods=["GET"])
        async def ready(request: Request) -> HTTPResponse:
            ok, checks = await self.readiness.check(request.app)
            body: Dict[str, Any] = {"status": "ready" if ok else "not ready", "checks": checks}
            if not ok:
                body["reasons"] = [f"{name}: {problem}" for name, problem in checks.items() if problem != "ok"]
                logger.warning("ops.not_ready: %s", "; ".join(body["reasons"]))
            return response.json(body, status=200 if ok else 503, headers={"Cache-Control": "no-store"})

        @ops.route("/metrics", methods=["GET"])
        async def prometheus(_: Request) -> HTTPResponse:
            body, content_type = metrics.exposition()
            return response.raw(body, content_type=content_type, headers={"Cache-Control": "no-store"})

        return ops
