"""Appointments in the chat: book one (``appointment_form``), look it up, move or cancel it
(``appointment_manage_form``).

Booking: product -> location (skipped when there is only one) -> day ("zo snel mogelijk", "volgende
dinsdag na 14 uur") -> one of the free slots offered as buttons -> name -> phone or e-mail -> summary
-> "ja, bevestig". The booking is stored by ``validate_appointment_confirmed`` (durably, before the
assistant says it is confirmed); ``action_appointment_booked`` then sends the confirmation, what to
bring, the address and the calendar file. Look-up, moving and cancelling always need the reference
*and* the phone number or e-mail address the appointment was made with.

The appointment book is ``bot.core.appointments`` (one per action-server process, see ``get_book``);
every database call runs in a worker thread and any database failure ends in a Dutch apology with
Gentinfo's phone number, never in a crash.
"""
from __future__ import annotations

import os
import re
import threading
from datetime import datetime, time, timedelta
from typing import Any, Dict, List, Optional, Text, Tuple

import phonenumbers
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import metrics
from bot.actions.common import latest_entity, latest_intent, now
from bot.actions.tasks import (
    CHANGE, LEAVE_INTENTS, QUESTION_INTENTS, REQUESTED_SLOT, STOP_BUTTON, STOP_HINT, answer_for, apologise,
    change_field, change_request, channel_of, clean_name, contact_candidate, in_thread, is_activation,
    find_product, is_change, is_questionlike, keep, latest_text, log_failure, looks_like_name, requested_slot,
    reset_values, set_in_this_run, starts_with_yes, yes_no,
)
from bot.core import db
from bot.core.answers import payload
from bot.core.appointments import (
    AlreadyCancelled, AppointmentError, AppointmentPassed, Booking, BookingStatus, ContactMismatch, InvalidName,
    InvalidSlot, NotBookable, OutsideHorizon, Slot, SlotTaken, SqlAppointmentBook, UnknownReference,
    appointment_book_from_env, booking_summary_nl, describe_slot, normalise_reference, to_ics,
)
from bot.core.catalogue import Catalogue, Location, Product, get_catalogue
from bot.core.contact import InvalidContact, normalise_contact
from bot.core.dates import DateParseError, DateRequest, format_day, format_moment, format_time, parse_date_request

#: How many free slots are offered at once (nearest first).
OFFER_LIMIT = 5
#: Fewer free slots on the chosen day: the next days are added.
MIN_OFFER = 3
#: Failed reference + contact checks before the look-up form gives up (and points to Gentinfo).
MAX_LOOKUP_ATTEMPTS = 3
#: Offered first when the citizen has not said which product.
POPULAR_BOOKABLE = ("reispas", "identiteitskaart", "kids_id", "rijbewijs", "adreswijziging")
ASAP = "asap"

BOOKING_SLOTS = ["appointment_product", "appointment_location", "appointment_date", "appointment_slot",
                 "appointment_name", "appointment_contact", "appointment_confirmed"]
BOOKING_HELPERS = ["appointment_offered", "appointment_reference", "appointment_menu"]
MANAGE_SLOTS = ["manage_action", "manage_reference", "manage_contact"]
MANAGE_STEPS = ["manage_date", "manage_slot", "manage_confirmed"]
MANAGE_HELPERS = ["manage_offered", "manage_booking", "manage_outcome"]
MANAGE_ACTIONS = {"appointment_lookup": "lookup", "appointment_cancel": "cancel",
                  "appointment_reschedule": "reschedule"}

#: Typed corrections ("andere dag", "ander nummer") -> the answer to change. First match wins.
CHANGES = {
    "product": re.compile(r"\b(dienst|product|document)\b"),
    "location": re.compile(r"\b(plaats|locatie|kantoor|wijkkantoor|stadskantoor|adres)\b"),
    "time": re.compile(r"\b(uur|uren|tijdstip|tijd|moment)\b"),
    "day": re.compile(r"\b(dag|datum)\b"),
    "contact": re.compile(r"\b(nummer|telefoon\w*|gsm|e-?mail\w*|mail\w*|contact\w*)\b"),
    "name": re.compile(r"\bnaam\b"),
}

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


# -- reading answers -----------------------------------------------------------------------------------
_ORDINALS = {"eerste": 1, "1ste": 1, "1e": 1, "tweede": 2, "2de": 2, "2e": 2, "derde": 3, "3de": 3, "3e": 3,
             "vierde": 4, "4de": 4, "4e": 4, "vijfde": 5, "5de": 5, "5e": 5}
_NUMBER_CHOICE = re.compile(r"^\s*(?:(?:nummer|nr\.?|optie|keuze)\s*)?(\d{1,2})\s*[.)]?\s*$", re.IGNORECASE)
_CLOCK = re.compile(r"\b([01]?\d|2[0-3])\s*(?:(?:u|uur|h)\s*([0-5]\d)?|[:.]([0-5]\d))(?!\d)")
_WEEKDAYS = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")


def find_location(catalogue: Catalogue, text: str) -> Optional[Location]:
    return catalogue.location(text) or catalogue.find_location(text)


def is_date_text(text: str) -> bool:
    return isinstance(parse_date_request(text, now()), DateRequest)


def is_contact_text(text: str) -> bool:
    try:
        normalise_contact(contact_candidate(text))
    except InvalidContact:
        return False
    return True


def find_reference(text: str) -> Optional[str]:
    """'GNT-7K3Q9', 'gnt 7k3q9', '7K3Q9' (alone) or a sentence with 'GNT-…' -> canonical reference."""
    whole = normalise_reference(text or "")
    if whole:
        return whole
    match = re.search(r"\bGNT[\s_-]*([0-9A-Za-z]{5})\b", text or "", re.IGNORECASE)
    return normalise_reference(match.group(1)) if match else None


def match_choice(raw: str, offered: List[Slot]) -> Optional[Slot]:
    """The offered slot a citizen picked: a button (ISO start), '2', 'de tweede', 'de laatste', '10u30'."""
    value = (raw or "").strip()
    if not offered or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
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
    clocks = [time(int(h), int(m1 or m2 or 0)) for h, m1, m2 in _CLOCK.findall(text)]
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
    try:
        datetime.fromisoformat((raw or "").strip())
    except ValueError:
        return False
    return True


# -- dates and free slots ------------------------------------------------------------------------------
def describe_request(request: DateRequest) -> str:
    """'op dinsdag 1 december na 14 uur', 'vanaf maandag 30 november', '' (as soon as possible)."""
    parts = []
    if request.day:
        parts.append(f"op {format_day(request.day)}")
    elif request.from_day:
        parts.append(f"vanaf {format_day(request.from_day)}")
    if request.after and request.before:
        parts.append(f"tussen {format_time(request.after)} en {format_time(request.before)}")
    elif request.after:
        parts.append(f"vanaf {format_time(request.after)}")
    elif request.before:
        parts.append(f"voor {format_time(request.before)}")
    return " ".join(parts)


