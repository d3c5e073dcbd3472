"""Trackers as a form's validation action receives them right after a user message, and calls of it."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import yaml
from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher

ROOT = Path(__file__).resolve().parents[1]
DOMAIN: Dict[str, Any] = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))


def form_tracker(slots: Optional[Dict[str, Any]] = None, *, form: Optional[str], sender: str, text: str = "",
                 intent: str = "inform", entities: Iterable[Tuple[str, str]] = (),
                 requested: Optional[str] = None) -> Tracker:
    values = {name: None for name in DOMAIN["slots"]}
    values.update(slots or {})
    values["requested_slot"] = requested
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.95},
              "entities": [{"entity": name, "value": value} for name, value in entities]}
    events: List[Dict[str, Any]] = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": text, "parse_data": latest},
        {"event": "slot", "name": "requested_slot", "value": requested},
        {"event": "action", "name": form or "action_listen"},
    ]
    return Tracker(sender, values, latest, events, False, None, {"name": form} if form and requested else {},
                   "action_listen")


def validate_slot(form: FormValidationAction, slot: str, value: Any,
                  tracker: Tracker) -> Tuple[Dict[str, Any], List[str]]:
    """Call ``validate_<slot>``; returns (slot updates, texts the assistant said)."""
    dispatcher = CollectingDispatcher()
    result = asyncio.run(getattr(form, f"validate_{slot}")(value, dispatcher, tracker, DOMAIN))
    return result, [m.get("text") or "" for m in dispatcher.messages]


def run_form(form: FormValidationAction, tracker: Tracker) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """A whole validation run (extract + validate), as Rasa calls it: (slot values set, messages)."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(form.run(dispatcher, tracker, DOMAIN))
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}, dispatcher.messages
