"""What the messaging connectors say and do themselves, the same on every channel.

The assistant understands text only. Voice notes, photos, stickers, files and contacts get a short
Dutch answer from the connector; a shared location gets the nearest city office (the copy is in
``texts.yml``, section ``channels``). Long texts are split where a reader expects a break, and
buttons become something a plain-text chat can show. The triage deciding which answer a message
gets is in ``connectors/inbox.py``.
"""
from __future__ import annotations

import math
import re
from enum import Enum
from typing import Any, Dict, List, Optional, Sequence, Tuple

from bot.core.catalogue import Location, get_catalogue, normalise
from bot.core.texts import say

#: Location kinds where citizens are helped at a desk.
OFFICE_KINDS = ("stadskantoor", "wijkkantoor")

Button = Dict[str, Any]


class Content(str, Enum):
    """Kinds of non-text content a citizen can send."""

    voice = "voice"
    image = "image"
    sticker = "sticker"
    video = "video"
    document = "document"
    contact = "contact"
    other = "other"


def unreadable_content(kind: Content, has_text: bool, channel: Optional[str] = None) -> str:
    """The answer to content the assistant cannot read; with a caption, the caption is answered too."""
    noun = say(f"channels.content.{kind.value}", channel)
    if has_text:
        return say("channels.unreadable_with_text", channel, Noun=noun[:1].upper() + noun[1:])
    key = "channels.unreadable_document" if kind is Content.document else "channels.unreadable"
    return say(key, channel, noun=noun)


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine); plenty precise within a city."""
    radius = 6371.0
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = math.radians(lat2 - lat1), math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * radius * math.asin(math.sqrt(a))


def nearest_office(latitude: float, longitude: float) -> Optional[Tuple[Location, float]]:
    """The closest stadskantoor or wijkkantoor and its distance in km."""
    offices = [loc for loc in get_catalogue().locations if loc.kind in OFFICE_KINDS]
    if not offices:
        return None
    ranked = sorted((_distance_km(latitude, longitude, o.latitude, o.longitude), o.id, o) for o in offices)
    distance, _, office = ranked[0]
    return office, distance


def location_answer(latitude: float, longitude: float, channel: Optional[str] = None) -> str:
    """Answer to a shared location: the nearest office, its address and where to read more."""
    found = None
    if -90 <= latitude <= 90 and -180 <= longitude <= 180:
        found = nearest_office(latitude, longitude)
    if found is None:
        return say("channels.location_unusable", channel)
    office, distance = found
    km = f"{distance:.1f}".replace(".", ",")
    return say("channels.location", channel, office=office.name, address=office.address, km=km, url=office.url)


_SENTENCE_END = re.compile(r"[.!?…](?=[\s\"')\]]|$)[\"')\]]*")


def split_text(text: str, limit: int) -> List[str]:
    """Split a text into parts of at most ``limit`` characters.

    Prefer a paragraph break, then a sentence end, then a space, in the last half of each part:
    a citizen reads whole sentences; only an endless word is cut hard.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2")
    parts: List[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[: limit + 1]
        floor = limit // 2
        cut = window.rfind("\n\n", floor, limit)
        if cut <= 0:
            ends = [m.end() for m in _SENTENCE_END.finditer(window, floor) if m.end() <= limit]
            cut = ends[-1] if ends else 0
        if cut <= 0:
            cut = max(window.rfind(" ", floor), window.rfind("\n", floor))
        if cut <= 0:
            cut = limit
        part = rest[:cut].rstrip()
        if part:
            parts.append(part)
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def numbered_choices(text: str, buttons: Sequence[Button]) -> str:
    """Buttons as a numbered list under the text, for chats without buttons (WhatsApp)."""
    lines = [f"{number}. {button.get('title', '')}" for number, button in enumerate(buttons, start=1)]
    return f"{text}\n\n" + "\n".join(lines) + "\n\n" + say("channels.numbered_choice_hint", "whatsapp")


def chosen_payload(text: str, buttons: Sequence[Button], by_number: bool) -> Optional[str]:
    """The payload of the button a citizen's reply picks: its number ("2") or its title."""
    answer = normalise(text)
    if not answer:
        return None
    if by_number and answer.isdigit() and 1 <= int(answer) <= len(buttons):
        return buttons[int(answer) - 1].get("payload")
    for button in buttons:
        if normalise(str(button.get("title", ""))) == answer:
            return button.get("payload")
    return None
