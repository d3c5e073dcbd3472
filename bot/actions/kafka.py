"""KAFKA-meldpunt in the chat: file a suggestion (``kafka_form``) and ask its status (``kafka_status_form``).

Suggestion: what is too complicated (the citizen's own words, stored verbatim) -> which service
(catalogue buttons or "iets anders") -> an optional proposal ("geen" skips) -> anonymous, or with
explicit consent a name and an e-mail address or phone number -> summary -> "ja, verstuur". The
suggestion is filed by the ``kafka_confirmed`` check; ``KafkaRegister.file_suggestion`` commits before
it returns, so the reference the assistant then gives is real. Anonymous suggestions carry no
channel or conversation id.

The status look-up (``kafka_status_form``) is ``bot/actions/kafka_status.py``.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import metrics
from bot.actions.common import latest_entity, latest_intent
from bot.actions.forms import Field, Result, TableForm, ask_actions, nothing, question
from bot.actions.slots import button
from bot.actions.tasks import (
    LEAVE_INTENTS,
    answer_for,
    apologise,
    change_request,
    channel_of,
    in_thread,
    is_activation,
    latest_text,
    log_failure,
    names_a_product,
    requested_slot,
    reset_values,
    starts_with_yes,
    stop_button,
    text_channel,
    yes_no,
)
from bot.core import db
from bot.core.answers import POPULAR_PRODUCTS, payload
from bot.core.catalogue import Catalogue, get_catalogue
from bot.core.choices import (
    ANONYMOUS,
    CHANGE,
    KAFKA_CHANGES,
    NAMED,
    NO_ANSWER,
    WORD,
    clean_name,
    contact_candidate,
    looks_like_name,
    problem_error,
    quote,
    word_count,
)
from bot.core.contact import ContactKind, InvalidContact, normalise_contact
from bot.core.kafka import (
    MAX_NAME_CHARS,
    MAX_PRODUCT_OTHER_CHARS,
    MAX_PROPOSAL_CHARS,
    InvalidSuggestion,
    KafkaRegister,
    TooLong,
)
from bot.core.texts import say

#: "Iets anders": a suggestion about something that is not in the catalogue.
OTHER = "anders"
#: Stored in a slot for "no answer" (no proposal, no topic, no reference), so the form moves on.
NONE = "-"

FORM_SLOTS = ["kafka_problem", "kafka_product", "kafka_proposal", "kafka_anonymous", "kafka_confirmed"]
IDENTITY_SLOTS = ["kafka_consent", "kafka_name", "kafka_contact"]
HELPERS = ["kafka_product_other", "kafka_menu", "kafka_reference"]
#: Forget the identity: anonymous after all.
_ANONYMOUS_AGAIN = {"kafka_consent": None, "kafka_name": None, "kafka_contact": None}

_registers: Dict[Tuple[str, Optional[str]], KafkaRegister] = {}
_registers_lock = threading.Lock()


def get_register() -> KafkaRegister:
    """The register on the configured database, created once per process (per database URL)."""
    key = (db.database_url(), os.environ.get("GENTINFO_DB_SCHEMA") or None)
    with _registers_lock:
        register = _registers.get(key)
        if register is None:
            engine = db.make_engine()
            db.create_schema(engine)
            register = _registers[key] = KafkaRegister(engine)
        return register


def product_label(catalogue: Catalogue, product_id: Optional[str], other: Optional[str],
                  channel: Optional[str] = None) -> str:
    product = catalogue.product(product_id or "")
    if product:
        return product.name
    return other if other and other != NONE else say("kafka.something_else", channel)


# -- reading answers -------------------------------------------------------------------------------------
def _extract_proposal(tracker: Tracker) -> Result:
    if requested_slot(tracker) == "kafka_proposal" and latest_text(tracker).startswith("/"):
        # a button ("Geen voorstel" = /deny): the mapping stored the payload, make it an answer
        return {"kafka_proposal": NONE if latest_intent(tracker) == "deny" else latest_text(tracker)}
    return {}


def _activate_product(tracker: Tracker) -> Result:
    product = get_catalogue().product(latest_entity(tracker, "product") or "")
    return {"kafka_product": product.id if product else None}


def choice(slot: str) -> Any:
    """A yes/no question: True, False, 'change:<field>', a button option or the text."""
    def extract(tracker: Tracker) -> Result:
        if requested_slot(tracker) != slot:
            return {}
        field = change_request(tracker, KAFKA_CHANGES)
        if field:
            return {slot: CHANGE + field}
        option = latest_entity(tracker, "option")
        if option:
            return {slot: str(option)}
        text = latest_text(tracker)
        if slot == "kafka_anonymous" and not text.startswith("/") and (ANONYMOUS.search(text) or NAMED.search(text)):
            return {slot: text}  # "ja, contacteer mij": the words decide, not the "ja"
        if starts_with_yes(tracker):
            return {slot: True}
        if latest_intent(tracker) in LEAVE_INTENTS:
            return {}
        answer = yes_no(tracker)
        if answer is not None:
            return {slot: answer}
        value = answer_for(tracker, slot)
        return {} if value is None else {slot: value}
    return extract


# -- checks ----------------------------------------------------------------------------------------------
async def check_problem(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    error = problem_error(str(value))
    if error:
        dispatcher.utter_message(text=error)
        return {"kafka_problem": None}
    return {"kafka_problem": str(value)}  # verbatim, as typed


async def check_product(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    catalogue = get_catalogue()
    text = str(value).strip()
    product = catalogue.product(text) or catalogue.find_product(text)
    if product:
        return {"kafka_product": product.id, "kafka_product_other": None}
    if text.lower() in (OTHER, "iets anders", "anders", "andere"):
        return {"kafka_product": OTHER, "kafka_product_other": None}
    if text.startswith("/") or not WORD.search(text):
        dispatcher.utter_message(text=say("kafka.choose_product", text_channel(tracker)))
        return {"kafka_product": None}
    if NO_ANSWER.match(text):
        return {"kafka_product": OTHER, "kafka_product_other": NONE}
    # a topic that is not in the catalogue ("het containerpark"): keep the citizen's words
    return {"kafka_product": OTHER, "kafka_product_other": text[:MAX_PRODUCT_OTHER_CHARS]}


async def check_product_other(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    text = str(value).strip()
    if NO_ANSWER.match(text):
        return {"kafka_product_other": NONE}
    if text.startswith("/") or not WORD.search(text):
        dispatcher.utter_message(text=say("kafka.type_topic", text_channel(tracker)))
        return {"kafka_product_other": None}
    if len(text) > MAX_PRODUCT_OTHER_CHARS:
        dispatcher.utter_message(text=TooLong("product_other", MAX_PRODUCT_OTHER_CHARS).citizen_message)
        return {"kafka_product_other": None}
    return {"kafka_product_other": text}


async def check_proposal(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    text = str(value)
    if value == NONE or NO_ANSWER.match(text) or latest_intent(tracker) == "deny" and word_count(text) <= 3:
        return {"kafka_proposal": NONE}
    if text.startswith("/"):
        dispatcher.utter_message(text=say("kafka.type_proposal", text_channel(tracker)))
        return {"kafka_proposal": None}
    if len(text) > MAX_PROPOSAL_CHARS:
        dispatcher.utter_message(text=TooLong("proposal", MAX_PROPOSAL_CHARS).citizen_message)
        return {"kafka_proposal": None}
    return {"kafka_proposal": text}  # verbatim


async def check_anonymous(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    text = str(value).lower()
    if value is True or text in ("anoniem", "true") or (isinstance(value, str) and ANONYMOUS.search(text)):
        return {"kafka_anonymous": True, **_ANONYMOUS_AGAIN}
    if value is False or text in ("contact", "false") or (isinstance(value, str) and NAMED.search(text)):
        return {"kafka_anonymous": False}
    dispatcher.utter_message(text=say("kafka.choose_anonymous", text_channel(tracker)))
    return {"kafka_anonymous": None}


async def check_consent(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    channel = text_channel(tracker)
    if value is True or str(value).lower() in ("ja", "akkoord", "true"):
        return {"kafka_consent": True}
    if value is False or str(value).lower() in ("nee", "false", "anoniem"):
        dispatcher.utter_message(text=say("kafka.consent_refused", channel))
        return {"kafka_consent": None, "kafka_anonymous": True, "kafka_name": None, "kafka_contact": None}
    dispatcher.utter_message(text=say("kafka.consent_again", channel))
    return {"kafka_consent": None}


async def check_name(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    name = clean_name(str(value), MAX_NAME_CHARS)
    if name is None:
        dispatcher.utter_message(text=say("kafka.type_name", text_channel(tracker)))
    return {"kafka_name": name}


async def check_contact(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    try:
        contact = normalise_contact(contact_candidate(str(value)))
    except InvalidContact as error:
        dispatcher.utter_message(text=error.message_nl)
        return {"kafka_contact": None}
    return {"kafka_contact": contact.value}


async def check_confirmed(form: Any, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    if value is True:
        return await file_suggestion(dispatcher, tracker)
    if value is False:
        return {"kafka_confirmed": None, "kafka_menu": True}
    dispatcher.utter_message(text=say("kafka.confirm_again", text_channel(tracker)))
    return {"kafka_confirmed": None}


async def file_suggestion(dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
    """File the suggestion; only when this returned is the reference announced."""
    anonymous = bool(tracker.get_slot("kafka_anonymous"))
    consent = bool(tracker.get_slot("kafka_consent")) and not anonymous
    product = tracker.get_slot("kafka_product")
    other = tracker.get_slot("kafka_product_other")
    proposal = tracker.get_slot("kafka_proposal")
    contact = tracker.get_slot("kafka_contact") if consent else None
    kind = normalise_contact(contact).kind if contact else None
    try:
        register = await in_thread(get_register)
        suggestion = await in_thread(
            register.file_suggestion,
            tracker.get_slot("kafka_problem"),
            product_id=None if product in (None, OTHER) else product,
            product_other=None if product != OTHER or other in (None, NONE) else other,
            proposal=None if proposal in (None, NONE) else proposal,
            anonymous=anonymous,
            consent=consent,
            contact_name=tracker.get_slot("kafka_name") if consent else None,
            contact_email=contact if kind is ContactKind.email else None,
            contact_phone=contact if kind is ContactKind.phone else None,
            channel=None if anonymous else channel_of(tracker.sender_id),
            conversation_id=None if anonymous else tracker.sender_id,
        )
    except InvalidSuggestion as error:
        dispatcher.utter_message(text=error.citizen_message)
        return {"kafka_confirmed": None, **_CLEAR_FOR.get(error.field, {"kafka_anonymous": None, **_ANONYMOUS_AGAIN})}
    except Exception as error:  # database down: nothing was filed, say so
        log_failure("filing a KAFKA suggestion", error)
        metrics.kafka_report("failed")
        apologise(dispatcher, "kafka.failed_filing")
        return {"kafka_confirmed": None}
    metrics.kafka_report("anonymous" if anonymous else "with_contact" if consent else "filed")
    return {"kafka_confirmed": True, "kafka_reference": suggestion.reference}


#: The register refused a field: ask that answer again.
_CLEAR_FOR: Dict[str, Result] = {
    "problem": {"kafka_problem": None},
    "proposal": {"kafka_proposal": None},
    "product_other": {"kafka_product_other": None},
    "product_id": {"kafka_product": None},
    "contact_name": {"kafka_name": None},
    "contact_email": {"kafka_contact": None},
    "contact_phone": {"kafka_contact": None},
}

#: A change request ("ander voorstel") -> the answers to forget.
_CHANGES: Dict[str, Result] = {
    "problem": {"kafka_problem": None},
    "proposal": {"kafka_proposal": None},
    "product": {"kafka_product": None, "kafka_product_other": None},
    "identity": {"kafka_anonymous": None, **_ANONYMOUS_AGAIN},
}


class ValidateKafkaForm(TableForm):
    form = "kafka_form"
    changes = KAFKA_CHANGES
    # kafka_problem and kafka_proposal come verbatim from the from_text mappings
    fields = {
        "kafka_problem": Field(check_problem, extract=nothing, changes=False),
        "kafka_product": Field(check_product, entities=("product", "option"), activate=_activate_product,
                               looks_valid=lambda text, _: names_a_product(text)),
        "kafka_product_other": Field(check_product_other, activate=nothing),
        "kafka_proposal": Field(check_proposal, extract=_extract_proposal),
        "kafka_anonymous": Field(check_anonymous, extract=choice("kafka_anonymous")),
        "kafka_consent": Field(check_consent, activate=nothing, extract=choice("kafka_consent")),
        "kafka_name": Field(check_name, activate=nothing, looks_valid=lambda text, _: looks_like_name(text)),
        "kafka_contact": Field(check_contact, activate=nothing),
        "kafka_confirmed": Field(check_confirmed, extract=choice("kafka_confirmed")),
    }

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> List[Text]:
        slots = ["kafka_problem", "kafka_product"]
        if tracker.get_slot("kafka_product") == OTHER:
            slots.append("kafka_product_other")
        slots += ["kafka_proposal", "kafka_anonymous"]
        if tracker.get_slot("kafka_anonymous") is False:
            slots.append("kafka_consent")
            if tracker.get_slot("kafka_consent"):
                slots += ["kafka_name", "kafka_contact"]
        return slots + ["kafka_confirmed"]

    async def validate_kafka_problem(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> Dict[Text, Any]:
        """A new suggestion also forgets the identity and helpers of an unfinished earlier one."""
        result: Result = reset_values(tracker, IDENTITY_SLOTS + HELPERS) if is_activation(tracker) else {}
        return {**result, **await self._validate("kafka_problem", value, dispatcher, tracker, domain)}

    async def change(self, field: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
        return {"kafka_confirmed": None, "kafka_menu": None, **_CHANGES.get(field, {})}


# -- questions -------------------------------------------------------------------------------------------
async def ask_problem(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    channel = text_channel(tracker)
    dispatcher.utter_message(text=say("kafka.ask_problem", channel, stop_hint=say("common.stop_hint", channel)),
                             buttons=[stop_button(channel)])
    return []


async def ask_proposal(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    channel = text_channel(tracker)
    dispatcher.utter_message(text=say("kafka.ask_proposal", channel),
                             buttons=[button("kafka.button_no_proposal", channel, "/deny"), stop_button(channel)])
    return []


async def ask_anonymous(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    channel = text_channel(tracker)
    dispatcher.utter_message(
        text=say("kafka.ask_anonymous", channel),
        buttons=[button("kafka.button_anonymous", channel, payload("choose_option", option="anoniem")),
                 button("kafka.button_contact_me", channel, payload("choose_option", option="contact")),
                 stop_button(channel)])
    return []


async def ask_consent(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    channel = text_channel(tracker)
    dispatcher.utter_message(text=say("kafka.ask_consent", channel),
                             buttons=[button("kafka.button_consent_yes", channel, "/affirm"),
                                      button("kafka.button_consent_no", channel, "/deny")])
    return []


async def ask_product(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    channel = text_channel(tracker)
    catalogue = get_catalogue()
    mentioned = catalogue.find_product(tracker.get_slot("kafka_problem") or "")
    ids = [mentioned.id if mentioned else "", tracker.get_slot("product") or "", *POPULAR_PRODUCTS]
    products = [p for p in (catalogue.product(i) for i in dict.fromkeys(ids)) if p][:6]
    dispatcher.utter_message(
        text=say("kafka.ask_product", channel),
        buttons=[{"title": p.name, "payload": payload("choose_option", product=p.id)} for p in products]
        + [button("kafka.button_something_else", channel, payload("choose_option", option=OTHER))])
    return []


async def ask_confirmed(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    channel = text_channel(tracker)
    change = [button(f"kafka.button_change_{field}", channel, payload("change_detail", detail=field))
              for field in ("problem", "product", "proposal", "identity")]
    if tracker.get_slot("kafka_menu"):
        dispatcher.utter_message(text=say("kafka.what_to_change", channel),
                                 buttons=change + [button("kafka.button_send_anyway", channel, "/affirm"),
                                                   stop_button(channel)])
        return [SlotSet("kafka_menu", None)]
    proposal = tracker.get_slot("kafka_proposal")
    contact = tracker.get_slot("kafka_contact")
    if tracker.get_slot("kafka_anonymous"):
        who = say("kafka.who_anonymous", channel)
    elif tracker.get_slot("kafka_consent") and contact:
        who = f"{tracker.get_slot('kafka_name')}, {contact}"
    else:
        who = say("kafka.who_without_contact", channel)
    dispatcher.utter_message(
        text=say("kafka.summary", channel, problem=quote(tracker.get_slot("kafka_problem") or ""),
                 product=product_label(get_catalogue(), tracker.get_slot("kafka_product"),
                                       tracker.get_slot("kafka_product_other"), channel),
                 proposal=quote(proposal) if proposal and proposal != NONE else say("kafka.no_proposal", channel),
                 who=who),
        buttons=[button("kafka.button_send", channel, "/affirm"), *change, stop_button(channel)])
    return []


ASK_ACTIONS = ask_actions({
    "kafka_problem": ask_problem,
    "kafka_product": ask_product,
    "kafka_product_other": question("kafka.ask_product_other"),
    "kafka_proposal": ask_proposal,
    "kafka_anonymous": ask_anonymous,
    "kafka_consent": ask_consent,
    "kafka_name": question("kafka.ask_name"),
    "kafka_contact": question("kafka.ask_contact"),
    "kafka_confirmed": ask_confirmed,
})


class ActionKafkaFiled(Action):
    """After the form: the reference and what happens next."""

    def name(self) -> Text:
        return "action_kafka_filed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        reference = tracker.get_slot("kafka_reference")
        events: List[EventType] = [SlotSet(name, None) for name in FORM_SLOTS + IDENTITY_SLOTS + HELPERS
                                   if tracker.get_slot(name) is not None]
        if not reference:
            return events
        channel = text_channel(tracker)
        contacted = bool(tracker.get_slot("kafka_consent")) and not tracker.get_slot("kafka_anonymous")
        follow_up = ("kafka.follow_up_contact" if contacted
                     else "kafka.follow_up_anonymous" if tracker.get_slot("kafka_anonymous")
                     else "kafka.follow_up_no_contact")
        dispatcher.utter_message(
            text=say("kafka.filed", channel, reference=reference, follow_up=say(follow_up, channel)),
            buttons=[button("kafka.button_status", channel, payload("kafka_status", reference=reference)),
                     button("common.button_no_thanks", channel, "/thank")])
        return events
