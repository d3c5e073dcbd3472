"""When Gentinfo's agents answer: the handoff configuration (``bot/data/content/handoff.yml``).

Agents' hours, closing days, products always handled by a person and the handoff's timers; and the
Dutch phrases for those hours (``maandag tot vrijdag van 8 tot 18 uur``, ``morgen om 8 uur``).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml
from pydantic import BaseModel, validator

from bot.core.catalogue import WEEKDAYS, check_weekly_hours, get_catalogue
from bot.core.clock import CITY_TZ
from bot.core.shared import Shared, env

CONFIG_PATH = Path(__file__).resolve().parents[1] / "data" / "content" / "handoff.yml"
CONFIG_ENV = "GENTINFO_HANDOFF_CONFIG"

#: Gentinfo's own hours (catalogue.yml contact.hours), the default for agents' hours.
GENTINFO_HOURS: Dict[str, List[str]] = {
    **{day: ["08:00-18:00"] for day in WEEKDAYS[:5]},
    "zaterdag": ["09:00-12:00"],
}


class HandoffConfig(BaseModel):
    hours: Dict[str, List[str]] = GENTINFO_HOURS
    closed_on: List[date] = []
    always_human_products: List[str] = []
    minutes_per_waiting_conversation: int = 4
    context_messages: int = 8
    idle_release_hours: float = 12
    message_wait_minutes: float = 30
    retention_days: int = 30

    class Config:
        extra = "forbid"

    _hours_well_formed = validator("hours", allow_reuse=True)(check_weekly_hours)

    @validator("always_human_products")
    def _known_products(cls, value: List[str]) -> List[str]:
        catalogue = get_catalogue()
        unknown = [pid for pid in value if catalogue.product(pid) is None]
        if unknown:
            raise ValueError(f"unknown catalogue product ids: {unknown}")
        return value

    @validator("minutes_per_waiting_conversation", "context_messages", "retention_days")
    def _positive_int(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @validator("idle_release_hours", "message_wait_minutes")
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be more than 0")
        return value

    # -- hours ----------------------------------------------------------------------------------
    def spans_on(self, day: date) -> List[Tuple[dtime, dtime]]:
        if day in self.closed_on:
            return []
        spans = self.hours.get(WEEKDAYS[day.weekday()], [])
        bounds = [span.split("-", 1) for span in spans]  # "08:00-18:00", checked by check_weekly_hours
        return [(dtime.fromisoformat(start), dtime.fromisoformat(end)) for start, end in bounds]

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(CITY_TZ)
        return any(start <= local.time() < end for start, end in self.spans_on(local.date()))

    def next_opening(self, at: datetime) -> Optional[datetime]:
        """The next moment agents start (after ``at``), within two weeks."""
        local = at.astimezone(CITY_TZ)
        for offset in range(15):
            day = local.date() + timedelta(days=offset)
            for start, _ in self.spans_on(day):
                moment = datetime.combine(day, start, tzinfo=CITY_TZ)
                if moment > local:
                    return moment
        return None

    def hours_text(self) -> str:
        """``maandag tot vrijdag van 8 tot 18 uur, zaterdag van 9 tot 12 uur``."""
        groups: List[Tuple[int, int, List[str]]] = []
        for index, day in enumerate(WEEKDAYS):
            spans = self.hours.get(day) or []
            if not spans:
                continue
            if groups and groups[-1][1] == index - 1 and groups[-1][2] == spans:
                groups[-1] = (groups[-1][0], index, spans)
            else:
                groups.append((index, index, spans))
        parts = []
        for first, last, spans in groups:
            days = WEEKDAYS[first] if first == last else f"{WEEKDAYS[first]} tot {WEEKDAYS[last]}"
            ranges = " en ".join(f"van {_clock(span.split('-')[0])} tot {_clock(span.split('-')[1])}" for span in spans)
            parts.append(f"{days} {ranges} uur")
        return ", ".join(parts) if parts else "momenteel niet"


def _clock(value: str) -> str:
    hour, minute = value.split(":")
    return str(int(hour)) if minute == "00" else f"{int(hour)}.{minute}"


def when_text(moment: datetime, now: datetime) -> str:
    """``vandaag om 8 uur`` / ``morgen om 8 uur`` / ``maandag om 9 uur``."""
    local, today = moment.astimezone(CITY_TZ), now.astimezone(CITY_TZ).date()
    clock = _clock(local.strftime("%H:%M"))
    if local.date() == today:
        return f"vandaag om {clock} uur"
    if local.date() == today + timedelta(days=1):
        return f"morgen om {clock} uur"
    return f"{WEEKDAYS[local.weekday()]} om {clock} uur"


def load_config(path: Optional[Path] = None) -> HandoffConfig:
    path = path or Path(env(CONFIG_ENV) or CONFIG_PATH)
    with path.open(encoding="utf-8") as handle:
        return HandoffConfig.parse_obj(yaml.safe_load(handle) or {})


def _load(path: Optional[str]) -> HandoffConfig:
    return load_config(Path(path or CONFIG_PATH))


#: The configuration, read once per process and path (``GENTINFO_HANDOFF_CONFIG``, else the default).
get_config: Shared[HandoffConfig] = Shared(_load, CONFIG_ENV)
