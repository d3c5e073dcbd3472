"""Booking an appointment in the chat (``appointment_form``); looking it up, moving and cancelling is
``bot/actions/manage.py``.

Booking: product -> location (skipped when there is only one) -> day ("zo snel mogelijk", "volgende
dinsdag na 14 uur") -> one of the free slots offered as buttons -> name -> phone or e-mail (on
WhatsApp: the number the citizen writes from, offered as a yes/no choice) -> summary -> "ja,
bevestig". The booking is stored by the ``appointment_confirmed`` check (durably, before the assistant
says it is confirmed); ``action_appointment_booked`` then sends the confirmation, what to bring, the
address and the calendar file.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import metrics
from bot.actions.common import latest_entity
from bot.actions.forms import Field, Result, TableForm, ask_actions, question
from bot.actions.slots import (
    asap_button,
    button,
    change_button,
    check_date_text,
    choose_slot,
    confirmation_answer,
    contact_kwargs,
    get_book,
    is_date_text,
    not_bookable_text,
    offer_slots,
    send_calendar,
    show_contact,
    slot_looks_valid,
)
from bot.actions.tasks import (
    answer_for,
    apologise,
    change_request,
    channel_of,
    find_product,
    in_thread,
    is_activation,
    latest_text,
    log_failure,
    requested_slot,
    reset_values,
    stop_button,
    text_channel,
    yes_no,
)
from bot.core.answers import payload
from bot.core.appointments import InvalidName, InvalidSlot, NotBookable, OutsideHorizon, Slot, SlotTaken, booking_summary_nl
from bot.core.catalogue import Catalogue, Location, get_catalogue
from bot.core.choices import BOOKING_CHANGES, clean_name, contact_candidate, is_contact_text, is_questionlike, looks_like_name
from bot.core.contact import ContactKind, InvalidContact, normalise_contact
from bot.core.dates import DateRequest, format_moment
from bot.core.slot_search import same_day, search_slots, slot_or_none
from bot.core.texts import say

#: Offered first when the citizen has not said which product.
POPULAR_BOOKABLE = ("reispas", "identiteitskaart", "kids_id", "rijbewijs", "adreswijziging")
#: The citizen said no to the WhatsApp number: ask for another one.
DECLINED = "-"

BOOKING_SLOTS = ["appointment_product", "appointment_location", "appointment_date", "appointment_slot",
                 "appointment_name", "appointment_contact", "appointment_confirmed"]
BOOKING_HELPERS = ["appointment_offered", "appointment_reference", "appointment_menu"]

__all__ = ["ValidateAppointmentForm", "ActionAppointmentBooked", "search_slots"]


def find_location(catalogue: Catalogue, text: str) -> Optional[Location]:
    return catalogue.location(text) or catalogue.find_location(text)


def sender_phone(tracker: Tracker) -> Optional[str]:
    """On WhatsApp the conversation id is the citizen's number ('whatsapp:+32470…'): that number, checked."""
    if channel_of(tracker.sender_id) != "whatsapp":
        return None
    try:
        contact = normalise_contact(tracker.sender_id.partition(":")[2])
    except InvalidContact:
        return None
    return contact.value if contact.kind is ContactKind.phone else None


# -- reading answers -------------------------------------------------------------------------------------
def _known_product(tracker: Tracker) -> Result:
    """From the button payload or the words of the triggering message; else the product the
    conversation is about, if that one can be booked."""
    catalogue = get_catalogue()
    for text in (latest_entity(tracker, "product"), latest_text(tracker)):
        if text and not text.startswith("/"):
            product = find_product(catalogue, text)
            if product:
                return {"appointment_product": product.id}
    context = catalogue.product(tracker.get_slot("product") or "")
    return {"appointment_product": context.id if context and context.bookable else None}


def _known_location(tracker: Tracker) -> Result:
    catalogue = get_catalogue()
    location = None
    for text in (latest_entity(tracker, "location"), latest_text(tracker)):
        if text and not text.startswith("/"):
            location = location or find_location(catalogue, text)
    return {"appointment_location": location.id if location else None}


def _extract_contact(tracker: Tracker) -> Result:
    """The answer to the contact question; on WhatsApp a yes/no to the number offered."""
    slot = "appointment_contact"
    own = sender_phone(tracker)
    if own and requested_slot(tracker) == slot and not is_contact_text(latest_text(tracker)):
        answer = yes_no(tracker)
        if answer is not None:
            return {slot: own if answer else DECLINED}
    value = answer_for(tracker, slot, looks_valid=is_contact_text, changes=BOOKING_CHANGES)
    return {} if value is None else {slot: value}


