"""What booking and moving an appointment share in the chat: the appointment book of this process,
checking a day wish, offering free moments, reading the pick, and the calendar file.

The policy (which moments, how a wish is read) is ``bot.core.slot_search`` and ``bot.core.choices``;
this module only talks to the citizen. Every database call runs in a worker thread and any database
failure ends in a Dutch apology with Gentinfo's phone number, never in a crash.
"""
from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple

import phonenumbers
from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.common import now
from bot.actions.tasks import (
    LEAVE_INTENTS,
    REQUESTED_SLOT,
    answer_for,
    apologise,
    change_request,
    channel_of,
    in_thread,
    latest_intent,
    log_failure,
    requested_slot,
    starts_with_yes,
    stop_button,
    text_channel,
    yes_no,
)
from bot.core import db
from bot.core.answers import payload
from bot.core.appointments import (
    AppointmentError,
    Booking,
    OutsideHorizon,
    Slot,
    SqlAppointmentBook,
    appointment_book_from_env,
    describe_slot,
    to_ics,
)
from bot.core.catalogue import Catalogue, Location, Product, get_catalogue
from bot.core.choices import BOOKING_CHANGES, CHANGE, is_contact_text, is_number_choice, is_stale_button, match_choice
from bot.core.dates import DateParseError, DateRequest, format_day, format_moment, parse_date_request
from bot.core.slot_search import ASAP, describe_request, merge_request, offered_slots, search_slots
from bot.core.texts import say

Result = Dict[str, Any]

_books: Dict[Tuple[str, Optional[str]], SqlAppointmentBook] = {}
_books_lock = threading.Lock()


def get_book() -> SqlAppointmentBook:
    """The appointment book on the configured database, created once per process (per database URL,
    so that tests can point ``GENTINFO_DATABASE_URL`` elsewhere). A failure is not cached."""
    key = (db.database_url(), os.environ.get("GENTINFO_DB_SCHEMA") or None)
    with _books_lock:
        book = _books.get(key)
        if book is None:
            book = _books[key] = appointment_book_from_env()
        return book


def is_date_text(text: str) -> bool:
    return isinstance(parse_date_request(text, now()), DateRequest)


def button(key: str, channel: Optional[str], payload_text: str) -> Dict[str, str]:
    return {"title": say(key, channel), "payload": payload_text}


def change_button(key: str, channel: Optional[str], detail: str) -> Dict[str, str]:
    return button(key, channel, payload("change_detail", detail=detail))


def asap_button(channel: Optional[str]) -> Dict[str, str]:
    return button("appointments.button_asap", channel, payload("choose_option", option=ASAP))


# -- a day wish ----------------------------------------------------------------------------------------
async def check_request(request: DateRequest, product_id: Optional[str], location_id: Optional[str],
                        dispatcher: CollectingDispatcher, channel: Optional[str] = None) -> Optional[Result]:
    """The request to offer slots for (``to_dict``), or None after telling the citizen why not."""
    if not product_id or not location_id:
        return request.to_dict()  # checked once the product and place are known
    try:
        book = await in_thread(get_book)
        if request.day:
            reason = book.closed_reason(location_id, request.day)
            if reason:
                dispatcher.utter_message(text=say("appointments.closed_choose_other_day", channel, reason=reason))
                return None
        slots, used, note = await in_thread(search_slots, book, product_id, location_id, request)
    except AppointmentError as error:  # OutsideHorizon included
        dispatcher.utter_message(text=error.message_nl)
        return None
    except Exception as error:  # database down: apologise, the form asks again
        log_failure("free slots", error)
        apologise(dispatcher, "appointments.failed_searching")
        return None
    if not slots:
        _, last_day = book.window()
        dispatcher.utter_message(text=say("appointments.nothing_free_until", channel, day=format_day(last_day)))
        return None
    if note:
        dispatcher.utter_message(text=note)
    return used.to_dict()


async def check_date_text(raw: str, product_id: Optional[str], location_id: Optional[str],
                          dispatcher: CollectingDispatcher, current: Optional[Result] = None,
                          channel: Optional[str] = None) -> Optional[Result]:
    text = say("appointments.asap_words") if raw == ASAP else raw
    parsed = parse_date_request(text, now())
    if isinstance(parsed, DateParseError):
        dispatcher.utter_message(text=parsed.message_nl)
        return None
    base = DateRequest.from_dict(current) if isinstance(current, dict) else None
    return await check_request(merge_request(parsed, base), product_id, location_id, dispatcher, channel)


