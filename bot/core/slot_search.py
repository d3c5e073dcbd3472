"""Which free moments the assistant offers for a day/time wish: the slot-search policy.

At most ``OFFER_LIMIT`` moments, nearest first. A day with fewer than ``MIN_OFFER`` free moments also
shows the next days; a wish without any free moment falls back to the first moments after it (the
next day with the same hours, then any hour), with a note that says so. Kept apart from the actions
so that the policy is tested against a real appointment book without a Rasa tracker.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator, List, Optional

from bot.core.appointments import OutsideHorizon, Slot, SqlAppointmentBook
from bot.core.dates import DateRequest, format_day, format_time
from bot.core.texts import say

#: How many free slots are offered at once (nearest first).
OFFER_LIMIT = 5
#: Fewer free slots on the chosen day: the next days are added.
MIN_OFFER = 3
#: The option value of the "Zo snel mogelijk" button.
ASAP = "asap"


@dataclass(frozen=True)
class Search:
    """What was found: the slots, the wish they answer, and a note when that is not the citizen's own."""

    slots: List[Slot]
    used: DateRequest
    note: Optional[str] = None

    def __iter__(self) -> Iterator[Any]:  # (slots, used, note) = search_slots(...)
        return iter((self.slots, self.used, self.note))


def describe_request(request: DateRequest) -> str:
    """'op dinsdag 1 december na 14 uur', 'vanaf maandag 30 november', '' (as soon as possible)."""
    parts = []
    if request.day:
        parts.append(say("appointments.wish_on", day=format_day(request.day)))
    elif request.from_day:
        parts.append(say("appointments.wish_from_day", day=format_day(request.from_day)))
    if request.after and request.before:
        parts.append(say("appointments.wish_between", after=format_time(request.after),
                         before=format_time(request.before)))
    elif request.after:
        parts.append(say("appointments.wish_after", after=format_time(request.after)))
    elif request.before:
        parts.append(say("appointments.wish_before", before=format_time(request.before)))
    return " ".join(parts)


def merge_request(new: DateRequest, current: Optional[DateRequest]) -> DateRequest:
    """Only a time ("na 14 uur") while a day is already chosen keeps that day."""
    if current and not (new.day or new.from_day or new.asap) and (new.after or new.before):
        return DateRequest(day=current.day, from_day=current.from_day, after=new.after, before=new.before)
    return new


def same_day(slot: Optional[Slot], request: Optional[DateRequest]) -> Optional[DateRequest]:
    """'Ander uur': the day of the chosen slot (or of the request), without the earlier time wish."""
    if slot is not None:
        return DateRequest(day=slot.starts_at.date())
    if request is not None:
        return DateRequest(day=request.day, from_day=request.from_day, asap=request.asap)
    return None


def search_slots(book: SqlAppointmentBook, product_id: str, location_id: str, request: DateRequest) -> Search:
    """Free slots for the request, nearest first; when there are none, the first ones after it (with
    a note saying so). OutsideHorizon when the request itself lies outside the bookable period."""
    slots = book.free_slots(product_id, location_id, request, limit=OFFER_LIMIT)
    if request.day and 0 < len(slots) < MIN_OFFER:
        # few moments left that day: add the next ones with the same wish ("vanaf" that day)
        wider = DateRequest(from_day=request.day, after=request.after, before=request.before)
        try:
            more = book.free_slots(product_id, location_id, wider, limit=OFFER_LIMIT)
        except OutsideHorizon:
            more = []
        if len(more) > len(slots):
            return Search(more, wider)
    if slots:
        return Search(slots, request)
    for alternative in _alternatives(request):
        try:
            found = book.free_slots(product_id, location_id, alternative, limit=OFFER_LIMIT)
        except OutsideHorizon:
            continue
        if found:
            wish = describe_request(request)
            note = say("appointments.none_then_later", wish=wish) if wish else say("appointments.none_then_later_asap")
            return Search(found, alternative, note)
    return Search([], request)


def _alternatives(request: DateRequest) -> List[DateRequest]:
    """Where to look when the wish itself has no free moment, in this order."""
    alternatives: List[DateRequest] = []
    if request.day:
        later = request.day + timedelta(days=1)
        alternatives += [DateRequest(from_day=later, after=request.after, before=request.before),
                         DateRequest(from_day=later)]
    if request.after or request.before:
        alternatives.append(DateRequest(from_day=request.from_day, asap=request.asap))
    return alternatives


def offered_slots(raw: Any) -> List[Slot]:
    """The slots a form remembered as offered (a list of ``Slot.to_dict``)."""
    return [Slot.from_dict(item) for item in (raw or [])]


def slot_or_none(raw: Any) -> Optional[Slot]:
    """A remembered slot, or None when the slot value is empty or unreadable."""
    if not isinstance(raw, dict):
        return None
    try:
        return Slot.from_dict(raw)
    except (KeyError, TypeError, ValueError):
        return None

