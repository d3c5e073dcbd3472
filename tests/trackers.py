"""Trackers as a form's validation action receives them right after a user message."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import yaml
from rasa_sdk import Tracker

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
