"""The action server: rasa-sdk's own app with ``/metrics`` and contact-detail masking in the logs.

Same routes and behaviour as ``python -m rasa_sdk --actions bot.actions`` (``/health``,
``/webhook``, ``/actions``), built with ``rasa_sdk.endpoint.create_app``, plus:

- ``GET /metrics``: Prometheus text: every action run (by action and outcome: ok, rejected,
  failed) and its duration, and the business counters of ``bot/metrics.py`` that the actions
  increment (fallbacks, handoffs, bookings, KAFKA suggestions);
- phone numbers and e-mail addresses masked in INFO+ log records (``bot/logsafe.py``);
- one INFO line per action run with the masked conversation id, its outcome and duration.

Run (``scripts/run`` does)::

    python -m bot.action_server --port 5055 [--host 127.0.0.1]

One Sanic worker per process (Prometheus counters live in the process): scale with replicas.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import zlib
from typing import Any, Optional, Sequence

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import logsafe, metrics

logger = logging.getLogger("bot.action_server")

DEFAULT_PORT = 5055
_ACTION = "gentinfo_action"
_START = "gentinfo_started"


def _action_call(request: Request) -> Optional[dict]:
    try:
        body = request.body or b""
        if request.headers.get("Content-Encoding") == "deflate":
            body = zlib.decompress(body)
        call = json.loads(body)
        return call if isinstance(call, dict) else None
    except (ValueError, zlib.error):
        return None


async def _before(request: Request) -> None:
    if request.path != "/webhook" or request.method != "POST":
        return
    call = _action_call(request)
    name = call.get("next_action") if call else None
    setattr(request.ctx, _ACTION, (name if isinstance(name, str) else "unknown", (call or {}).get("sender_id")))
    setattr(request.ctx, _START, time.perf_counter())


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
