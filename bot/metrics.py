"""Prometheus metrics of the assistant, one registry per process.

Two processes, each scraped on its own (every replica, see deploy/):

- the Rasa server (``connectors/ops.py``, ``GET /webhooks/ops/metrics``): messages and latency per
  channel, polite error answers given instead of a real one;
- the action server (``bot/action_server.py``, ``GET /metrics``): every custom action run and its
  duration, and the business counters the actions increment through the helpers below
  (fallbacks, handoffs, bookings, KAFKA suggestions).

Labels only take values from small fixed sets (channel names, action names, outcomes): never a
conversation id or a text.
"""
from __future__ import annotations

from typing import Tuple

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

# -- Rasa server ---------------------------------------------------------------------------------
MESSAGES = Counter(
    "gentinfo_messages", "Messages received on a channel's webhook, by HTTP status", ["channel", "status"]
)
MESSAGE_SECONDS = Histogram(
    "gentinfo_message_seconds", "Time from webhook request to response, per channel", ["channel"],
    buckets=LATENCY_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "gentinfo_http_requests", "Every other HTTP request of the Rasa server, by area and status", ["area", "status"]
)
ACTION_CALLS = Counter(
    "gentinfo_action_calls", "Custom actions the Rasa server asked the action server to run, by outcome",
    ["action", "outcome"],  # ok | rejected | failed
)
ERROR_ANSWERS = Counter(
    "gentinfo_error_answers",
    "Polite 'try again later' answers given because a part of the assistant failed",
    ["cause"],  # action_server | conversation_store
)

# -- action server -------------------------------------------------------------------------------
ACTIONS = Counter("gentinfo_actions", "Custom action runs, by outcome", ["action", "outcome"])
ACTION_SECONDS = Histogram(
    "gentinfo_action_seconds", "Duration of a custom action run", ["action"], buckets=LATENCY_BUCKETS
)
FALLBACKS = Counter(
    "gentinfo_fallbacks", "Messages the assistant did not understand", ["kind"]  # first | repeated
)
HANDOFFS = Counter(
    "gentinfo_handoffs", "Conversations handed to Gentinfo agents", ["reason", "status"]
)
BOOKINGS = Counter(
    "gentinfo_bookings", "Appointment bookings, by outcome", ["outcome"]  # booked | failed (database)
)
KAFKA_REPORTS = Counter(
    "gentinfo_kafka_reports", "KAFKA suggestions for administrative simplification, by outcome",
    ["outcome"],  # anonymous | with_contact | filed | failed (database)
)
REMINDERS = Counter(
    "gentinfo_reminders", "Reminder and notification jobs handled by the reminder worker, by kind and outcome",
    ["kind", "outcome"],  # appointment | kafka_status; sent | retry | failed | cancelled | expired | unknown
)
REPLAYS = Counter(
    "gentinfo_action_replays",
    "Form turns answered from the replay store: Rasa asked again for a turn whose answer it never got",
    ["action"],
)


def fallback(repeated: bool) -> None:
    FALLBACKS.labels(kind="repeated" if repeated else "first").inc()


def handoff(reason: str, status: str) -> None:
    HANDOFFS.labels(reason=reason, status=status).inc()


def booking(outcome: str) -> None:
    BOOKINGS.labels(outcome=outcome).inc()


def kafka_report(outcome: str) -> None:
    KAFKA_REPORTS.labels(outcome=outcome).inc()


def reminder(kind: str, outcome: str) -> None:
    REMINDERS.labels(kind=kind, outcome=outcome).inc()


def exposition() -> Tuple[bytes, str]:
    """The Prometheus text of this process (and its content type)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
