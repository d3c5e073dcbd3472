"""Turn a citizen's Dutch answer to "Wanneer past het u?" into a structured date request.

``dateparser`` does the calendar work (weekdays, "morgen", "14 december", "14/12"). It misses a few
things Flemish citizens say all the time, so a small pre-normalisation handles those first:
times of day ("na 15u", "'s middags", "voormiddag"), "zo snel mogelijk", "de 3de",
"volgende dinsdag", "volgende week" and compounds such as "dinsdagvoormiddag".
"Now" is always passed in, so every answer can be tested against a fixed moment.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Any, Dict, List, Optional, Tuple, Union

import dateparser
from dateparser.search import search_dates

from bot.core.clock import CITY_TZ

BRUSSELS = CITY_TZ  # the one definition is bot/core/clock.py

WEEKDAYS_NL = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
MONTHS_NL = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
             "september", "oktober", "november", "december")

NOON = time(12, 0)
EVENING = time(17, 0)

#: A year-less date that dateparser pushes to next year although it passed at most this many days
#: ago ("24 november" on 25 November) is reported as "in the past" rather than booked a year ahead.
RECENTLY_PASSED_DAYS = 31

_DATEPARSER_SETTINGS: Dict[str, Any] = {
    "PREFER_DATES_FROM": "future",
    "PREFER_DAY_OF_MONTH": "first",
    "DATE_ORDER": "DMY",
    "TIMEZONE": "Europe/Brussels",
    "RETURN_AS_TIMEZONE_AWARE": False,
}


class DateErrorKind(str, Enum):
    unparseable = "unparseable"
    past = "past"


@dataclass(frozen=True)
class DateRequest:
    """What the citizen asked for; every field is optional, so "na 15u" alone is a valid request.

    ``day``: exactly this day. ``from_day``: not before this day ("volgende week").
    ``after``/``before``: the appointment starts at or after / strictly before this time.
    ``asap``: the citizen explicitly asked for the first free moment.
    """

    day: Optional[date] = None
    after: Optional[time] = None
    before: Optional[time] = None
    asap: bool = False
    from_day: Optional[date] = None

    def to_dict(self) -> Dict[str, Any]:
        """JSON-friendly form, to keep the request in a Rasa slot between turns."""
        return {
            "day": self.day.isoformat() if self.day else None,
            "after": self.after.isoformat("minutes") if self.after else None,
            "before": self.before.isoformat("minutes") if self.before else None,
            "asap": self.asap,
            "from_day": self.from_day.isoformat() if self.from_day else None,
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "DateRequest":
        return cls(
            day=date.fromisoformat(data["day"]) if data.get("day") else None,
            after=time.fromisoformat(data["after"]) if data.get("after") else None,
            before=time.fromisoformat(data["before"]) if data.get("before") else None,
            asap=bool(data.get("asap")),
            from_day=date.fromisoformat(data["from_day"]) if data.get("from_day") else None,
        )

    def accepts(self, moment: time) -> bool:
        """Whether a slot starting at ``moment`` fits the time-of-day wishes."""
        return (self.after is None or moment >= self.after) and (self.before is None or moment < self.before)


@dataclass(frozen=True)
class DateParseError:
    kind: DateErrorKind
    text: str

    @property
    def message_nl(self) -> str:
        if self.kind is DateErrorKind.past:
            return "Die dag is al voorbij. Kies een dag vanaf vandaag."
        return ("Ik begrijp die datum niet. Probeer het zo: 'morgen', 'volgende dinsdag', "
                "'14 december' of 'zo snel mogelijk'. U kunt ook een uur geven, zoals 'na 14 uur'.")


# -- pre-normalisation --------------------------------------------------------------------------
_WD = "|".join(WEEKDAYS_NL)
_MONTH_START = r"(?:jan|feb|maa|apr|mei|jun|jul|aug|sep|okt|nov|dec)"
_DAYPART_SUFFIX = {"voormiddag": "voormiddag", "ochtend": "voormiddag", "morgen": "voormiddag",
                   "vroeg": "voormiddag", "namiddag": "namiddag", "middag": "namiddag", "avond": "avond"}
_COMPOUND = re.compile(rf"\b(overmorgen|morgen|vandaag|{_WD})(voormiddag|namiddag|middag|ochtend|morgen|avond|vroeg)\b")
_VAN_COMPOUND = re.compile(r"\bvan(morgen|ochtend|voormiddag|middag|namiddag|avond)\b")

# "volgende dinsdag" is ambiguous in Dutch; we read it as the Tuesday of next week (like "volgende
# week dinsdag"), and "deze/komende/aanstaande dinsdag" as the first Tuesday after today. The
# assistant always repeats the date it understood, so the citizen can correct it.
_NEXT_WEEK_DAY = re.compile(rf"\b(?:volgende|komende) week (?:op )?({_WD})\b"
                            rf"|\b({_WD}) (?:van )?(?:de )?(?:volgende|komende) week\b|\bvolgende ({_WD})\b")
_WEEKDAY_MODIFIER = re.compile(rf"\b(?:komende|aanstaande|eerstvolgende|deze)\s+({_WD})\b")
_WEEK = re.compile(r"\b(?:(volgende|komende)|(deze|later deze)) week\b")

_ASAP = re.compile(
    r"\b(?:zo\s+)?(?:snel|vlug|rap|spoedig|gauw)\s+(?:als\s+)?mogelijk\b"
    r"|\beerst\s*e?\s*(?:mogelijke|beschikbare|vrije|volgende)(?:\s+(?:moment|datum|dag|afspraak|plaats|plek))?\b"
    r"|\beerstvolgende(?:\s+(?:vrije\s+)?(?:moment|datum|dag|afspraak|plaats|plek))?\b"
    r"|\bhet\s+eerste\s+(?:vrije\s+)?moment\b|\basap\b|\bzsm\b|\bmaakt\s+(?:mij\s+|me\s+)?niet\s+uit\b"
    r"|\bom\s+het\s+even\b|\bwanneer\s+(?:dan\s+)?ook\b"
)

# A clock time with a unit or minutes ("15u", "15 uur", "15u30", "15:30", "15.30", "15h"); after a
# keyword also a bare hour ("na 15"), unless a month or date separator follows ("na 15 december").
# Without a keyword "14.12" is a date, so a dotted time then needs a unit ("14.30 uur").
_CLOCK = r"\d{1,2}(?:\s*(?:u|uur|h)(?:\s*\d{2})?\b|[:.]\d{2}(?:\s*(?:u|uur|h)\b)?)"
_CLOCK_STRICT = r"\d{1,2}(?:\s*(?:u|uur|h)(?:\s*\d{2})?\b|:\d{2}(?:\s*(?:u|uur|h)\b)?|\.\d{2}\s*(?:u|uur|h)\b)"
_CLOCK_OR_BARE = rf"(?:{_CLOCK}|\d{{1,2}}\b(?!\s*(?:[/.-]\s*\d|{_MONTH_START}|ste\b|de\b|e\b)))"
_CLOCK_PARTS = re.compile(r"(\d{1,2})\s*(?:(?:u|uur|h)\s*(\d{2})?|[:.](\d{2})\s*(?:u|uur|h)?)?")
_BETWEEN = re.compile(rf"\btussen\s+({_CLOCK_OR_BARE})\s+en\s+({_CLOCK_OR_BARE})")
_AFTER = re.compile(rf"\b(?:na|vanaf|later dan|niet voor|ten vroegste(?: om)?)\s+({_CLOCK_OR_BARE})")
_BEFORE = re.compile(rf"\b(?:voor|tegen|ten laatste(?: om)?|uiterlijk(?: om)?|niet na|niet later dan)\s+({_CLOCK_OR_BARE})")
_AT = re.compile(rf"\b(?:om|rond|omstreeks)\s+({_CLOCK_OR_BARE})|\b({_CLOCK_STRICT})")

_S = r"(?:'s|\bs)\s*"
_MORNING = re.compile(rf"\b(?:in de |tijdens de )?voormiddag\b|{_S}(?:morgens|ochtends|voormiddags)\b|\b(?:in de )?ochtend\b"
                      r"|\bvoor de (?:middag|noen)\b")
_AFTERNOON = re.compile(rf"\b(?:in de |tijdens de )?namiddag\b|{_S}(?:middags|namiddags)\b|\bna de (?:middag|noen)\b"
                        r"|\b(?:in de |rond de )?middag\b")
_EVENING = re.compile(rf"{_S}avonds\b|\b(?:in de )?avond\b")

_ORDINAL = re.compile(rf"\b(?:op\s+)?(?:de\s+)?(\d{{1,2}})\s*(?:ste|de|e)\b(?!\s*{_MONTH_START})")
_ORDINAL_BEFORE_MONTH = re.compile(rf"\b(\d{{1,2}})\s*(?:ste|de|e)\b(?=\s*{_MONTH_START})")
_DE_NUMBER = re.compile(rf"\b(?:op\s+)?de\s+(\d{{1,2}})\b(?!\s*(?:[/.-]\s*\d|{_MONTH_START}))")
_BARE_NUMBER = re.compile(r"^\s*(\d{1,2})\s*$")
_DOTTED_DATE = re.compile(r"\b(\d{1,2})\.(\d{1,2})(?:\.(\d{2,4}))?\b")
_FROM_PREFIX = re.compile(r"^\s*(vanaf|na)\s+")
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b|\d{1,2}\s*[/.-]\s*\d{1,2}\s*[/.-]\s*\d{2,4}")

#: Words that carry no date meaning in an answer like "graag op dinsdag" or "liefst morgen aub".
_FILLER = frozenset(
    ["graag", "liefst", "het", "op", "de", "in", "om", "ergens", "ik", "wil", "wel", "kan", "kunnen", "is", "dat", "ja", "maar", "dan", "bij", "voorkeur", "mogelijk", "moment", "een", "afspraak", "aub", "alstublieft", "svp", "dank", "dankje", "bedankt", "u", "je", "pas", "past", "me", "mij", "best", "ook", "en", "als", "zeker", "komen", "langskomen", "langs", "nog", "misschien", "oke", "ok"]
)


def now_in_brussels() -> datetime:
    return datetime.now(BRUSSELS)


def parse_date_request(text: str, now: Optional[datetime] = None) -> Union[DateRequest, DateParseError]:
    """Parse a Dutch date/time wish; ``now`` (aware, or naive Brussels time) defaults to the real clock."""
    now = _in_brussels(now) if now else now_in_brussels()
    today = now.date()
    work = _normalise(text)
    if not work:
        return DateParseError(DateErrorKind.unparseable, text)

    day: Optional[date] = None
    from_day: Optional[date] = None

    match = _NEXT_WEEK_DAY.search(work)
    if match:
        weekday = WEEKDAYS_NL.index(next(g for g in match.groups() if g))
        day = _monday(today) + timedelta(days=7 + weekday)
        work = _cut(work, match)
    work = _WEEKDAY_MODIFIER.sub(r"\1", work)

    asap = False
    match = _ASAP.search(work)
    if match:
        asap, work = True, _cut(work, match)

    try:
        after, before, work = _take_times(work)
    except ValueError:
        return DateParseError(DateErrorKind.unparseable, text)
    if after and before and after >= before:
        return DateParseError(DateErrorKind.unparseable, text)

    match = _WEEK.search(work)
    if match:
        from_day = _monday(today) + timedelta(days=7) if match.group(1) else today
        work = _cut(work, match)

    if day is None and from_day is None:
        try:
            day, from_day, work = _take_day(work, text, now)
        except ValueError:
            return DateParseError(DateErrorKind.unparseable, text)

    if _meaningful(work):
        return DateParseError(DateErrorKind.unparseable, text)
    if day is None and from_day is None and not (asap or after or before):
        return DateParseError(DateErrorKind.unparseable, text)
    if day and day < today:
        return DateParseError(DateErrorKind.past, text)
    if from_day and from_day <= today:
        from_day = None  # "vanaf 1 november" on 25 November simply means: from now on
    return DateRequest(day=day, after=after, before=before, asap=asap, from_day=from_day)


def _take_day(work: str, original: str, now: datetime) -> Tuple[Optional[date], Optional[date], str]:
    """Find the day in what is left after times and wishes were taken out; ValueError if there is
    text that looks like a date but is not one ("31 november")."""
    today = now.date()
    work = _ORDINAL_BEFORE_MONTH.sub(r"\1", work)
    for pattern in (_ORDINAL, _DE_NUMBER, _BARE_NUMBER):
        match = pattern.search(work)
        if match:
            return _day_of_month(int(match.group(1)), today), None, _cut(work, match)

    is_from = _FROM_PREFIX.match(work)
    candidate = " ".join(w for w in work[is_from.end():].split() if w not in _FILLER) if is_from else \
        " ".join(w for w in work.split() if w not in _FILLER)
    if not candidate:
        return None, None, ""
    found = _calendar_day(candidate, now)
    if found is None:
        raise ValueError(candidate)
    if not _YEAR.search(original):
        found = _year_less_fix(found, today)
    if is_from:
        return None, found + timedelta(days=1 if is_from.group(1) == "na" else 0), ""
    return found, None, ""


def _calendar_day(candidate: str, now: datetime) -> Optional[date]:
    """The day ``dateparser`` reads in ``candidate``: the whole text first, else the first date in it."""
    try:
        return date.fromisoformat(candidate)
    except ValueError:
        pass
    candidate = _DOTTED_DATE.sub(lambda m: "/".join(g for g in m.groups() if g), candidate)
    settings = {**_DATEPARSER_SETTINGS, "RELATIVE_BASE": now.replace(tzinfo=None)}
    parsed = dateparser.parse(candidate, languages=["nl"], settings=settings)
    if parsed is None:
        # Chatter around a date ("ik kan enkel op 14 december"): take the first date found, unless
        # numbers are left over, which means dateparser skipped the real date ("31 november").
        hits = search_dates(candidate, languages=["nl"], settings=settings) or []
        if hits and not re.search(r"\d", candidate.replace(hits[0][0], "", 1)):
            parsed = hits[0][1]
    return parsed.date() if parsed else None


def _year_less_fix(found: date, today: date) -> date:
    """dateparser moves a year-less date that equals today, or passed recently, to next year."""
    try:
        this_year = found.replace(year=today.year)
    except ValueError:  # 29 February
        return found
    if found.year == today.year + 1 and today - timedelta(days=RECENTLY_PASSED_DAYS) <= this_year <= today:
        return this_year
    return found


def _day_of_month(number: int, today: date) -> date:
    """ "de 3de": day 3 of this month if it is still to come (or today), else of the next month that has it."""
    if not 1 <= number <= 31:
        raise ValueError(number)
    year, month = today.year, today.month
    for _ in range(3):
        try:
            candidate = date(year, month, number)
        except ValueError:
            candidate = None
        if candidate and candidate >= today:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise ValueError(number)


def _take_times(work: str) -> Tuple[Optional[time], Optional[time], str]:
    """Take "tussen 10 en 12u", "na 15u", "voor 11 uur", "om 10u" and parts of the day out of ``work``."""
    after: Optional[time] = None
    before: Optional[time] = None
    match = _BETWEEN.search(work)
    if match:
        after, before = _clock(match.group(1)), _clock(match.group(2))
        work = _cut(work, match)
    for pattern, is_after in ((_AFTER, True), (_BEFORE, False), (_AT, True)):
        match = pattern.search(work)
        if match:
            found = _clock(next(g for g in match.groups() if g))
            if is_after:
                after = after or found
            else:
                before = before or found
            work = _cut(work, match)
    for pattern, start, end in ((_MORNING, None, NOON), (_AFTERNOON, NOON, None), (_EVENING, EVENING, None)):
        match = pattern.search(work)
        if match:
            after, before = after or start, before or end
            work = _cut(work, match)
    return after, before, work


def _clock(token: str) -> time:
    """'15u30' -> 15:30; ValueError for '25u' or '14:75'."""
    parts = _CLOCK_PARTS.fullmatch(token.strip())
    if not parts:
        raise ValueError(token)
    hour, minute_unit, minute_sep = parts.groups()
    return time(int(hour), int(minute_unit or minute_sep or 0))


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[\u2018\u2019`\u00b4]", "'", text.lower())
    text = re.sub(r"[?!,;()\"]", " ", text)
    text = re.sub(r"\.(?!\d)", " ", text)  # sentence dots, not "14.30" or "14.12"
    text = _VAN_COMPOUND.sub(lambda m: f"vandaag {_DAYPART_SUFFIX[m.group(1)]}", text)
    text = _COMPOUND.sub(lambda m: f"{m.group(1)} {_DAYPART_SUFFIX[m.group(2)]}", text)
    return " ".join(text.split())


def _cut(work: str, match: "re.Match[str]") -> str:
    return " ".join(f"{work[:match.start()]} {work[match.end():]}".split())


def _meaningful(work: str) -> List[str]:
    return [w for w in work.split() if w not in _FILLER]


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _in_brussels(moment: datetime) -> datetime:
    return moment.replace(tzinfo=BRUSSELS) if moment.tzinfo is None else moment.astimezone(BRUSSELS)


# -- Dutch formatting for messages to citizens ----------------------------------------------------
def format_day(day: date, with_year: bool = False) -> str:
    """'dinsdag 1 december' (B1, no abbreviations)."""
    text = f"{WEEKDAYS_NL[day.weekday()]} {day.day} {MONTHS_NL[day.month - 1]}"
    return f"{text} {day.year}" if with_year else text


def format_time(moment: time) -> str:
    """'9 uur', '13.30 uur' — the Flemish way of writing clock times."""
    return f"{moment.hour} uur" if moment.minute == 0 else f"{moment.hour}.{moment.minute:02d} uur"


def format_moment(moment: datetime, with_year: bool = False) -> str:
    """'dinsdag 1 december om 9.30 uur', in Brussels time."""
    local = _in_brussels(moment)
    return f"{format_day(local.date(), with_year)} om {format_time(local.time())}"
