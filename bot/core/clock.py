"""The city's time zone, defined once: opening hours, agents' hours and slots are Ghent's local time."""
from __future__ import annotations

from zoneinfo import ZoneInfo

CITY_TZ = ZoneInfo("Europe/Brussels")
