"""The action server: rasa-sdk's own app with ``/metrics`` and contact-detail masking in the logs.

Same routes and behaviour as ``python -m rasa_sdk --actions bot.actions`` (``/health``,
``/webhook``, ``/actions``), built with ``rasa_sdk.endpoint.create_app``, plus:

- ``GET /metrics``: Prometheus text: every action run (by action and outcome: ok, rejected,
  failed) and its duration, and the business counters of ``bot/metrics.py`` that the actions
  increment (fallbacks, handoffs, bookings, KAFKA suggestions);
- phone numbers and e-mail addresses masked in INFO+ log records (``bot/logsafe.py``);
- one INFO line per action run with the masked conversation id, its outcome and duration;
- turn replay for the form validation actions (``validate_*``, where bookings and KAFKA suggestions
  are stored): their answer is kept for 15 minutes under a hash of the conversation state, so a
  turn that Rasa asks for again because the Rasa server died after the action ran (the citizen
  repeats "ja, bevestig") gets the same answer instead of a second booking. Kept in Redis
  (``REDIS_URL``, shared by all action server replicas), in memory without it.

Run (``scripts/run`` does)::

    python -m bot.action_server --port 5055 [--host 127.0.0.1]

One Sanic worker per process (Prometheus counters live in the process): scale with replicas.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
import zlib
from typing import Any, Dict, Optional, Sequence, Tuple

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import logsafe, metrics
from bot.core.shared import Shared

logger = logging.getLogger("bot.action_server")

DEFAULT_PORT = 5055
_ACTION = "gentinfo_action"
_START = "gentinfo_started"
_REPLAY = "gentinfo_replay"

#: Actions whose answers are replayed: form validation, where this project's forms store things.
REPLAYED_PREFIX = "validate_"
REPLAY_TTL_SECONDS = 15 * 60
#: Parts of an event that differ when the same turn is asked again (another Rasa server, later).
_VOLATILE = {"timestamp", "message_id", "metadata", "confidence", "input_channel"}


def _canonical(event: Dict[str, Any]) -> Dict[str, Any]:
    canonical = {key: value for key, value in event.items() if key not in _VOLATILE}
    parse = event.get("parse_data")
    if event.get("event") == "user" and isinstance(parse, dict):
        intent, entities = parse.get("intent"), parse.get("entities")
        intent = intent if isinstance(intent, dict) else {}
        entities = entities if isinstance(entities, list) else []
        canonical["parse_data"] = {
            "intent": intent.get("name"),
            "entities": [[e.get("entity"), e.get("value")] for e in entities if isinstance(e, dict)],
        }
    return canonical


def turn_key(call: Dict[str, Any]) -> Optional[str]:
    """Identity of one action call in one conversation state, or None when it is not replayed.

    The same turn asked again has the same events up to its user message (timestamps aside): the
    crashed server never saved the turn, so the conversation is where it was.
    """
    name = call.get("next_action")
    tracker = call.get("tracker")
    if not isinstance(name, str) or not name.startswith(REPLAYED_PREFIX) or not isinstance(tracker, dict):
        return None
    events = tracker.get("events")
    if not isinstance(events, list):
        return None
    state = {"action": name, "sender": call.get("sender_id"),
             "events": [_canonical(e) for e in events if isinstance(e, dict)]}
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode("utf-8")).hexdigest()


class ReplayStore:
    """Answers of replayed actions: Redis when ``REDIS_URL`` is set, else this process' memory.
    Redis trouble only turns replay off for that call (logged)."""

    def __init__(self, redis_url: Optional[str], ttl: int = REPLAY_TTL_SECONDS) -> None:
        self._url = redis_url
        self._ttl = ttl
        self._client: Any = None
        self._memory: Dict[str, Tuple[float, bytes]] = {}

    def _redis(self) -> Any:
        if self._client is None:
            from bot.core import redis_clients

            self._client = redis_clients.async_client(self._url or "")
        return self._client

    async def get(self, key: str) -> Optional[bytes]:
        if not self._url:
            entry = self._memory.get(key)
            return entry[1] if entry and entry[0] > time.monotonic() else None
        try:
            return await self._redis().get(f"gentinfo:replay:{key}")
        except Exception as error:
            logger.warning("replay store unavailable (%s): the action runs", type(error).__name__)
            return None

    async def put(self, key: str, body: bytes) -> None:
        if not self._url:
            now = time.monotonic()
            self._memory = {k: v for k, v in self._memory.items() if v[0] > now}
            self._memory[key] = (now + self._ttl, body)
            return
        try:
            await self._redis().set(f"gentinfo:replay:{key}", body, ex=self._ttl)
        except Exception as error:
            logger.warning("replay store unavailable (%s): this answer cannot be replayed", type(error).__name__)


#: Answers of replayed actions: Redis when ``REDIS_URL`` is set, else memory (``bot/wiring.py``).
replays: Shared[ReplayStore] = Shared(ReplayStore, "REDIS_URL")


def _action_call(request: Request) -> Optional[dict]:
    try:
        body = request.body or b""
        if request.headers.get("Content-Encoding") == "deflate":
            body = zlib.decompress(body)
        call = json.loads(body)
        return call if isinstance(call, dict) else None
    except (ValueError, zlib.error):
        return None


async def _before(request: Request) -> Optional[HTTPResponse]:
    if request.path != "/webhook" or request.method != "POST":
        return None
    call = _action_call(request)
    name = call.get("next_action") if call else None
    name = name if isinstance(name, str) else "unknown"
    sender = (call or {}).get("sender_id")
    setattr(request.ctx, _ACTION, (name, sender))
    setattr(request.ctx, _START, time.perf_counter())
    key = turn_key(call) if call else None
    if key is None:
        return None
    setattr(request.ctx, _REPLAY, key)
    answer = await replays().get(key)
    if answer is None:
        return None
    setattr(request.ctx, _REPLAY, None)
    metrics.REPLAYS.labels(action=name).inc()
    logger.info("action %s for %s: this turn ran before, its answer is replayed", name, sender)
    return response.raw(answer, content_type="application/json", headers={"X-Gentinfo-Replayed": "1"})


async def _after(request: Request, answer: HTTPResponse) -> None:
    found = getattr(request.ctx, _ACTION, None)
    if found is None:
        return
    name, sender = found
    seconds = time.perf_counter() - getattr(request.ctx, _START)
    status = getattr(answer, "status", 0)
    outcome = "ok" if status == 200 else "rejected" if status == 400 else "unknown_action" if status == 404 else "failed"
    if outcome == "unknown_action":
        name = "unknown"  # a name nobody registered must not become a label value
    if answer.headers.get("X-Gentinfo-Replayed"):
        outcome = "replayed"
    key = getattr(request.ctx, _REPLAY, None)
    if key is not None and status == 200:
        await replays().put(key, answer.body or b"")
    metrics.ACTIONS.labels(action=name, outcome=outcome).inc()
    metrics.ACTION_SECONDS.labels(action=name).observe(seconds)
    # The sender id may be a phone number (whatsapp:+32…): the log masking hides it.
    logger.info("action %s for %s: %s in %.0f ms", name, sender, outcome, seconds * 1000)


def create_app(actions: str = "bot.actions", cors_origins: Any = None) -> Sanic:
    """rasa-sdk's action server app for ``actions`` with the additions above."""
    from rasa_sdk.endpoint import create_app as sdk_create_app

    logsafe.install()
    app = sdk_create_app(actions, cors_origins=cors_origins or "")
    app.register_middleware(_before, "request")
    app.register_middleware(_after, "response")

    @app.get("/metrics")
    async def prometheus(_: Request) -> HTTPResponse:
        body, content_type = metrics.exposition()
        return response.raw(body, content_type=content_type, headers={"Cache-Control": "no-store"})

    return app


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Gentinfo action server (rasa-sdk + /metrics)")
    parser.add_argument("--actions", default="bot.actions", help="package with the custom actions")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("ACTION_PORT") or DEFAULT_PORT))
    parser.add_argument("--host", default=os.environ.get("SANIC_HOST") or "127.0.0.1",
                        help="interface to listen on (0.0.0.0 in a container)")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL") or "INFO")
    args = parser.parse_args(argv)

    from rasa_sdk import utils

    utils.configure_colored_logging(args.log_level.upper())
    utils.update_sanic_log_level()
    logsafe.install()
    app = create_app(args.actions)
    logger.info("Action server on http://%s:%s (metrics at /metrics)", args.host, args.port)
    app.run(args.host, args.port, workers=1, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
