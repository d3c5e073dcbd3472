"""What the task forms (appointments, KAFKA-meldpunt) share: reading the citizen's answer, the way
out ("stop"), the channel of a conversation and the apology when the database fails.

How a form turn works (Rasa 3.6 forms): after each user message the form's validation action
(``validate_<form>``) runs its ``extract_<slot>`` methods, then ``validate_<slot>`` for what was
extracted. ``answer_for`` decides whether the latest message is an answer to the question the form
asked. When it is not (a question such as "wat moet ik meebrengen?", "stop", "medewerker") the
extract methods return nothing, Rasa rejects the form and a rule takes over (answer, then back to the
form; or stop). Everything else is an answer, also a wrong one: its validator then says in Dutch what
is wrong and the form asks again, so the conversation never gets stuck.
"""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Pattern, Text, TypeVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.common import latest_entity, latest_intent
from bot.actions.knowledge import answer_if_found
from bot.core.catalogue import Catalogue, Product, get_catalogue
from bot.core.kafka import CHANNELS

logger = logging.getLogger(__name__)

REQUESTED_SLOT = "requested_slot"
#: Prefix of the value an extract method passes on when the citizen wants to change an earlier answer.
CHANGE = "change:"
#: Slots of the task forms start with one of these; they are cleared when a task starts or stops.
TASK_SLOT_PREFIXES = ("appointment_", "manage_", "kafka_")

#: Never an answer: the form stops (rule) or hands over.
LEAVE_INTENTS = frozenset({"stop", "human_handoff"})
#: Questions the rules answer in the middle of a form, after which the form asks again.
QUESTION_INTENTS = frozenset({
    "ask_product_info", "ask_price", "ask_documents", "ask_appointment_needed", "ask_where",
    "ask_delivery", "ask_opening_hours", "ask_locations", "ask_contact", "help", "bot_challenge",
})

STOP_BUTTON = {"title": "Stoppen", "payload": "/stop"}
STOP_HINT = "U kunt altijd stoppen: typ 'stop'."

_STOPPED_TEXT = {
    "appointment_form": "Oké, ik maak geen afspraak. Er is niets geboekt.",
    "appointment_manage_form": "Oké, we stoppen. Uw afspraak blijft zoals ze was.",
    "kafka_form": "Oké, we stoppen. Uw melding is niet verstuurd en we hebben niets bewaard.",
    "kafka_status_form": "Oké, we stoppen.",
}

T = TypeVar("T")


# -- reading the latest message ---------------------------------------------------------------------
def latest_text(tracker: Tracker) -> str:
    return (tracker.latest_message.get("text") or "").strip()


def requested_slot(tracker: Tracker) -> Optional[str]:
    return tracker.get_slot(REQUESTED_SLOT)


def is_activation(tracker: Tracker) -> bool:
    """The validation action runs for the form being activated (Rasa passes no requested slot then)."""
    return requested_slot(tracker) is None