# -- the pick -----------------------------------------------------------------------------------------
def slot_looks_valid(offered_name: str) -> Any:
    """For ``Field.looks_valid``: a pick from the offered list, or a new day."""
    def looks_valid(text: str, tracker: Tracker) -> bool:
        return match_choice(text, offered_slots(tracker.get_slot(offered_name))) is not None or is_date_text(text)
    return looks_valid


async def choose_slot(raw: Any, tracker: Tracker, dispatcher: CollectingDispatcher, *, slot_name: str,
                      date_name: str, offered_name: str, product_id: Optional[str],
                      location_id: Optional[str]) -> Result:
    """Validate the answer to "which moment?": a slot, a new day/time wish, or a friendly retry."""
    if isinstance(raw, dict):
        return {slot_name: raw}
    channel = text_channel(tracker)
    offered = offered_slots(tracker.get_slot(offered_name))
    text = str(raw)
    chosen = match_choice(text, offered)
    if chosen is not None:
        return {slot_name: chosen.to_dict()}
    if is_stale_button(text):
        dispatcher.utter_message(text=say("appointments.stale_moment", channel))
        return {slot_name: None}
    if is_number_choice(text) and offered:
        dispatcher.utter_message(text=say("appointments.number_out_of_range", channel, count=len(offered)))
        return {slot_name: None}
    if text == ASAP or is_date_text(text):
        wish = await check_date_text(text, product_id, location_id, dispatcher, tracker.get_slot(date_name), channel)
        return {date_name: wish, slot_name: None} if wish else {slot_name: None}
    key = "appointments.pick_from_list_numbered" if offered else "appointments.pick_from_list"
    dispatcher.utter_message(text=say(key, channel, count=len(offered)))
    return {slot_name: None}


async def offer_slots(dispatcher: CollectingDispatcher, tracker: Tracker, *, product_id: str, location_id: str,
                      date_name: str, offered_name: str, exclude: Optional[datetime] = None) -> List[EventType]:
    """Ask "which moment?" with the nearest free slots as buttons; remember what was offered.

    The moments are listed once: as buttons (WhatsApp numbers them itself), and in the text only
    where buttons are not a numbered list already."""
    channel = text_channel(tracker)
    catalogue = get_catalogue()
    location = catalogue.location(location_id)
    raw = tracker.get_slot(date_name)
    request = DateRequest.from_dict(raw) if isinstance(raw, dict) else DateRequest(asap=True)
    try:
        book = await in_thread(get_book)
        slots, used, note = await in_thread(search_slots, book, product_id, location_id, request)
    except OutsideHorizon as error:
        slots, used, note = [], request, error.message_nl
    except Exception as error:  # database down: apologise and end the form
        log_failure("free slots", error)
        apologise(dispatcher, "appointments.failed_searching")
        return [ActiveLoop(None), SlotSet(REQUESTED_SLOT, None)]
    if exclude is not None:
        slots = [slot for slot in slots if slot.starts_at != exclude]
    intro = f"{note}\n" if note else ""
    if not slots:
        wish = describe_request(request)
        dispatcher.utter_message(
            text=intro + say("appointments.no_free_moment", channel, wish=f"{wish} " if wish else ""),
            buttons=[asap_button(channel), stop_button(channel)])
        return [SlotSet(offered_name, [])]
    wish = describe_request(used)
    lines = "\n".join(f"{n}. {describe_slot(slot, catalogue)}" for n, slot in enumerate(slots, 1))
    dispatcher.utter_message(
        text=intro + say("appointments.offer", channel, where=f" in {location.name}" if location else "",
                         wish=f" {wish}" if wish else "", lines=lines),
        buttons=offer_buttons(slots, catalogue, channel))
    return [SlotSet(offered_name, [slot.to_dict() for slot in slots])]


