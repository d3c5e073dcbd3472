"""Reading a citizen's typed answer in the task forms: which offered moment ("de tweede", "10u30"),
a yes or a no, a name, a contact detail inside a sentence, a reference, a wish to change an earlier
answer ("andere dag").

Plain functions on text, so that the Dutch parsing is tested without a Rasa tracker; the actions in
``bot/actions`` only decide *which* of these to apply to the latest message.
"""
from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any, List, Mapping, Optional, Pattern, Sequence

from bot.core.appointments import Slot, normalise_reference
from bot.core.contact import InvalidContact, normalise_contact
from bot.core.kafka import MAX_PROBLEM_CHARS, MIN_PROBLEM_WORDS, InvalidReference, TooLong, TooShort, parse_reference

#: Prefix of the value an extract method passes on when the citizen wants to change an earlier answer.
CHANGE = "change:"

#: Typed corrections in the appointment forms ("andere dag", "ander nummer") -> the answer to change.
#: First match wins.
BOOKING_CHANGES: Mapping[str, Pattern[str]] = {
    "product": re.compile(r"\b(dienst|product|document)\b"),
    "location": re.compile(r"\b(plaats|locatie|kantoor|wijkkantoor|stadskantoor|adres)\b"),
    "time": re.compile(r"\b(uur|uren|tijdstip|tijd|moment)\b"),
    "day": re.compile(r"\b(dag|datum)\b"),
    "contact": re.compile(r"\b(nummer|telefoon\w*|gsm|e-?mail\w*|mail\w*|contact\w*)\b"),
    "name": re.compile(r"\bnaam\b"),
}

#: Typed corrections in the KAFKA form.
KAFKA_CHANGES: Mapping[str, Pattern[str]] = {
    "problem": re.compile(r"\b(tekst|probleem|beschrijving|uitleg|melding)\b"),
    "proposal": re.compile(r"\b(voorstel|idee|oplossing)\b"),
    "product": re.compile(r"\b(dienst|product|onderwerp|document)\b"),
    "identity": re.compile(r"\b(gegevens|anoniem|naam|contact\w*|e-?mail\w*|nummer|telefoon\w*)\b"),
}


