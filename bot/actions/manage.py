"""Looking up, moving and cancelling an appointment in the chat (``appointment_manage_form``).

Always with the reference *and* the phone number or e-mail address the appointment was made with;
after ``MAX_LOOKUP_ATTEMPTS`` failed checks the form points to Gentinfo. Moving asks a new day and
moment (the same slot offer as booking, ``bot/actions/slots.py``), cancelling only a yes.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.common import latest_entity, latest_intent, now
from bot.actions.forms import Field, Result, TableForm, ask_actions, question
from bot.actions.slots import (
    asap_button,
    booking_lines,
    booking_record,
    button,
    change_button,
    check_date_text,
    choose_slot,
    confirmation_answer,
    get_book,
    ics_message,
    is_date_text,
    managed_booking,
    offer_slots,
    send_calendar,
    slot_looks_valid,
)
from bot.actions.tasks import (
    apologise,
    in_thread,
    is_activation,
    latest_text,
    log_failure,
    reset_values,
    set_in_this_run,
    stop_button,
    text_channel,
)
from bot.core.answers import payload
from bot.core.appointments import (
    AlreadyCancelled,
    AppointmentError,
    AppointmentPassed,
    Booking,
    BookingStatus,
    ContactMismatch,
    InvalidSlot,
    OutsideHorizon,
    Slot,
    SlotTaken,
    UnknownReference,
    booking_summary_nl,
)
from bot.core.catalogue import Catalogue, get_catalogue
from bot.core.choices import BOOKING_CHANGES, change_field, contact_candidate, find_reference, is_change, is_contact_text
from bot.core.contact import InvalidContact, normalise_contact
from bot.core.dates import DateRequest, format_moment
from bot.core.slot_search import same_day, slot_or_none
from bot.core.texts import say

#: Failed reference + contact checks before the look-up form gives up (and points to Gentinfo).
MAX_LOOKUP_ATTEMPTS = 3

MANAGE_SLOTS = ["manage_action", "manage_reference", "manage_contact"]
MANAGE_STEPS = ["manage_date", "manage_slot", "manage_confirmed"]
MANAGE_HELPERS = ["manage_offered", "manage_booking", "manage_outcome"]
MANAGE_ACTIONS = {"appointment_lookup": "lookup", "appointment_cancel": "cancel",
                  "appointment_reschedule": "reschedule"}


def _reuse(tracker: Tracker) -> bool:
    """Moving or cancelling right after a look-up in this conversation: no need to ask again."""
    return (MANAGE_ACTIONS.get(latest_intent(tracker)) in ("cancel", "reschedule")
            and bool(tracker.get_slot("manage_verified")) and bool(tracker.get_slot("manage_reference"))
            and bool(tracker.get_slot("manage_contact")))


def _booking_of(tracker: Tracker) -> Dict[str, Any]:
    return tracker.get_slot("manage_booking") or {}


# -- reading answers -------------------------------------------------------------------------------------
def _activate_action(tracker: Tracker) -> Result:
    return {"manage_action": MANAGE_ACTIONS.get(latest_intent(tracker)) or "lookup"}


def _extract_action(tracker: Tracker) -> Result:
    # switching from looking up to moving/cancelling halfway ("ik wil hem toch annuleren")
    action = MANAGE_ACTIONS.get(latest_intent(tracker))
    text = latest_text(tracker)
    if action in ("cancel", "reschedule") and not find_reference(text) and not is_contact_text(text):
        return {"manage_action": action}
    return {}


def _activate_reference(tracker: Tracker) -> Result:
    if _reuse(tracker):
        return {}
    entity = latest_entity(tracker, "reference")
    return {"manage_reference": find_reference(entity or "") or find_reference(latest_text(tracker))}


def _activate_contact(tracker: Tracker) -> Result:
    return {} if _reuse(tracker) else reset_values(tracker, ["manage_contact"])


def _extract_confirmed(tracker: Tracker) -> Result:
    # "ja, annuleer" / "verplaatsen" is the NLU's appointment_cancel / _reschedule: a yes
    action = tracker.get_slot("manage_action")
    same = tuple(intent for intent, name in MANAGE_ACTIONS.items() if name == action and name != "lookup")
    return confirmation_answer(tracker, "manage_confirmed", same)


# -- checks ----------------------------------------------------------------------------------------------
async def check_action(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    result: Result = {"manage_action": value if value in ("lookup", "cancel", "reschedule") else "lookup"}
    if is_activation(tracker):
        result.update(reset_values(tracker, MANAGE_STEPS + MANAGE_HELPERS))
    return result


async def check_reference(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    reference = find_reference(str(value))
    if reference is None:
        dispatcher.utter_message(text=say("manage.unknown_reference_format", text_channel(tracker)))
    return {"manage_reference": reference}


async def check_contact(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    channel = text_channel(tracker)
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
        result: Result = {"manage_attempts": attempts, "manage_verified": None,
                          "manage_reference": None, "manage_contact": None}
        if attempts >= MAX_LOOKUP_ATTEMPTS:
            dispatcher.utter_message(text=say("manage.not_found_give_up", channel, reason=error.message_nl))
            return {**result, "manage_outcome": "not_found"}
        dispatcher.utter_message(text=say("manage.not_found_try_again", channel, reason=error.message_nl))
        return result
    except Exception as error:  # database down
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


async def check_date(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    if isinstance(value, dict):
        return {"manage_date": value}
    booking = _booking_of(tracker)
    wish = await check_date_text(str(value), booking.get("product_id"), booking.get("location_id"), dispatcher,
                                 channel=text_channel(tracker))
    return {"manage_date": wish, "manage_slot": None}


async def check_slot(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    booking = _booking_of(tracker)
    return await choose_slot(value, tracker, dispatcher, slot_name="manage_slot", date_name="manage_date",
                             offered_name="manage_offered", product_id=booking.get("product_id"),
                             location_id=booking.get("location_id"))


async def check_confirmed(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    channel = text_channel(tracker)
    action = tracker.get_slot("manage_action")
    if is_change(value) and action == "reschedule":
        return await form.change(change_field(value), dispatcher, tracker)
    if value is False:
        dispatcher.utter_message(text=say("manage.kept", channel))
        return {"manage_confirmed": False, "manage_outcome": "kept"}
    if value is True:
        return await (cancel(dispatcher, tracker) if action == "cancel" else move(dispatcher, tracker))
    text = str(value)
    if action == "reschedule" and is_date_text(text):
        booking = _booking_of(tracker)
        wish = await check_date_text(text, booking.get("product_id"), booking.get("location_id"), dispatcher,
                                     tracker.get_slot("manage_date"), channel)
        if wish:
            return {"manage_date": wish, "manage_slot": None, "manage_confirmed": None}
        return {"manage_confirmed": None}
    key = "manage.confirm_cancel_again" if action == "cancel" else "manage.confirm_move_again"
    dispatcher.utter_message(text=say(key, channel))
    return {"manage_confirmed": None}


async def cancel(dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    try:
        book = await in_thread(get_book)
        booking = await in_thread(book.cancel, tracker.get_slot("manage_reference"), tracker.get_slot("manage_contact"))
    except AppointmentError as error:
        dispatcher.utter_message(text=error.message_nl)
        return {"manage_confirmed": False, "manage_outcome": "closed"}
    except Exception as error:  # database down: nothing changed
        log_failure("cancelling", error)
        apologise(dispatcher, "manage.failed_cancelling")
        return {"manage_confirmed": False, "manage_outcome": "error"}
    return {"manage_confirmed": True, "manage_outcome": "cancelled", "manage_booking": booking_record(booking)}


async def move(dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    try:
        slot = Slot.from_dict(tracker.get_slot("manage_slot"))
        book = await in_thread(get_book)
        booking = await in_thread(book.reschedule, tracker.get_slot("manage_reference"),
                                  tracker.get_slot("manage_contact"), slot)
    except (SlotTaken, InvalidSlot, OutsideHorizon) as error:
        dispatcher.utter_message(text=say("appointments.search_again", text_channel(tracker), reason=error.message_nl))
        return {"manage_slot": None, "manage_confirmed": None}
    except AppointmentError as error:
        dispatcher.utter_message(text=error.message_nl)
        return {"manage_confirmed": False, "manage_outcome": "closed"}
    except (KeyError, TypeError, ValueError) as error:
        log_failure("rescheduling (slot)", error)
        return {"manage_slot": None, "manage_confirmed": None}
    except Exception as error:  # database down: the old appointment stands
        log_failure("rescheduling", error)
        apologise(dispatcher, "manage.failed_moving")
        return {"manage_confirmed": False, "manage_outcome": "error"}
    return {"manage_confirmed": True, "manage_outcome": "rescheduled", "manage_booking": booking_record(booking)}


# -- the form ----------------------------------------------------------------------------------------------
class ValidateAppointmentManageForm(TableForm):
    form = "appointment_manage_form"
    changes = BOOKING_CHANGES
    fields = {
        "manage_action": Field(check_action, activate=_activate_action, extract=_extract_action, changes=False,
                               keep_on_none=False),
        "manage_reference": Field(check_reference, entities=("reference",), activate=_activate_reference,
                                  looks_valid=lambda text, _: find_reference(text) is not None, changes=False),
        "manage_contact": Field(check_contact, activate=_activate_contact,
                                looks_valid=lambda text, _: is_contact_text(text), changes=False),
        "manage_date": Field(check_date, entities=("option",), looks_valid=lambda text, _: is_date_text(text)),
        "manage_slot": Field(check_slot, entities=("option",), looks_valid=slot_looks_valid("manage_offered")),
        "manage_confirmed": Field(check_confirmed, extract=_extract_confirmed, changes=False),
    }

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

    async def change(self, field: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
        if field == "time":
            raw_date = tracker.get_slot("manage_date")
            day = same_day(slot_or_none(tracker.get_slot("manage_slot")),
                           DateRequest.from_dict(raw_date) if isinstance(raw_date, dict) else None)
            return {"manage_slot": None, "manage_confirmed": None, "manage_date": day.to_dict() if day else None}
        return {"manage_date": None, "manage_slot": None, "manage_confirmed": None}


# -- questions ---------------------------------------------------------------------------------------------
async def ask_reference(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    channel = text_channel(tracker)
    dispatcher.utter_message(text=say("manage.ask_reference", channel), buttons=[stop_button(channel)])
    return []


async def ask_date(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    channel = text_channel(tracker)
    product, location, starts = managed_booking(tracker)
    now_text = (say("manage.now_at", channel, product=product.name, location=location.name, when=format_moment(starts))
                if product and location and starts else "")
    dispatcher.utter_message(text=say("manage.ask_date", channel, now_text=now_text),
                             buttons=[asap_button(channel), stop_button(channel)])
    return []


async def ask_slot(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    record = _booking_of(tracker)
    starts = record.get("starts_at")
    return await offer_slots(dispatcher, tracker, product_id=str(record.get("product_id") or ""),
                             location_id=str(record.get("location_id") or ""), date_name="manage_date",
                             offered_name="manage_offered",
                             exclude=datetime.fromisoformat(starts) if starts else None)


async def ask_confirmed(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    channel = text_channel(tracker)
    product, location, starts = managed_booking(tracker)
    reference = tracker.get_slot("manage_reference")
    what = product.name if product else "?"
    old = format_moment(starts) if starts else "?"
    if tracker.get_slot("manage_action") == "cancel":
        dispatcher.utter_message(
            text=say("manage.confirm_cancel", channel, reference=reference, product=what, when=old,
                     where=f"{location.name}, {location.address}" if location else "?"),
            buttons=[button("manage.button_yes_cancel", channel, "/affirm"),
                     button("manage.button_keep", channel, "/deny")])
        return []
    slot = slot_or_none(tracker.get_slot("manage_slot"))
    dispatcher.utter_message(
        text=say("manage.confirm_move", channel, reference=reference, product=what,
                 location=location.name if location else "?", old=old,
                 new=format_moment(slot.starts_at) if slot else "?"),
        buttons=[button("manage.button_yes_move", channel, "/affirm"),
                 change_button("manage.button_other_moment", channel, "day"),
                 button("manage.button_keep", channel, "/deny")])
    return []


ASK_ACTIONS = ask_actions({
    "manage_reference": ask_reference,
    "manage_contact": question("manage.ask_contact"),
    "manage_date": ask_date,
    "manage_slot": ask_slot,
    "manage_confirmed": ask_confirmed,
})


class ActionAppointmentManaged(Action):
    """After the look-up form: show the appointment, or confirm the move or cancellation."""

    def name(self) -> Text:
        return "action_appointment_managed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        channel = text_channel(tracker)
        outcome = tracker.get_slot("manage_outcome")
        reference, contact = tracker.get_slot("manage_reference"), tracker.get_slot("manage_contact")
        # manage_action stays: it keeps the slot order right when "Annuleren" follows a look-up
        events: List[EventType] = [SlotSet(name, None) for name in MANAGE_STEPS + MANAGE_HELPERS
                                   if tracker.get_slot(name) is not None]
        if outcome not in ("shown", "cancelled", "rescheduled") or not reference or not contact:
            dispatcher.utter_message(text=say("common.anything_else", channel))
            return events
        catalogue = get_catalogue()
        try:
            book = await in_thread(get_book)
            booking = await in_thread(book.find, reference, contact)
        except Exception as error:
            log_failure("reading a booking", error)
            apologise(dispatcher)
            return events
        if outcome == "cancelled":
            _cancelled(dispatcher, tracker, booking, catalogue)
            return events + [SlotSet("manage_verified", None), SlotSet("manage_reference", None),
                             SlotSet("manage_contact", None)]
        if outcome == "rescheduled":
            dispatcher.utter_message(text=say("manage.moved", channel, summary=booking_summary_nl(booking, catalogue)))
            calendar = send_calendar(dispatcher, tracker, booking, catalogue, "manage.calendar_moved")
            dispatcher.utter_message(text=calendar + say("common.anything_else", channel))
            return events
        _show(dispatcher, channel, booking, catalogue)
        return events + [SlotSet("product", booking.product_id), SlotSet("location", booking.location_id)]


def _cancelled(dispatcher: CollectingDispatcher, tracker: Tracker, booking: Booking, catalogue: Catalogue) -> None:
    channel = text_channel(tracker)
    dispatcher.utter_message(text=say("manage.cancelled", channel, reference=booking.reference,
                                      lines=booking_lines(booking, catalogue, channel)))
    calendar = send_calendar(dispatcher, tracker, booking, catalogue, "manage.calendar_cancelled")
    dispatcher.utter_message(
        text=calendar + say("manage.new_appointment_question", channel),
        buttons=[button("manage.button_new_appointment", channel, payload("book_appointment", product=booking.product_id)),
                 button("common.button_no_thanks", channel, "/thank")])


def _show(dispatcher: CollectingDispatcher, channel: Any, booking: Booking, catalogue: Catalogue) -> None:
    lines = booking_lines(booking, catalogue, channel)
    if booking.status is BookingStatus.cancelled:
        dispatcher.utter_message(
            text=say("manage.show_cancelled", channel, reference=booking.reference, lines=lines),
            buttons=[button("manage.button_new_appointment", channel,
                            payload("book_appointment", product=booking.product_id))])
        return
    product = catalogue.product(booking.product_id)
    bring = say("manage.bring", channel, items="; ".join(product.bring)) if product and product.bring else ""
    passed = booking.starts_at <= now()
    dispatcher.utter_message(
        text=say("manage.show", channel, reference=booking.reference, lines=lines, bring=bring)
        + (say("manage.passed", channel) if passed else ""),
        buttons=[] if passed else [button("manage.button_move", channel, "/appointment_reschedule"),
                                   button("manage.button_cancel", channel, "/appointment_cancel"),
                                   button("manage.button_leave", channel, "/thank")])
    if not passed:
        dispatcher.utter_message(json_message=ics_message(booking, catalogue))