def offer_buttons(slots: List[Slot], catalogue: Catalogue, channel: Optional[str] = None) -> List[Dict[str, str]]:
    buttons = [{"title": describe_slot(slot, catalogue), "payload": payload("choose_option", option=slot.starts_at.isoformat())}
               for slot in slots]
    return buttons + [change_button("appointments.button_other_day", channel, "day"), stop_button(channel)]


def confirmation_answer(tracker: Tracker, slot: str, yes_intents: Tuple[str, ...] = ()) -> Result:
    """At a summary: True (ja), False (nee), 'change:<field>', or text (maybe a new day or number)."""
    if requested_slot(tracker) != slot:
        return {}
    field = change_request(tracker, BOOKING_CHANGES)
    if field:
        return {slot: CHANGE + field}
    if starts_with_yes(tracker):
        return {slot: True}
    if latest_intent(tracker) in LEAVE_INTENTS:
        return {}
    answer = yes_no(tracker, yes_intents)
    if answer is not None:
        return {slot: answer}
    value = answer_for(tracker, slot, looks_valid=lambda text: is_contact_text(text) or is_date_text(text))
    return {} if value is None else {slot: value}


# -- showing a booking ------------------------------------------------------------------------------------
def show_contact(value: Optional[str]) -> str:
    if not value or "@" in value:
        return value or ""
    try:
        return phonenumbers.format_number(phonenumbers.parse(value, "BE"), phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        return value


def contact_kwargs(value: str) -> Dict[str, str]:
    return {"email": value} if "@" in value else {"phone": value}


def calendar_filename(booking: Booking) -> str:
    """The name of the calendar file: the same in the payload and in every sentence that mentions it."""
    return f"afspraak-{booking.reference}.ics"


def ics_message(booking: Booking, catalogue: Catalogue) -> Dict[str, Any]:
    """The calendar file as a custom payload (web chat: download; Telegram: a document)."""
    return {"type": "ics", "filename": calendar_filename(booking), "mime_type": "text/calendar",
            "content": to_ics(booking, catalogue)}


#: Channels that cannot deliver the calendar file: WhatsApp media must be a public URL, so there the
#: text alone carries the details. (Web chat: a download link; Telegram: a document; REST: the payload.)
NO_CALENDAR_CHANNELS = ("whatsapp",)


def send_calendar(dispatcher: CollectingDispatcher, tracker: Tracker, booking: Booking, catalogue: Catalogue,
                  key: str) -> str:
    """Send the .ics where the channel delivers it; the sentence about it (``key``) there, else ''."""
    if channel_of(tracker.sender_id) in NO_CALENDAR_CHANNELS:
        return ""
    dispatcher.utter_message(json_message=ics_message(booking, catalogue))
    return say(key, text_channel(tracker), filename=calendar_filename(booking)) + " "


def booking_lines(booking: Booking, catalogue: Catalogue, channel: Optional[str] = None) -> str:
    product, location = catalogue.product(booking.product_id), catalogue.location(booking.location_id)
    return say("appointments.booking_lines", channel, product=product.name if product else booking.product_id,
               when=format_moment(booking.starts_at),
               where=f"{location.name}, {location.address}" if location else booking.location_id)


def booking_record(booking: Booking) -> Dict[str, Any]:
    return {"reference": booking.reference, "product_id": booking.product_id, "location_id": booking.location_id,
            "starts_at": booking.starts_at.isoformat(), "ends_at": booking.ends_at.isoformat(),
            "status": booking.status.value}


def managed_booking(tracker: Tracker) -> Tuple[Optional[Product], Optional[Location], Optional[datetime]]:
    record = tracker.get_slot("manage_booking") or {}
    catalogue = get_catalogue()
    starts = record.get("starts_at")
    return (catalogue.product(record.get("product_id") or ""), catalogue.location(record.get("location_id") or ""),
            datetime.fromisoformat(starts) if starts else None)


def not_bookable_text(product: Product, channel: Optional[str] = None) -> str:
    if product.online:
        how = say("appointments.not_bookable_online", channel, online=product.online)
    elif product.locations:
        how = say("appointments.not_bookable_walk_in", channel, desk=product.desk)
    else:
        how = say("appointments.not_bookable_elsewhere", channel, desk=product.desk)
    return say("appointments.not_bookable", channel, product=product.in_sentence, how=how)