def merge_request(new: DateRequest, current: Optional[DateRequest]) -> DateRequest:
    """Only a time ("na 14 uur") while a day is already chosen keeps that day."""
    if current and not (new.day or new.from_day or new.asap) and (new.after or new.before):
        return DateRequest(day=current.day, from_day=current.from_day, after=new.after, before=new.before)
    return new


def search_slots(book: SqlAppointmentBook, product_id: str, location_id: str,
                 request: DateRequest) -> Tuple[List[Slot], DateRequest, Optional[str]]:
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
            return more, wider, None
    if slots:
        return slots, request, None
    wish = describe_request(request)
    alternatives: List[DateRequest] = []
    if request.day:
        later = request.day + timedelta(days=1)
        alternatives += [DateRequest(from_day=later, after=request.after, before=request.before),
                         DateRequest(from_day=later)]
    if request.after or request.before:
        alternatives.append(DateRequest(from_day=request.from_day, asap=request.asap))
    for alternative in alternatives:
        try:
            found = book.free_slots(product_id, location_id, alternative, limit=OFFER_LIMIT)
        except OutsideHorizon:
            continue
        if found:
            note = (f"Er is {wish} geen vrij moment meer." if wish else "Er is geen vrij moment meer op dat moment.")
            return found, alternative, f"{note} Dit zijn de eerste vrije momenten daarna."
    return [], request, None


async def check_request(request: DateRequest, product_id: Optional[str], location_id: Optional[str],
                        dispatcher: CollectingDispatcher) -> Optional[Dict[str, Any]]:
    """The request to offer slots for (``to_dict``), or None after telling the citizen why not."""
    if not product_id or not location_id:
        return request.to_dict()  # checked once the product and place are known
    try:
        book = await in_thread(get_book)
        if request.day:
            reason = book.closed_reason(location_id, request.day)
            if reason:
                dispatcher.utter_message(text=f"{reason} Kies een andere dag.")
                return None
        slots, used, note = await in_thread(search_slots, book, product_id, location_id, request)
    except OutsideHorizon as error:
        dispatcher.utter_message(text=error.message_nl)
        return None
    except AppointmentError as error:
        dispatcher.utter_message(text=error.message_nl)
        return None
    except Exception as error:  # noqa: BLE001 - database down: apologise, the form asks again
        log_failure("free slots", error)
        apologise(dispatcher, " bij het zoeken naar vrije momenten")
        return None
    if not slots:
        _, last_day = book.window()
        contact = get_catalogue().contact
        dispatcher.utter_message(
            text=f"Er is geen vrij moment meer tot en met {format_day(last_day)}. Probeer een andere plaats, "
                 f"of bel {contact.name} op {contact.phone}.")
        return None
    if note:
        dispatcher.utter_message(text=note)
    return used.to_dict()


async def check_date_text(raw: str, product_id: Optional[str], location_id: Optional[str],
                          dispatcher: CollectingDispatcher, current: Optional[Dict[str, Any]] = None
                          ) -> Optional[Dict[str, Any]]:
    text = "zo snel mogelijk" if raw == ASAP else raw
    parsed = parse_date_request(text, now())
    if isinstance(parsed, DateParseError):
        dispatcher.utter_message(text=parsed.message_nl)
        return None
    base = DateRequest.from_dict(current) if isinstance(current, dict) else None
    return await check_request(merge_request(parsed, base), product_id, location_id, dispatcher)


async def choose_slot(raw: Any, tracker: Tracker, dispatcher: CollectingDispatcher, *, slot_name: str,
                      date_name: str, offered_name: str, product_id: Optional[str],
                      location_id: Optional[str]) -> Dict[str, Any]:
    """Validate the answer to "which moment?": a slot, a new day/time wish, or a friendly retry."""
    if isinstance(raw, dict):
        return {slot_name: raw}
    offered = [Slot.from_dict(item) for item in (tracker.get_slot(offered_name) or [])]
    text = str(raw)
    chosen = match_choice(text, offered)
    if chosen is not None:
        return {slot_name: chosen.to_dict()}
    if is_stale_button(text):
        dispatcher.utter_message(text="Dat moment hoort bij een oudere lijst of is niet meer vrij. "
                                      "Kies een van de momenten hieronder.")
        return {slot_name: None}
    if _NUMBER_CHOICE.match(text) and offered:
        dispatcher.utter_message(text=f"Kies een nummer van 1 tot {len(offered)}, of tik op een moment.")
        return {slot_name: None}
    if text == ASAP or is_date_text(text):
        wish = await check_date_text(text, product_id, location_id, dispatcher, tracker.get_slot(date_name))
        return {date_name: wish, slot_name: None} if wish else {slot_name: None}
    count = f" (1 tot {len(offered)})" if offered else ""
    dispatcher.utter_message(text=f"Kies een moment uit de lijst: tik erop of typ het nummer{count}. "
                                  "Liever een andere dag? Typ bijvoorbeeld 'vrijdag' of 'volgende week'.")
    return {slot_name: None}


def offer_buttons(slots: List[Slot], catalogue: Catalogue) -> List[Dict[str, str]]:
    buttons = [{"title": describe_slot(slot, catalogue), "payload": payload("choose_option", option=slot.starts_at.isoformat())}
               for slot in slots]
    return buttons + [{"title": "Andere dag", "payload": payload("change_detail", detail="day")}, STOP_BUTTON]


async def offer_slots(dispatcher: CollectingDispatcher, tracker: Tracker, *, product_id: str, location_id: str,
                      date_name: str, offered_name: str, exclude: Optional[datetime] = None) -> List[EventType]:
    """Ask "which moment?" with the nearest free slots as buttons; remember what was offered."""
    catalogue = get_catalogue()
    location = catalogue.location(location_id)
    raw = tracker.get_slot(date_name)
    request = DateRequest.from_dict(raw) if isinstance(raw, dict) else DateRequest(asap=True)
    try:
        book = await in_thread(get_book)
        slots, used, note = await in_thread(search_slots, book, product_id, location_id, request)
    except OutsideHorizon as error:
        slots, used, note = [], request, error.message_nl
    except Exception as error:  # noqa: BLE001 - database down: apologise and end the form
        log_failure("free slots", error)
        apologise(dispatcher, " bij het zoeken naar vrije momenten")
        return [ActiveLoop(None), SlotSet(REQUESTED_SLOT, None)]
    if exclude is not None:
        slots = [slot for slot in slots if slot.starts_at != exclude]
    if not slots:
        wish = describe_request(request)
        dispatcher.utter_message(
            text=(f"{note}\n" if note else "")
            + f"Er is {wish + ' ' if wish else ''}geen vrij moment meer. Typ een andere dag, bijvoorbeeld 'volgende week'.",
            buttons=[{"title": "Zo snel mogelijk", "payload": payload("choose_option", option=ASAP)}, STOP_BUTTON])
        return [SlotSet(offered_name, [])]
    wish = describe_request(used)
    where = f" in {location.name}" if location else ""
    lines = "\n".join(f"{n}. {describe_slot(slot, catalogue)}" for n, slot in enumerate(slots, 1))
    intro = f"{note}\n" if note else ""
    dispatcher.utter_message(
        text=f"{intro}Dit zijn de eerste vrije momenten{where}{' ' + wish if wish else ''}:\n{lines}\n"
             "Tik op een moment of typ het nummer. Past geen enkel moment? Typ een andere dag of een uur, "
             "bijvoorbeeld 'donderdag na 16 uur'.",
        buttons=offer_buttons(slots, catalogue))
    return [SlotSet(offered_name, [slot.to_dict() for slot in slots])]