def is_change(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(CHANGE)


def change_field(value: str) -> str:
    return value[len(CHANGE):]


def change_request(tracker: Tracker, keywords: Mapping[str, Pattern[str]]) -> Optional[str]:
    """Which earlier answer the citizen wants to change: the ``detail`` entity of a button, or for a
    typed ``change_detail`` message ("andere dag", "ander nummer") the first matching keyword."""
    detail = latest_entity(tracker, "detail")
    if detail in keywords:
        return str(detail)
    if latest_intent(tracker) != "change_detail":
        return None
    text = latest_text(tracker).lower()
    return next((field for field, pattern in keywords.items() if pattern.search(text)), None)


def answer_for(
    tracker: Tracker,
    slot: str,
    *,
    entities: tuple = (),
    looks_valid: Optional[Callable[[str], bool]] = None,
    changes: Optional[Mapping[str, Pattern[str]]] = None,
) -> Optional[str]:
    """The raw answer to ``slot`` in the latest message, or None if the message is not one.

    Order: not asked -> None; stop/handoff -> None; a button entity; a change request (``change:day``);
    text that ``looks_valid`` -> answer even if NLU took it for a question ("kan het morgen?");
    a question -> None (the rules answer it); anything else -> answer (its validator explains).
    """
    if requested_slot(tracker) != slot:
        return None
    intent = latest_intent(tracker)
    if intent in LEAVE_INTENTS:
        return None
    for entity in entities:
        value = latest_entity(tracker, entity)
        if value not in (None, ""):
            return str(value)
    if changes:
        field = change_request(tracker, changes)
        if field:
            return CHANGE + field
    text = latest_text(tracker)
    if looks_valid is not None and looks_valid(text):
        return text
    if intent in QUESTION_INTENTS:
        return None
    return text


_QUESTION_START = re.compile(r"^\s*(wat|hoe|waar|wanneer|waarom|welke?|hoeveel|moet|kan|kunt|mag|is|zijn|heb|hebt)\b",
                             re.IGNORECASE)


def is_questionlike(text: str) -> bool:
    return "?" in text or bool(_QUESTION_START.match(text))


def find_product(catalogue: Catalogue, text: str) -> Optional[Product]:
    return catalogue.product(text) or catalogue.find_product(text)


def names_a_product(text: str) -> bool:
    """'bewonerskaart' answers "which service?", even if the NLU took it for a product question."""
    return find_product(get_catalogue(), text) is not None and not is_questionlike(text)


_YES = re.compile(r"^\s*(ja|jaja|jawel|yes|oké|oke|ok|akkoord|zeker|graag|doe maar|bevestig\w*)\b", re.IGNORECASE)
_NO = re.compile(r"^\s*(nee|neen|nope|liever niet|niet doen)\b", re.IGNORECASE)


def starts_with_yes(tracker: Tracker) -> bool:
    """'ja, annuleer' is a yes at a confirmation question, whatever the NLU made of it."""
    text = latest_text(tracker)
    return not text.startswith("/") and bool(_YES.match(text)) and not _NO.match(text)


def yes_no(tracker: Tracker, yes_intents: tuple = ()) -> Optional[bool]:
    """True for affirm (or one of ``yes_intents``: "ja, annuleer" is appointment_cancel) or a message
    that starts with "ja"; False for deny or a message that starts with "nee"; else None."""
    intent = latest_intent(tracker)
    if intent == "affirm" or intent in yes_intents:
        return True
    if intent == "deny":
        return False
    text = latest_text(tracker)
    if text.startswith("/"):
        return None
    return True if _YES.match(text) else False if _NO.match(text) else None


def set_in_this_run(tracker: Tracker, slot: str) -> bool:
    """Whether ``slot`` got a value in the current form run (the trailing slot events of the
    validation action's tracker: candidates, extractions, validations), not in an earlier turn."""
    for event in reversed(tracker.events):
        if event.get("event") != "slot":
            return False
        if event.get("name") == slot and event.get("value") is not None:
            return True
    return False


def keep(tracker: Tracker, slot: str) -> Dict[str, Any]:
    """For ``validate_<slot>(None)``: nothing was answered, so keep the value an earlier validator of
    this run may have set (a product offered in one place sets the place)."""
    return {slot: tracker.get_slot(slot)}


def reset_events(tracker: Tracker, keep: tuple = ()) -> List[EventType]:
    """SlotSet(None) for every task slot that has a value (except ``keep``)."""
    return [SlotSet(name, None) for name, value in tracker.slots.items()
            if name.startswith(TASK_SLOT_PREFIXES) and value is not None and name not in keep]


def reset_values(tracker: Tracker, slots: List[str], keep: tuple = ()) -> Dict[str, Any]:
    """For an extract method at form activation: None for each of ``slots`` that still holds a value
    from an earlier, unfinished task."""
    return {name: None for name in slots if tracker.get_slot(name) is not None and name not in keep}


# -- names and contact details -------------------------------------------------------------------
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


# -- channels, database calls, apologies ----------------------------------------------------------
def channel_of(conversation_id: Optional[str]) -> Optional[str]:
    """'whatsapp:+32470…' -> 'whatsapp'; ids without a known channel prefix -> None."""
    prefix, sep, rest = (conversation_id or "").partition(":")
    return prefix if sep and rest and prefix in CHANNELS else None


async def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking database call without blocking the action server's event loop."""
    return await asyncio.to_thread(function, *args, **kwargs)


def apologise(dispatcher: CollectingDispatcher, what: str = "") -> None:
    """The database failed: say so honestly and give the human way out."""
    contact = get_catalogue().contact
    dispatcher.utter_message(
        text=f"Sorry, er ging bij ons iets mis{what}. Probeer het straks opnieuw, of bel {contact.name} "
             f"op {contact.phone} ({contact.hours}).")


def log_failure(what: str, error: BaseException) -> None:
    """Log a database failure by type only: messages may hold personal data."""
    logger.error("%s failed: %s", what, type(error).__name__)
    logger.debug("%s failed", what, exc_info=True)


# -- actions ----------------------------------------------------------------------------------------
class ActionStopTask(Action):
    """'stop' / 'laat maar' in a task form: end the form politely and forget its answers."""

    def name(self) -> Text:
        return "action_stop_task"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        form = (tracker.active_loop or {}).get("name")
        text = _STOPPED_TEXT.get(form or "", "Oké, we stoppen.")
        dispatcher.utter_message(text=f"{text}\nKan ik u nog met iets anders helpen?")
        return [ActiveLoop(None), SlotSet(REQUESTED_SLOT, None), *reset_events(tracker)]


class ActionOutOfContext(Action):
    """A choice, change or loose answer ("morgen", a button of a finished conversation) outside a task."""

    def name(self) -> Text:
        return "action_out_of_context"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        # knowledge hook: a city question taken for a loose answer ("ik wil mijn voornaam veranderen")
        handled = answer_if_found(dispatcher, tracker)
        if handled is not None:
            return handled
        dispatcher.utter_message(
            text="Ik weet niet goed waar dat bij hoort. Dat gesprek is misschien al afgelopen. "
                 "Waarmee kan ik u helpen?",
            buttons=[
                {"title": "Afspraak maken", "payload": "/book_appointment"},
                {"title": "Mijn afspraak bekijken", "payload": "/appointment_lookup"},
                {"title": "Idee om het eenvoudiger te maken", "payload": "/kafka_suggestion"},
                {"title": "Met een medewerker praten", "payload": "/human_handoff"},
            ],
        )
        return []


# action_human_handoff: see bot/actions/handoff.py (human handoff).