# -- checks ----------------------------------------------------------------------------------------------
async def check_product(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    channel = text_channel(tracker)
    catalogue = get_catalogue()
    product = find_product(catalogue, str(value))
    if product is None:
        dispatcher.utter_message(text=say("appointments.unknown_product", channel))
        return {"appointment_product": None}
    if not product.bookable:
        dispatcher.utter_message(text=say("appointments.not_bookable_something_else", channel,
                                          not_bookable=not_bookable_text(product, channel)))
        return {"appointment_product": None}
    result: Result = {"appointment_product": product.id, "product": product.id}
    locations = catalogue.locations_for(product.id)
    if len(locations) == 1:
        result["appointment_location"] = locations[0].id
    else:
        chosen = tracker.get_slot("appointment_location")
        location = catalogue.location(chosen) if chosen else None
        if location is not None and location.id not in product.locations:
            dispatcher.utter_message(text=say("appointments.not_at_location", channel, product=product.in_sentence,
                                              location=location.name))
            result["appointment_location"] = None
    return result


async def check_location(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    channel = text_channel(tracker)
    catalogue = get_catalogue()
    location = find_location(catalogue, str(value))
    product = catalogue.product(tracker.get_slot("appointment_product") or "")
    if location is None:
        dispatcher.utter_message(text=say("appointments.unknown_location", channel))
        return {"appointment_location": None}
    if product is not None and location.id not in product.locations:
        where = ", ".join(loc.name for loc in catalogue.locations_for(product.id))
        dispatcher.utter_message(text=say("appointments.not_at_location_but", channel, product=product.in_sentence,
                                          location=location.name, where=where))
        return {"appointment_location": None}
    return {"appointment_location": location.id, "location": location.id}


async def check_date(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    if isinstance(value, dict):
        return {"appointment_date": value}
    wish = await check_date_text(str(value), tracker.get_slot("appointment_product"),
                                 tracker.get_slot("appointment_location"), dispatcher, channel=text_channel(tracker))
    return {"appointment_date": wish, "appointment_slot": None}


async def check_slot(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    return await choose_slot(value, tracker, dispatcher, slot_name="appointment_slot",
                             date_name="appointment_date", offered_name="appointment_offered",
                             product_id=tracker.get_slot("appointment_product"),
                             location_id=tracker.get_slot("appointment_location"))


async def check_name(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    name = clean_name(str(value))
    if name is None:
        dispatcher.utter_message(text=InvalidName.message_nl)
    return {"appointment_name": name}


async def check_contact(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    if value == DECLINED:
        return {"appointment_contact": None}  # the question follows, now without the WhatsApp number
    try:
        contact = normalise_contact(contact_candidate(str(value)))
    except InvalidContact as error:
        dispatcher.utter_message(text=error.message_nl)
        return {"appointment_contact": None}
    return {"appointment_contact": contact.value}


async def check_confirmed(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    if value is False:
        return {"appointment_confirmed": None, "appointment_menu": True}
    if value is True:
        return await book(dispatcher, tracker)
    text = str(value)
    if is_contact_text(text):
        contact = normalise_contact(contact_candidate(text))
        return {"appointment_contact": contact.value, "appointment_confirmed": None}
    channel = text_channel(tracker)
    if is_date_text(text):
        wish = await check_date_text(text, tracker.get_slot("appointment_product"),
                                     tracker.get_slot("appointment_location"), dispatcher,
                                     tracker.get_slot("appointment_date"), channel)
        if wish:
            return {"appointment_date": wish, "appointment_slot": None, "appointment_confirmed": None}
        return {"appointment_confirmed": None}
    dispatcher.utter_message(text=say("appointments.confirm_again", channel))
    return {"appointment_confirmed": None}


async def book(dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    """Store the booking; only when this returned is the citizen told it is confirmed."""
    raw_slot, contact = tracker.get_slot("appointment_slot"), tracker.get_slot("appointment_contact") or ""
    channel = text_channel(tracker)
    try:
        slot = Slot.from_dict(raw_slot)
        appointments = await in_thread(get_book)
        booking = await in_thread(
            appointments.book, slot, tracker.get_slot("appointment_name") or "", **contact_kwargs(contact),
            channel=channel_of(tracker.sender_id), conversation_id=tracker.sender_id)
    except (SlotTaken, InvalidSlot, OutsideHorizon) as error:
        dispatcher.utter_message(text=say("appointments.search_again", channel, reason=error.message_nl))
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
    except Exception as error:  # database down: nothing was booked, say so
        log_failure("booking", error)
        metrics.booking("failed")
        apologise(dispatcher, "appointments.failed_booking")
        return {"appointment_confirmed": None}
    metrics.booking("booked")
    return {"appointment_confirmed": True, "appointment_reference": booking.reference}


# -- the form ----------------------------------------------------------------------------------------------
def _product_looks_valid(text: str, tracker: Tracker) -> bool:
    return find_product(get_catalogue(), text) is not None and not is_questionlike(text)


def _location_looks_valid(text: str, tracker: Tracker) -> bool:
    return find_location(get_catalogue(), text) is not None and not is_questionlike(text)


class ValidateAppointmentForm(TableForm):
    form = "appointment_form"
    changes = BOOKING_CHANGES
    fields = {
        "appointment_product": Field(check_product, entities=("product",), looks_valid=_product_looks_valid,
                                     activate=_known_product),
        "appointment_location": Field(check_location, entities=("location",), looks_valid=_location_looks_valid,
                                      activate=_known_location),
        "appointment_date": Field(check_date, entities=("option",), looks_valid=lambda text, _: is_date_text(text)),
        "appointment_slot": Field(check_slot, entities=("option",), looks_valid=slot_looks_valid("appointment_offered")),
        "appointment_name": Field(check_name, looks_valid=lambda text, _: looks_like_name(text)),
        "appointment_contact": Field(check_contact, extract=_extract_contact),
        "appointment_confirmed": Field(check_confirmed,
                                       extract=lambda tracker: confirmation_answer(tracker, "appointment_confirmed")),
    }

    async def validate_appointment_product(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                           domain: DomainDict) -> Dict[Text, Any]:
        """A new booking also forgets the helpers of an unfinished earlier one."""
        result: Result = reset_values(tracker, BOOKING_HELPERS) if is_activation(tracker) else {}
        return {**result, **await self._validate("appointment_product", value, dispatcher, tracker, domain)}

    async def change(self, field: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
        result: Result = {"appointment_confirmed": None, "appointment_menu": None}
        catalogue = get_catalogue()
        product = catalogue.product(tracker.get_slot("appointment_product") or "")
        if field == "product":
            result.update(appointment_product=None, appointment_location=None, appointment_date=None,
                          appointment_slot=None)
        elif field == "location":
            locations = catalogue.locations_for(product.id) if product else []
            if product and len(locations) == 1:
                dispatcher.utter_message(text=say("appointments.only_location", text_channel(tracker),
                                                  product=product.in_sentence, location=locations[0].name))
            else:
                result.update(appointment_location=None, appointment_slot=None)
        elif field == "day":
            result.update(appointment_date=None, appointment_slot=None)
        elif field == "time":
            raw_date = tracker.get_slot("appointment_date")
            day = same_day(slot_or_none(tracker.get_slot("appointment_slot")),
                           DateRequest.from_dict(raw_date) if isinstance(raw_date, dict) else None)
            result.update(appointment_slot=None, appointment_date=day.to_dict() if day else None)
        elif field == "contact":
            result["appointment_contact"] = None
        elif field == "name":
            result["appointment_name"] = None
        return result


# -- questions ---------------------------------------------------------------------------------------------
async def ask_product(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    channel = text_channel(tracker)
    catalogue = get_catalogue()
    ids = [tracker.get_slot("product") or "", *POPULAR_BOOKABLE]
    products = [p for p in (catalogue.product(i) for i in dict.fromkeys(ids)) if p and p.bookable]
    dispatcher.utter_message(
        text=say("appointments.ask_product", channel, stop_hint=say("common.stop_hint", channel)),
        buttons=[{"title": p.name, "payload": payload("book_appointment", product=p.id)} for p in products[:6]]
        + [stop_button(channel)])
    return []


async def ask_location(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    channel = text_channel(tracker)
    catalogue = get_catalogue()
    product = catalogue.product(tracker.get_slot("appointment_product") or "")
    locations = catalogue.locations_for(product.id) if product else catalogue.locations
    context = tracker.get_slot("location")
    locations = sorted(locations, key=lambda loc: loc.id != context)
    what = say("appointments.your_appointment", channel, what=product.name) if product else ""
    dispatcher.utter_message(
        text=say("appointments.ask_location", channel, what=what, stop_hint=say("common.stop_hint", channel)),
        buttons=[{"title": loc.name, "payload": payload("choose_option", location=loc.id)} for loc in locations]
        + [change_button("appointments.button_other_product", channel, "product"), stop_button(channel)])
    return []


async def ask_date(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    channel = text_channel(tracker)
    catalogue = get_catalogue()
    product = catalogue.product(tracker.get_slot("appointment_product") or "")
    location = catalogue.location(tracker.get_slot("appointment_location") or "")
    what = (say("appointments.your_appointment", channel, what=f"{product.name}, {location.name}")
            if product and location else "")
    dispatcher.utter_message(text=say("appointments.ask_date", channel, what=what),
                             buttons=[asap_button(channel), stop_button(channel)])
    return []


async def ask_slot(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    return await offer_slots(dispatcher, tracker, product_id=tracker.get_slot("appointment_product"),
                             location_id=tracker.get_slot("appointment_location"),
                             date_name="appointment_date", offered_name="appointment_offered")


async def ask_contact(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """On WhatsApp: offer the number the citizen writes from (unless they just said no to it)."""
    channel = text_channel(tracker)
    own = sender_phone(tracker)
    # "nee" to the offer, or "ander nummer" at the summary: the citizen wants to give another one
    declined = (requested_slot(tracker) == "appointment_contact" and yes_no(tracker) is False
                or change_request(tracker, BOOKING_CHANGES) == "contact")
    if own and not declined:
        dispatcher.utter_message(text=say("appointments.offer_own_number", channel, phone=show_contact(own)),
                                 buttons=[button("appointments.button_yes_this_number", channel, "/affirm"),
                                          button("appointments.button_other_number", channel, "/deny")])
        return []
    dispatcher.utter_message(text=say("appointments.ask_contact", channel))
    return []


async def ask_confirmed(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    channel = text_channel(tracker)
    catalogue = get_catalogue()
    product = catalogue.product(tracker.get_slot("appointment_product") or "")
    location = catalogue.location(tracker.get_slot("appointment_location") or "")
    change = [change_button("appointments.button_other_day", channel, "day"),
              change_button("appointments.button_other_time", channel, "time"),
              change_button("appointments.button_other_contact", channel, "contact")]
    if product and len(product.locations) > 1:
        change.append(change_button("appointments.button_other_location", channel, "location"))
    if tracker.get_slot("appointment_menu"):
        more = [change_button("appointments.button_other_name", channel, "name"),
                change_button("appointments.button_other_product", channel, "product")]
        dispatcher.utter_message(
            text=say("appointments.what_to_change", channel),
            buttons=change + more + [button("appointments.button_confirm_anyway", channel, "/affirm"),
                                     stop_button(channel)])
        return [SlotSet("appointment_menu", None)]
    slot = slot_or_none(tracker.get_slot("appointment_slot"))
    dispatcher.utter_message(
        text=say("appointments.summary", channel, product=product.name if product else "?",
                 where=f"{location.name}, {location.address}" if location else "?",
                 when=format_moment(slot.starts_at) if slot else "?",
                 name=tracker.get_slot("appointment_name") or "?",
                 contact=show_contact(tracker.get_slot("appointment_contact"))),
        buttons=[button("appointments.button_confirm", channel, "/affirm"), *change, stop_button(channel)])
    return []


ASK_ACTIONS = ask_actions({
    "appointment_product": ask_product,
    "appointment_location": ask_location,
    "appointment_date": ask_date,
    "appointment_slot": ask_slot,
    "appointment_name": question("appointments.ask_name"),
    "appointment_contact": ask_contact,
    "appointment_confirmed": ask_confirmed,
})
ActionAskAppointmentSlot = ASK_ACTIONS["appointment_slot"]
ActionAskAppointmentContact = ASK_ACTIONS["appointment_contact"]


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
        channel = text_channel(tracker)
        catalogue = get_catalogue()
        try:
            appointments = await in_thread(get_book)
            booking = await in_thread(appointments.find, reference, contact)
        except Exception as error:  # it is booked; only the details cannot be read now
            log_failure("reading a new booking", error)
            dispatcher.utter_message(text=say("appointments.booked_no_details", channel, reference=reference))
            return events
        dispatcher.utter_message(text=booking_summary_nl(booking, catalogue))
        calendar = send_calendar(dispatcher, tracker, booking, catalogue, "appointments.calendar_new")
        dispatcher.utter_message(
            text=say("appointments.booked_anything_else", channel, calendar=calendar),
            buttons=[button("appointments.button_price", channel, payload("ask_price", product=booking.product_id)),
                     button("common.button_no_thanks", channel, "/thank")])
        return events + [SlotSet("product", booking.product_id), SlotSet("location", booking.location_id)]