# -- texts ---------------------------------------------------------------------------------------------
def show_contact(value: Optional[str]) -> str:
    if not value or "@" in value:
        return value or ""
    try:
        return phonenumbers.format_number(phonenumbers.parse(value, "BE"), phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        return value


def contact_kwargs(value: str) -> Dict[str, str]:
    return {"email": value} if "@" in value else {"phone": value}


def ics_message(booking: Booking, catalogue: Catalogue) -> Dict[str, Any]:
    """The calendar file as a custom payload (web chat: download; other channels ignore it)."""
    return {"type": "ics", "filename": f"afspraak-{booking.reference}.ics", "mime_type": "text/calendar",
            "content": to_ics(booking, catalogue)}


#: Channels that cannot deliver the calendar file: WhatsApp media must be a public URL, so there the
#: text alone carries the details. (Web chat: a download link; Telegram: a document; REST: the payload.)
NO_CALENDAR_CHANNELS = ("whatsapp",)


def send_calendar(dispatcher: CollectingDispatcher, tracker: Tracker, booking: Booking, catalogue: Catalogue,
                  sentence: str) -> str:
    """Send the .ics where the channel delivers it; the sentence about it there, else ''."""
    if channel_of(tracker.sender_id) in NO_CALENDAR_CHANNELS:
        return ""
    dispatcher.utter_message(json_message=ics_message(booking, catalogue))
    return sentence


def booking_lines(booking: Booking, catalogue: Catalogue) -> str:
    product, location = catalogue.product(booking.product_id), catalogue.location(booking.location_id)
    name = product.name if product else booking.product_id
    where = f"{location.name}, {location.address}" if location else booking.location_id
    return f"- Dienst: {name}\n- Wanneer: {format_moment(booking.starts_at)}\n- Waar: {where}"


def not_bookable_text(product: Product) -> str:
    if product.online:
        how = f"Het kan online: {product.online}"
    elif product.locations:
        how = f"U kunt zonder afspraak terecht ({product.desk})."
    else:
        how = f"Daarvoor gaat u naar: {product.desk}."
    return f"Voor {product.in_sentence} maakt u geen afspraak bij de stad. {how}"


# -- booking: validation --------------------------------------------------------------------------------
class ValidateAppointmentForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_appointment_form"

    # extraction: the raw answer to the question that was asked (or, at activation, what the
    # triggering message and the conversation already tell)
    async def extract_appointment_product(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                          domain: DomainDict) -> Dict[Text, Any]:
        catalogue = get_catalogue()
        if is_activation(tracker):
            return {"appointment_product": self._known_product(catalogue, tracker)}

        def looks_valid(text: str) -> bool:
            return find_product(catalogue, text) is not None and not is_questionlike(text)

        value = answer_for(tracker, "appointment_product", entities=("product",), looks_valid=looks_valid,
                           changes=CHANGES)
        return {} if value is None else {"appointment_product": value}

    @staticmethod
    def _known_product(catalogue: Catalogue, tracker: Tracker) -> Optional[str]:
        """From the button payload or the words of the triggering message; else the product the
        conversation is about, if that one can be booked."""
        for text in (latest_entity(tracker, "product"), latest_text(tracker)):
            if text and not text.startswith("/"):
                product = find_product(catalogue, text)
                if product:
                    return product.id
        context = catalogue.product(tracker.get_slot("product") or "")
        return context.id if context and context.bookable else None

    async def extract_appointment_location(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                           domain: DomainDict) -> Dict[Text, Any]:
        catalogue = get_catalogue()
        if is_activation(tracker):
            location = None
            for text in (latest_entity(tracker, "location"), latest_text(tracker)):
                if text and not text.startswith("/"):
                    location = location or find_location(catalogue, text)
            return {"appointment_location": location.id if location else None}

        def looks_valid(text: str) -> bool:
            return find_location(catalogue, text) is not None and not is_questionlike(text)

        value = answer_for(tracker, "appointment_location", entities=("location",), looks_valid=looks_valid,
                           changes=CHANGES)
        return {} if value is None else {"appointment_location": value}

    async def extract_appointment_date(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                       domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            return reset_values(tracker, ["appointment_date"])
        value = answer_for(tracker, "appointment_date", entities=("option",), looks_valid=is_date_text,
                           changes=CHANGES)
        return {} if value is None else {"appointment_date": value}

    async def extract_appointment_slot(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                       domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            return reset_values(tracker, ["appointment_slot"])
        offered = [Slot.from_dict(item) for item in (tracker.get_slot("appointment_offered") or [])]

        def looks_valid(text: str) -> bool:
            return match_choice(text, offered) is not None or is_date_text(text)

        value = answer_for(tracker, "appointment_slot", entities=("option",), looks_valid=looks_valid,
                           changes=CHANGES)
        return {} if value is None else {"appointment_slot": value}

    async def extract_appointment_name(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                       domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            return reset_values(tracker, ["appointment_name"])
        value = answer_for(tracker, "appointment_name", looks_valid=looks_like_name, changes=CHANGES)
        return {} if value is None else {"appointment_name": value}

    async def extract_appointment_contact(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                          domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            return reset_values(tracker, ["appointment_contact"])
        value = answer_for(tracker, "appointment_contact", looks_valid=is_contact_text, changes=CHANGES)
        return {} if value is None else {"appointment_contact": value}

    async def extract_appointment_confirmed(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                            domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            return reset_values(tracker, ["appointment_confirmed"])
        return confirmation_answer(tracker, "appointment_confirmed")

    # validation
    async def validate_appointment_product(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                           domain: DomainDict) -> Dict[Text, Any]:
        result: Dict[str, Any] = reset_values(tracker, BOOKING_HELPERS) if is_activation(tracker) else {}
        if value is None:
            return {**result, **keep(tracker, "appointment_product")}
        if is_change(value):
            return {**result, **self._change(change_field(value), tracker, dispatcher)}
        catalogue = get_catalogue()
        product = find_product(catalogue, str(value))
        if product is None:
            dispatcher.utter_message(text="Die dienst ken ik niet. Kies hieronder, of typ het document, "
                                          "bijvoorbeeld 'reispas' of 'rijbewijs'.")
            return {**result, "appointment_product": None}
        if not product.bookable:
            dispatcher.utter_message(text=not_bookable_text(product) + " Wilt u een afspraak voor iets anders?")
            return {**result, "appointment_product": None}
        result.update(appointment_product=product.id, product=product.id)
        locations = catalogue.locations_for(product.id)
        if len(locations) == 1:
            result["appointment_location"] = locations[0].id
        else:
            chosen = tracker.get_slot("appointment_location")
            location = catalogue.location(chosen) if chosen else None
            if location is not None and location.id not in product.locations:
                dispatcher.utter_message(text=f"Voor {product.in_sentence} kunt u niet terecht in {location.name}.")
                result["appointment_location"] = None
        return result

    async def validate_appointment_location(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                            domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "appointment_location")
        if is_change(value):
            return self._change(change_field(value), tracker, dispatcher)
        catalogue = get_catalogue()
        location = find_location(catalogue, str(value))
        product = catalogue.product(tracker.get_slot("appointment_product") or "")
        if location is None:
            dispatcher.utter_message(text="Dat kantoor ken ik niet. Kies een van de kantoren hieronder.")
            return {"appointment_location": None}
        if product is not None and location.id not in product.locations:
            where = ", ".join(loc.name for loc in catalogue.locations_for(product.id))
            dispatcher.utter_message(text=f"Voor {product.in_sentence} kunt u niet terecht in {location.name}. "
                                          f"Dat kan wel in: {where}.")
            return {"appointment_location": None}
        return {"appointment_location": location.id, "location": location.id}

    async def validate_appointment_date(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                        domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "appointment_date")
        if isinstance(value, dict):
            return {"appointment_date": value}
        if is_change(value):
            return self._change(change_field(value), tracker, dispatcher)
        wish = await check_date_text(str(value), tracker.get_slot("appointment_product"),
                                     tracker.get_slot("appointment_location"), dispatcher)
        return {"appointment_date": wish, "appointment_slot": None}

    async def validate_appointment_slot(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                        domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "appointment_slot")
        if is_change(value):
            return self._change(change_field(value), tracker, dispatcher)
        return await choose_slot(value, tracker, dispatcher, slot_name="appointment_slot",
                                 date_name="appointment_date", offered_name="appointment_offered",
                                 product_id=tracker.get_slot("appointment_product"),
                                 location_id=tracker.get_slot("appointment_location"))

    async def validate_appointment_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                        domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "appointment_name")
        if is_change(value):
            return self._change(change_field(value), tracker, dispatcher)
        name = clean_name(str(value))
        if name is None:
            dispatcher.utter_message(text=InvalidName.message_nl)
        return {"appointment_name": name}

    async def validate_appointment_contact(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                           domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "appointment_contact")
        if is_change(value):
            return self._change(change_field(value), tracker, dispatcher)
        try:
            contact = normalise_contact(contact_candidate(str(value)))
        except InvalidContact as error:
            dispatcher.utter_message(text=error.message_nl)
            return {"appointment_contact": None}
        return {"appointment_contact": contact.value}

    async def validate_appointment_confirmed(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                             domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "appointment_confirmed")
        if is_change(value):
            return self._change(change_field(value), tracker, dispatcher)
        if value is False:
            return {"appointment_confirmed": None, "appointment_menu": True}
        if value is True:
            return await self._book(dispatcher, tracker)
        text = str(value)
        if is_contact_text(text):
            contact = normalise_contact(contact_candidate(text))
            return {"appointment_contact": contact.value, "appointment_confirmed": None}
        if is_date_text(text):
            wish = await check_date_text(text, tracker.get_slot("appointment_product"),
                                         tracker.get_slot("appointment_location"), dispatcher,
                                         tracker.get_slot("appointment_date"))
            if wish:
                return {"appointment_date": wish, "appointment_slot": None, "appointment_confirmed": None}
            return {"appointment_confirmed": None}
        dispatcher.utter_message(text="Klopt alles? Tik op 'Ja, bevestig'. Wilt u iets aanpassen? "
                                      "Kies hieronder wat, of typ 'stop' om te stoppen.")
        return {"appointment_confirmed": None}

    async def _book(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> Dict[str, Any]:
        """Store the booking; only when this returned is the citizen told it is confirmed."""
        raw_slot, contact = tracker.get_slot("appointment_slot"), tracker.get_slot("appointment_contact") or ""
        try:
            slot = Slot.from_dict(raw_slot)
            book = await in_thread(get_book)
            booking = await in_thread(
                book.book, slot, tracker.get_slot("appointment_name") or "", **contact_kwargs(contact),
                channel=channel_of(tracker.sender_id), conversation_id=tracker.sender_id)
        except (SlotTaken, InvalidSlot, OutsideHorizon) as error:
            dispatcher.utter_message(text=f"{error.message_nl} Ik zoek nieuwe vrije momenten voor u.")
            return {"appointment_slot": None, "appointment_confirmed": None}
        except NotBookable as error:
            dispatcher.utter_message(text=error.message_nl)
            return {"appointment_location": None, "appointment_slot": None, "appointment_confirmed": None}
        except InvalidName as error:
            dispatcher.utter_message(text=error.message_nl)
            return {"appointment_name": None, "appointment_confirmed": None}
        except InvalidContact as error:
            dispatcher.utter_message(text=error.message_nl)
            return {"appointment_contact": None, "appointment_confirmed": None}
        except (KeyError, TypeError, ValueError) as error:  # an unreadable slot: choose again
            log_failure("booking (slot)", error)
            return {"appointment_slot": None, "appointment_confirmed": None}
        except Exception as error:  # noqa: BLE001 - database down: nothing was booked, say so
            log_failure("booking", error)
            metrics.booking("failed")
            apologise(dispatcher, " en uw afspraak is nog niet geboekt")
            return {"appointment_confirmed": None}
        metrics.booking("booked")
        return {"appointment_confirmed": True, "appointment_reference": booking.reference}

    def _change(self, field: str, tracker: Tracker, dispatcher: CollectingDispatcher) -> Dict[str, Any]:
        """Forget the answer the citizen wants to change (and what depends on it); the form asks again."""
        result: Dict[str, Any] = {"appointment_confirmed": None, "appointment_menu": None}
        catalogue = get_catalogue()
        product = catalogue.product(tracker.get_slot("appointment_product") or "")
        if field == "product":
            result.update(appointment_product=None, appointment_location=None, appointment_date=None,
                          appointment_slot=None)
        elif field == "location":
            locations = catalogue.locations_for(product.id) if product else []
            if len(locations) == 1:
                dispatcher.utter_message(text=f"Voor {product.in_sentence} kunt u alleen terecht in {locations[0].name}.")
            else:
                result.update(appointment_location=None, appointment_slot=None)
        elif field == "day":
            result.update(appointment_date=None, appointment_slot=None)
        elif field == "time":
            result.update(appointment_slot=None, appointment_date=same_day(tracker.get_slot("appointment_slot"),
                                                                          tracker.get_slot("appointment_date")))
        elif field == "contact":
            result["appointment_contact"] = None
        elif field == "name":
            result["appointment_name"] = None
        return result


def same_day(raw_slot: Any, raw_request: Any) -> Optional[Dict[str, Any]]:
    """'Ander uur': the day of the chosen slot (or of the request), without the earlier time wish."""
    if isinstance(raw_slot, dict):
        return DateRequest(day=Slot.from_dict(raw_slot).starts_at.date()).to_dict()
    if isinstance(raw_request, dict):
        request = DateRequest.from_dict(raw_request)
        return DateRequest(day=request.day, from_day=request.from_day, asap=request.asap).to_dict()
    return None


def confirmation_answer(tracker: Tracker, slot: str, yes_intents: tuple = ()) -> Dict[str, Any]:
    """At a summary: True (ja), False (nee), 'change:<field>', or text (maybe a new day or number)."""
    if requested_slot(tracker) != slot:
        return {}
    field = change_request(tracker, CHANGES)
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


# -- booking: questions ---------------------------------------------------------------------------------
class ActionAskAppointmentProduct(Action):
    def name(self) -> Text:
        return "action_ask_appointment_product"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        catalogue = get_catalogue()
        ids = [tracker.get_slot("product") or "", *POPULAR_BOOKABLE]
        products = [p for p in (catalogue.product(i) for i in dict.fromkeys(ids)) if p and p.bookable]
        dispatcher.utter_message(
            text="Voor welke dienst wilt u een afspraak maken? Kies hieronder, of typ het, bijvoorbeeld "
                 f"'reispas' of 'verhuizen'.\n{STOP_HINT}",
            buttons=[{"title": p.name, "payload": payload("book_appointment", product=p.id)} for p in products[:6]]
            + [STOP_BUTTON])
        return []


class ActionAskAppointmentLocation(Action):
    def name(self) -> Text:
        return "action_ask_appointment_location"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        catalogue = get_catalogue()
        product = catalogue.product(tracker.get_slot("appointment_product") or "")
        locations = catalogue.locations_for(product.id) if product else catalogue.locations
        context = tracker.get_slot("location")
        locations = sorted(locations, key=lambda loc: loc.id != context)
        what = f"Uw afspraak: {product.name}. " if product else ""
        dispatcher.utter_message(
            text=f"{what}Waar wilt u naartoe? Kies een kantoor.\n{STOP_HINT}",
            buttons=[{"title": loc.name, "payload": payload("choose_option", location=loc.id)} for loc in locations]
            + [{"title": "Andere dienst", "payload": payload("change_detail", detail="product")}, STOP_BUTTON])
        return []


class ActionAskAppointmentDate(Action):
    def name(self) -> Text:
        return "action_ask_appointment_date"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        catalogue = get_catalogue()
        product = catalogue.product(tracker.get_slot("appointment_product") or "")
        location = catalogue.location(tracker.get_slot("appointment_location") or "")
        what = f"Uw afspraak: {product.name}, {location.name}. " if product and location else ""
        dispatcher.utter_message(
            text=f"{what}Wanneer past het u? Typ een dag, bijvoorbeeld 'morgen', 'volgende dinsdag' of "
                 "'14 december'. U mag ook een uur geven: 'dinsdag na 14 uur'.",
            buttons=[{"title": "Zo snel mogelijk", "payload": payload("choose_option", option=ASAP)}, STOP_BUTTON])
        return []


class ActionAskAppointmentSlot(Action):
    def name(self) -> Text:
        return "action_ask_appointment_slot"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        return await offer_slots(dispatcher, tracker, product_id=tracker.get_slot("appointment_product"),
                                 location_id=tracker.get_slot("appointment_location"),
                                 date_name="appointment_date", offered_name="appointment_offered")


class ActionAskAppointmentName(Action):
    def name(self) -> Text:
        return "action_ask_appointment_name"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        dispatcher.utter_message(text="Op welke naam mag ik de afspraak zetten? Typ uw voornaam en achternaam.")
        return []


class ActionAskAppointmentContact(Action):
    def name(self) -> Text:
        return "action_ask_appointment_contact"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        dispatcher.utter_message(
            text="Op welk gsm-nummer of e-mailadres kunnen we u bereiken? U hebt het ook nodig om de "
                 "afspraak later te verplaatsen of te annuleren.")
        return []


class ActionAskAppointmentConfirmed(Action):
    def name(self) -> Text:
        return "action_ask_appointment_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        catalogue = get_catalogue()
        product = catalogue.product(tracker.get_slot("appointment_product") or "")
        location = catalogue.location(tracker.get_slot("appointment_location") or "")
        several_places = bool(product) and len(product.locations) > 1
        change = [
            {"title": "Andere dag", "payload": payload("change_detail", detail="day")},
            {"title": "Ander uur", "payload": payload("change_detail", detail="time")},
            {"title": "Ander nummer of e-mail", "payload": payload("change_detail", detail="contact")},
        ]
        if several_places:
            change.append({"title": "Andere plaats", "payload": payload("change_detail", detail="location")})
        if tracker.get_slot("appointment_menu"):
            more = [{"title": "Andere naam", "payload": payload("change_detail", detail="name")},
                    {"title": "Andere dienst", "payload": payload("change_detail", detail="product")}]
            dispatcher.utter_message(
                text="Geen probleem. Wat wilt u aanpassen?",
                buttons=change + more + [{"title": "Toch bevestigen", "payload": "/affirm"}, STOP_BUTTON])
            return [SlotSet("appointment_menu", None)]
        try:
            slot = Slot.from_dict(tracker.get_slot("appointment_slot"))
            when = format_moment(slot.starts_at)
        except (KeyError, TypeError, ValueError):
            when = "?"
        lines = [
            "Klopt dit?",
            f"- Dienst: {product.name if product else '?'}",
            f"- Waar: {location.name}, {location.address}" if location else "- Waar: ?",
            f"- Wanneer: {when}",
            f"- Naam: {tracker.get_slot('appointment_name') or '?'}",
            f"- Contact: {show_contact(tracker.get_slot('appointment_contact'))}",
            "Tik op 'Ja, bevestig' om de afspraak vast te leggen.",
        ]
        dispatcher.utter_message(text="\n".join(lines),
                                 buttons=[{"title": "Ja, bevestig", "payload": "/affirm"}, *change, STOP_BUTTON])
        return []


class ActionAppointmentBooked(Action):
    """After the form: the confirmation with reference, address, what to bring and the calendar file."""

    def name(self) -> Text:
        return "action_appointment_booked"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        reference = tracker.get_slot("appointment_reference")
        contact = tracker.get_slot("appointment_contact") or ""
        events: List[EventType] = [SlotSet(name, None) for name in BOOKING_SLOTS + BOOKING_HELPERS
                                   if tracker.get_slot(name) is not None]
        if not reference:  # the form ended without a booking (e.g. the database failed)
            return events
        catalogue = get_catalogue()
        try:
            book = await in_thread(get_book)
            booking = await in_thread(book.find, reference, contact)
        except Exception as error:  # noqa: BLE001 - it is booked; only the details cannot be read now
            log_failure("reading a new booking", error)
            dispatcher.utter_message(
                text=f"Uw afspraak is geboekt. Uw afspraaknummer is {reference}. Bewaar het goed: u hebt het "
                     "nodig om de afspraak te verplaatsen of te annuleren.")
            return events
        dispatcher.utter_message(text=booking_summary_nl(booking, catalogue))
        calendar = send_calendar(dispatcher, tracker, booking, catalogue,
                                 "Zet de afspraak in uw agenda met het agenda-bestand (afspraak.ics). ")
        dispatcher.utter_message(
            text=f"{calendar}Verplaatsen of annuleren? Zeg het mij, met uw afspraaknummer. "
                 "Kan ik u nog ergens mee helpen?",
            buttons=[{"title": "Wat kost het?", "payload": payload("ask_price", product=booking.product_id)},
                     {"title": "Nee, bedankt", "payload": "/thank"}])
        return events + [SlotSet("product", booking.product_id), SlotSet("location", booking.location_id)]


# -- look up, reschedule, cancel --------------------------------------------------------------------------
def booking_record(booking: Booking) -> Dict[str, Any]:
    return {"reference": booking.reference, "product_id": booking.product_id, "location_id": booking.location_id,
            "starts_at": booking.starts_at.isoformat(), "ends_at": booking.ends_at.isoformat(),
            "status": booking.status.value}


class ValidateAppointmentManageForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_appointment_manage_form"

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> List[Text]:
        if tracker.get_slot("manage_outcome") and (not is_activation(tracker) or set_in_this_run(tracker, "manage_outcome")):
            return []  # done: shown, cancelled, moved, kept, or given up
        action = tracker.get_slot("manage_action")
        if action == "cancel":
            return [*domain_slots, "manage_confirmed"]
        if action == "reschedule":
            return [*domain_slots, *MANAGE_STEPS]
        return list(domain_slots)

    @staticmethod
    def _reuse(tracker: Tracker) -> bool:
        """Moving or cancelling right after a look-up in this conversation: no need to ask again."""
        return (MANAGE_ACTIONS.get(latest_intent(tracker)) in ("cancel", "reschedule")
                and bool(tracker.get_slot("manage_verified")) and bool(tracker.get_slot("manage_reference"))
                and bool(tracker.get_slot("manage_contact")))

    async def extract_manage_action(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> Dict[Text, Any]:
        action = MANAGE_ACTIONS.get(latest_intent(tracker))
        if is_activation(tracker):
            return {"manage_action": action or "lookup"}
        # switching from looking up to moving/cancelling halfway ("ik wil hem toch annuleren")
        text = latest_text(tracker)
        if action in ("cancel", "reschedule") and not find_reference(text) and not is_contact_text(text):
            return {"manage_action": action}
        return {}

    async def extract_manage_reference(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                       domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            if self._reuse(tracker):
                return {}
            entity = latest_entity(tracker, "reference")
            return {"manage_reference": find_reference(entity or "") or find_reference(latest_text(tracker))}
        value = answer_for(tracker, "manage_reference", entities=("reference",),
                           looks_valid=lambda text: find_reference(text) is not None)
        return {} if value is None else {"manage_reference": value}

    async def extract_manage_contact(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            return {} if self._reuse(tracker) else reset_values(tracker, ["manage_contact"])
        value = answer_for(tracker, "manage_contact", looks_valid=is_contact_text)
        return {} if value is None else {"manage_contact": value}

    async def extract_manage_date(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                  domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            return reset_values(tracker, ["manage_date"])
        value = answer_for(tracker, "manage_date", entities=("option",), looks_valid=is_date_text, changes=CHANGES)
        return {} if value is None else {"manage_date": value}

    async def extract_manage_slot(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                  domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            return reset_values(tracker, ["manage_slot"])
        offered = [Slot.from_dict(item) for item in (tracker.get_slot("manage_offered") or [])]
        value = answer_for(tracker, "manage_slot", entities=("option",), changes=CHANGES,
                           looks_valid=lambda text: match_choice(text, offered) is not None or is_date_text(text))
        return {} if value is None else {"manage_slot": value}

    async def extract_manage_confirmed(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                       domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            return reset_values(tracker, ["manage_confirmed"])
        # "ja, annuleer" / "verplaatsen" is the NLU's appointment_cancel / _reschedule: a yes
        action = tracker.get_slot("manage_action")
        same = tuple(intent for intent, name in MANAGE_ACTIONS.items() if name == action and name != "lookup")
        return confirmation_answer(tracker, "manage_confirmed", same)

    async def validate_manage_action(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> Dict[Text, Any]:
        result: Dict[str, Any] = {"manage_action": value if value in ("lookup", "cancel", "reschedule") else "lookup"}
        if is_activation(tracker):
            result.update(reset_values(tracker, MANAGE_STEPS + MANAGE_HELPERS))
        return result

    async def validate_manage_reference(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                        domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "manage_reference")
        reference = find_reference(str(value))
        if reference is None:
            dispatcher.utter_message(text="Dat afspraaknummer herken ik niet. Het ziet eruit als GNT-7K3Q9: "
                                          "GNT, een streepje en 5 letters of cijfers.")
            return {"manage_reference": None}
        return {"manage_reference": reference}

    async def validate_manage_contact(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                      domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "manage_contact")
        try:
            contact = normalise_contact(contact_candidate(str(value))).value
        except InvalidContact as error:
            dispatcher.utter_message(text=error.message_nl)
            return {"manage_contact": None}
        reference = tracker.get_slot("manage_reference")
        if not reference:
            return {"manage_contact": contact}
        try:
            book = await in_thread(get_book)
            booking = await in_thread(book.find, reference, contact)
        except (UnknownReference, ContactMismatch) as error:
            attempts = int(tracker.get_slot("manage_attempts") or 0) + 1
            result: Dict[str, Any] = {"manage_attempts": attempts, "manage_verified": None,
                                      "manage_reference": None, "manage_contact": None}
            if attempts >= MAX_LOOKUP_ATTEMPTS:
                gentinfo = get_catalogue().contact
                dispatcher.utter_message(
                    text=f"{error.message_nl}\nHet lukt niet om uw afspraak te vinden. {gentinfo.name} helpt u "
                         f"graag verder: bel {gentinfo.phone} ({gentinfo.hours}).")
                return {**result, "manage_outcome": "not_found"}
            dispatcher.utter_message(text=f"{error.message_nl} Probeer het nog eens.")
            return result
        except Exception as error:  # noqa: BLE001 - database down
            log_failure("finding a booking", error)
            apologise(dispatcher)
            return {"manage_contact": contact, "manage_outcome": "error"}
        result = {"manage_contact": contact, "manage_verified": True, "manage_attempts": None,
                  "manage_booking": booking_record(booking)}
        action = tracker.get_slot("manage_action")
        if action == "lookup":
            return {**result, "manage_outcome": "shown"}
        if booking.status is BookingStatus.cancelled:
            dispatcher.utter_message(text=AlreadyCancelled.message_nl)
            return {**result, "manage_outcome": "closed"}
        if booking.starts_at <= now():
            dispatcher.utter_message(text=AppointmentPassed.message_nl)
            return {**result, "manage_outcome": "closed"}
        return result

    async def validate_manage_date(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "manage_date")
        if isinstance(value, dict):
            return {"manage_date": value}
        if is_change(value):
            return self._change(change_field(value), tracker)
        booking = tracker.get_slot("manage_booking") or {}
        wish = await check_date_text(str(value), booking.get("product_id"), booking.get("location_id"), dispatcher)
        return {"manage_date": wish, "manage_slot": None}

    async def validate_manage_slot(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "manage_slot")
        if is_change(value):
            return self._change(change_field(value), tracker)
        booking = tracker.get_slot("manage_booking") or {}
        return await choose_slot(value, tracker, dispatcher, slot_name="manage_slot", date_name="manage_date",
                                 offered_name="manage_offered", product_id=booking.get("product_id"),
                                 location_id=booking.get("location_id"))

    async def validate_manage_confirmed(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                        domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "manage_confirmed")
        action = tracker.get_slot("manage_action")
        if is_change(value):
            if action == "reschedule":
                return self._change(change_field(value), tracker)
            value = str(value)
        if value is False:
            dispatcher.utter_message(text="Oké, uw afspraak blijft zoals ze was.")
            return {"manage_confirmed": False, "manage_outcome": "kept"}
        if value is True:
            return await (self._cancel(dispatcher, tracker) if action == "cancel" else self._move(dispatcher, tracker))
        text = str(value)
        if action == "reschedule" and is_date_text(text):
            booking = tracker.get_slot("manage_booking") or {}
            wish = await check_date_text(text, booking.get("product_id"), booking.get("location_id"), dispatcher,
                                         tracker.get_slot("manage_date"))
            if wish:
                return {"manage_date": wish, "manage_slot": None, "manage_confirmed": None}
            return {"manage_confirmed": None}
        question = "annuleren" if action == "cancel" else "verplaatsen"
        dispatcher.utter_message(text=f"Wilt u de afspraak {question}? Tik op 'Ja' of 'Nee'.")
        return {"manage_confirmed": None}

    async def _cancel(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> Dict[str, Any]:
        try:
            book = await in_thread(get_book)
            booking = await in_thread(book.cancel, tracker.get_slot("manage_reference"), tracker.get_slot("manage_contact"))
        except AppointmentError as error:
            dispatcher.utter_message(text=error.message_nl)
            return {"manage_confirmed": False, "manage_outcome": "closed"}
        except Exception as error:  # noqa: BLE001 - database down: nothing changed
            log_failure("cancelling", error)
            apologise(dispatcher, " en uw afspraak is nog niet geannuleerd")
            return {"manage_confirmed": False, "manage_outcome": "error"}
        return {"manage_confirmed": True, "manage_outcome": "cancelled", "manage_booking": booking_record(booking)}

    async def _move(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> Dict[str, Any]:
        try:
            slot = Slot.from_dict(tracker.get_slot("manage_slot"))
            book = await in_thread(get_book)
            booking = await in_thread(book.reschedule, tracker.get_slot("manage_reference"),
                                      tracker.get_slot("manage_contact"), slot)
        except (SlotTaken, InvalidSlot, OutsideHorizon) as error:
            dispatcher.utter_message(text=f"{error.message_nl} Ik zoek nieuwe vrije momenten voor u.")
            return {"manage_slot": None, "manage_confirmed": None}
        except AppointmentError as error:
            dispatcher.utter_message(text=error.message_nl)
            return {"manage_confirmed": False, "manage_outcome": "closed"}
        except (KeyError, TypeError, ValueError) as error:
            log_failure("rescheduling (slot)", error)
            return {"manage_slot": None, "manage_confirmed": None}
        except Exception as error:  # noqa: BLE001 - database down: the old appointment stands
            log_failure("rescheduling", error)
            apologise(dispatcher, " en uw afspraak is niet verplaatst")
            return {"manage_confirmed": False, "manage_outcome": "error"}
        return {"manage_confirmed": True, "manage_outcome": "rescheduled", "manage_booking": booking_record(booking)}

    @staticmethod
    def _change(field: str, tracker: Tracker) -> Dict[str, Any]:
        if field == "time":
            return {"manage_slot": None, "manage_confirmed": None,
                    "manage_date": same_day(tracker.get_slot("manage_slot"), tracker.get_slot("manage_date"))}
        return {"manage_date": None, "manage_slot": None, "manage_confirmed": None}


class ActionAskManageReference(Action):
    def name(self) -> Text:
        return "action_ask_manage_reference"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        contact = get_catalogue().contact
        dispatcher.utter_message(
            text="Wat is uw afspraaknummer? U vindt het in de bevestiging van uw afspraak. Het ziet eruit als "
                 f"GNT-7K3Q9.\nAfspraaknummer kwijt? Bel {contact.name} op {contact.phone}.",
            buttons=[STOP_BUTTON])
        return []


class ActionAskManageContact(Action):
    def name(self) -> Text:
        return "action_ask_manage_contact"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        dispatcher.utter_message(text="Met welk gsm-nummer of e-mailadres hebt u de afspraak gemaakt? "
                                      "Zo weet ik zeker dat de afspraak van u is.")
        return []


def _managed_booking(tracker: Tracker) -> Tuple[Optional[Product], Optional[Location], Optional[datetime]]:
    record = tracker.get_slot("manage_booking") or {}
    catalogue = get_catalogue()
    starts = record.get("starts_at")
    return (catalogue.product(record.get("product_id") or ""), catalogue.location(record.get("location_id") or ""),
            datetime.fromisoformat(starts) if starts else None)


class ActionAskManageDate(Action):
    def name(self) -> Text:
        return "action_ask_manage_date"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        product, location, starts = _managed_booking(tracker)
        now_text = (f"Uw afspraak ({product.name}, {location.name}) is nu op {format_moment(starts)}. "
                    if product and location and starts else "")
        dispatcher.utter_message(
            text=f"{now_text}Naar wanneer wilt u ze verplaatsen? Typ een dag, bijvoorbeeld 'volgende dinsdag' of "
                 "'vrijdag na 10 uur'.",
            buttons=[{"title": "Zo snel mogelijk", "payload": payload("choose_option", option=ASAP)}, STOP_BUTTON])
        return []


class ActionAskManageSlot(Action):
    def name(self) -> Text:
        return "action_ask_manage_slot"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        record = tracker.get_slot("manage_booking") or {}
        starts = record.get("starts_at")
        return await offer_slots(dispatcher, tracker, product_id=record.get("product_id"),
                                 location_id=record.get("location_id"), date_name="manage_date",
                                 offered_name="manage_offered",
                                 exclude=datetime.fromisoformat(starts) if starts else None)


class ActionAskManageConfirmed(Action):
    def name(self) -> Text:
        return "action_ask_manage_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        product, location, starts = _managed_booking(tracker)
        reference = tracker.get_slot("manage_reference")
        what = product.name if product else "?"
        where = f"{location.name}, {location.address}" if location else "?"
        old = format_moment(starts) if starts else "?"
        if tracker.get_slot("manage_action") == "cancel":
            dispatcher.utter_message(
                text=f"Uw afspraak {reference}:\n- Dienst: {what}\n- Wanneer: {old}\n- Waar: {where}\n"
                     "Wilt u deze afspraak annuleren?",
                buttons=[{"title": "Ja, annuleer", "payload": "/affirm"},
                         {"title": "Nee, houden", "payload": "/deny"}])
            return []
        try:
            new = format_moment(Slot.from_dict(tracker.get_slot("manage_slot")).starts_at)
        except (KeyError, TypeError, ValueError):
            new = "?"
        dispatcher.utter_message(
            text=f"Wilt u uw afspraak {reference} ({what}, {location.name if location else '?'}) verplaatsen?\n"
                 f"- Van: {old}\n- Naar: {new}",
            buttons=[{"title": "Ja, verplaats", "payload": "/affirm"},
                     {"title": "Ander moment", "payload": payload("change_detail", detail="day")},
                     {"title": "Nee, houden", "payload": "/deny"}])
        return []


class ActionAppointmentManaged(Action):
    """After the look-up form: show the appointment, or confirm the move or cancellation."""

    def name(self) -> Text:
        return "action_appointment_managed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        outcome = tracker.get_slot("manage_outcome")
        reference, contact = tracker.get_slot("manage_reference"), tracker.get_slot("manage_contact")
        # manage_action stays: it keeps the slot order right when "Annuleren" follows a look-up
        events: List[EventType] = [SlotSet(name, None) for name in MANAGE_STEPS + MANAGE_HELPERS
                                   if tracker.get_slot(name) is not None]
        if outcome in ("shown", "cancelled", "rescheduled") and reference and contact:
            catalogue = get_catalogue()
            try:
                book = await in_thread(get_book)
                booking = await in_thread(book.find, reference, contact)
            except Exception as error:  # noqa: BLE001
                log_failure("reading a booking", error)
                apologise(dispatcher)
                return events
            if outcome == "cancelled":
                self._cancelled(dispatcher, tracker, booking, catalogue)
                return events + [SlotSet("manage_verified", None), SlotSet("manage_reference", None),
                                 SlotSet("manage_contact", None)]
            if outcome == "rescheduled":
                dispatcher.utter_message(text="Uw afspraak is verplaatst.\n" + booking_summary_nl(booking, catalogue))
                calendar = send_calendar(dispatcher, tracker, booking, catalogue,
                                         "Het nieuwe agenda-bestand vervangt het oude in uw agenda. ")
                dispatcher.utter_message(text=f"{calendar}Kan ik u nog ergens mee helpen?")
                return events
            self._show(dispatcher, booking, catalogue)
            return events + [SlotSet("product", booking.product_id), SlotSet("location", booking.location_id)]
        dispatcher.utter_message(text="Kan ik u nog ergens mee helpen?")
        return events

    @staticmethod
    def _cancelled(dispatcher: CollectingDispatcher, tracker: Tracker, booking: Booking, catalogue: Catalogue) -> None:
        dispatcher.utter_message(text=f"Uw afspraak {booking.reference} is geannuleerd.\n"
                                      f"{booking_lines(booking, catalogue)}")
        calendar = send_calendar(dispatcher, tracker, booking, catalogue,
                                 "Met het agenda-bestand haalt u de afspraak uit uw agenda. ")
        dispatcher.utter_message(
            text=f"{calendar}Wilt u een nieuwe afspraak maken?",
            buttons=[{"title": "Nieuwe afspraak", "payload": payload("book_appointment", product=booking.product_id)},
                     {"title": "Nee, bedankt", "payload": "/thank"}])

    @staticmethod
    def _show(dispatcher: CollectingDispatcher, booking: Booking, catalogue: Catalogue) -> None:
        if booking.status is BookingStatus.cancelled:
            dispatcher.utter_message(
                text=f"Afspraak {booking.reference} is geannuleerd.\n{booking_lines(booking, catalogue)}",
                buttons=[{"title": "Nieuwe afspraak", "payload": payload("book_appointment", product=booking.product_id)}])
            return
        product = catalogue.product(booking.product_id)
        bring = f"\nNeem mee: {'; '.join(product.bring)}." if product and product.bring else ""
        passed = booking.starts_at <= now()
        dispatcher.utter_message(
            text=f"Uw afspraak {booking.reference}:\n{booking_lines(booking, catalogue)}{bring}"
                 + ("\nDeze afspraak is al voorbij." if passed else ""),
            buttons=[] if passed else [{"title": "Verplaatsen", "payload": "/appointment_reschedule"},
                                       {"title": "Annuleren", "payload": "/appointment_cancel"},
                                       {"title": "Zo laten", "payload": "/thank"}])
        if not passed:
            dispatcher.utter_message(json_message=ics_message(booking, catalogue))