# -- change requests -----------------------------------------------------------------------------------
def is_change(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(CHANGE)


def change_field(value: str) -> str:
    return value[len(CHANGE):]


def changed_field(text: str, keywords: Mapping[str, Pattern[str]]) -> Optional[str]:
    """The first field whose keyword occurs in a typed change request ("ander uur" -> 'time')."""
    lowered = text.lower()
    return next((field for field, pattern in keywords.items() if pattern.search(lowered)), None)


# -- questions, yes and no -----------------------------------------------------------------------------
_QUESTION_START = re.compile(r"^\s*(wat|hoe|waar|wanneer|waarom|welke?|hoeveel|moet|kan|kunt|mag|is|zijn|heb|hebt)\b",
                             re.IGNORECASE)
_YES = re.compile(r"^\s*(ja|jaja|jawel|yes|oké|oke|ok|akkoord|zeker|graag|doe maar|bevestig\w*)\b", re.IGNORECASE)
_NO = re.compile(r"^\s*(nee|neen|nope|liever niet|niet doen)\b", re.IGNORECASE)

#: "No answer" to an optional question (proposal, topic, reference).
NO_ANSWER = re.compile(
    r"^\s*(nee|neen|geen|niks|niets|nope|geen idee|weet ik niet|ik weet het niet|weet niet|geen voorstel|"
    r"nee geen|nee hoor|nee dank u|nee bedankt|nee merci|overslaan|sla over|-)\s*[.!]*\s*$", re.IGNORECASE)
ANONYMOUS = re.compile(r"\banoniem\w*\b", re.IGNORECASE)
NAMED = re.compile(r"\b(contact\w*|gegevens|naam|mail\w*|bel\w*|telefoon\w*|antwoord)\b", re.IGNORECASE)
WORD = re.compile(r"\w+")


def is_questionlike(text: str) -> bool:
    return "?" in text or bool(_QUESTION_START.match(text))


def starts_with_yes(text: str) -> bool:
    """'ja, annuleer' is a yes at a confirmation question, whatever the NLU made of it."""
    return not text.startswith("/") and bool(_YES.match(text)) and not _NO.match(text)


def yes_no_text(text: str) -> Optional[bool]:
    """True for a message that starts with "ja", False for "nee", else None (button payloads: None)."""
    if text.startswith("/"):
        return None
    return True if _YES.match(text) else False if _NO.match(text) else None


def word_count(text: str) -> int:
    return len(WORD.findall(text))


# -- names and contact details -------------------------------------------------------------------------
_QUESTION_WORDS = re.compile(
    r"\b(wat|hoe|waar|wanneer|waarom|welke?|hoeveel|moet|kan|kunt|kunnen|mag|wil|ik|mijn|jullie|is|zijn|"
    r"heb|hebt|niet|geen|stop|afspraak|graag|aub)\b", re.IGNORECASE)
_EMAIL_IN_TEXT = re.compile(r"[^\s<>@,;:]+@[^\s<>@,;:]+\.[^\s<>@,;:]+")
_PHONE_IN_TEXT = re.compile(r"\+?\(?\d[\d\s()./-]{6,}\d")


def clean_name(text: str, limit: int = 120) -> Optional[str]:
    """A plausible name as typed (spaces tidied), or None: 2..limit characters, letters, no digits
    or '@', at most 8 words."""
    name = " ".join((text or "").split()).strip(" .,!")
    if not 2 <= len(name) <= limit or not any(ch.isalpha() for ch in name):
        return None
    if any(ch.isdigit() for ch in name) or "@" in name or "/" in name or len(name.split()) > 8:
        return None
    return name


def looks_like_name(text: str) -> bool:
    """Stricter than ``clean_name``: also no question mark and no everyday words ("wat", "moet", ...),
    so a question typed at the name question is answered instead of becoming a name."""
    return clean_name(text) is not None and "?" not in text and not _QUESTION_WORDS.search(text)


def contact_candidate(text: str) -> str:
    """The phone number or e-mail address inside a sentence ("mijn nummer is 0470 12 34 56")."""
    email = _EMAIL_IN_TEXT.search(text or "")
    if email:
        return email.group(0).strip(".")
    phone = _PHONE_IN_TEXT.search(text or "")
    return phone.group(0) if phone else (text or "")


def is_contact_text(text: str) -> bool:
    try:
        normalise_contact(contact_candidate(text))
    except InvalidContact:
        return False
    return True


# -- references ----------------------------------------------------------------------------------------
def find_reference(text: str) -> Optional[str]:
    """'GNT-7K3Q9', 'gnt 7k3q9', '7K3Q9' (alone) or a sentence with 'GNT-…' -> canonical reference."""
    whole = normalise_reference(text or "")
    if whole:
        return whole
    match = re.search(r"\bGNT[\s_-]*([0-9A-Za-z]{5})\b", text or "", re.IGNORECASE)
    return normalise_reference(match.group(1)) if match else None


def find_kafka_reference(text: str) -> Optional[str]:
    """'KAFKA-2026-000123' anywhere in the text, canonical; else None."""
    try:
        return parse_reference(text or "")
    except InvalidReference:
        return None


# -- which offered moment --------------------------------------------------------------------------------
_ORDINALS = {"eerste": 1, "1ste": 1, "1e": 1, "tweede": 2, "2de": 2, "2e": 2, "derde": 3, "3de": 3, "3e": 3,
             "vierde": 4, "4de": 4, "4e": 4, "vijfde": 5, "5de": 5, "5e": 5}
_NUMBER_CHOICE = re.compile(r"^\s*(?:(?:nummer|nr\.?|optie|keuze)\s*)?(\d{1,2})\s*[.)]?\s*$", re.IGNORECASE)
_CLOCK = re.compile(r"\b([01]?\d|2[0-3])\s*(?:(?:u|uur|h)\s*([0-5]\d)?|[:.]([0-5]\d))(?!\d)")
_WEEKDAYS = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")


def is_number_choice(text: str) -> bool:
    """'2', 'nummer 2', 'optie 3.' : a pick by number (maybe out of range)."""
    return bool(_NUMBER_CHOICE.match(text))


def match_choice(raw: str, offered: Sequence[Slot]) -> Optional[Slot]:
    """The offered slot a citizen picked: a button (ISO start), '2', 'de tweede', 'de laatste', '10u30'."""
    value = (raw or "").strip()
    if not offered or not value:
        return None
    try:
        moment: Optional[datetime] = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is not None:
        return next((slot for slot in offered if slot.starts_at == moment), None)
    number = _NUMBER_CHOICE.match(value)
    if number:
        index = int(number.group(1))
        return offered[index - 1] if 1 <= index <= len(offered) else None
    text = value.lower()
    words = re.findall(r"\w+", text)
    if "laatste" in words:
        return offered[-1]
    for word in words:
        if word in _ORDINALS and _ORDINALS[word] <= len(offered):
            return offered[_ORDINALS[word] - 1]
    clocks: List[time] = [time(int(h), int(m1 or m2 or 0)) for h, m1, m2 in _CLOCK.findall(text)]
    if not clocks:
        at = re.search(r"\bom\s+([01]?\d|2[0-3])\b", text)
        clocks = [time(int(at.group(1)))] if at else []
    weekdays = [i for i, day in enumerate(_WEEKDAYS) if day in words]
    for slot in offered:
        local = slot.starts_at
        if clocks and local.time().replace(tzinfo=None) in clocks and (not weekdays or local.weekday() in weekdays):
            return slot
    return None


def is_stale_button(raw: str) -> bool:
    """A moment button (ISO time) that is not in the latest list: from an older message."""
    try:
        datetime.fromisoformat((raw or "").strip())
    except ValueError:
        return False
    return True


# -- KAFKA answers ----------------------------------------------------------------------------------------
def problem_error(text: str) -> Optional[str]:
    """Why a KAFKA description cannot be filed (the register's own rules and Dutch messages), or None."""
    if len(text) > MAX_PROBLEM_CHARS:
        return TooLong("problem", MAX_PROBLEM_CHARS).citizen_message
    if "\x00" in text or word_count(text) < MIN_PROBLEM_WORDS or text.lstrip().startswith("/"):
        return TooShort("problem", MIN_PROBLEM_WORDS).citizen_message
    return None


def quote(text: str, limit: int = 300) -> str:
    """The citizen's words on one line, shortened for a summary."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
