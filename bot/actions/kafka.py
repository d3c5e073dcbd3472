"""KAFKA-meldpunt in the chat: file a suggestion (``kafka_form``) and ask its status (``kafka_status_form``).

Suggestion: what is too complicated (the citizen's own words, stored verbatim) -> which service
(catalogue buttons or "iets anders") -> an optional proposal ("geen" skips) -> anonymous, or with
explicit consent a name and an e-mail address or phone number -> summary -> "ja, verstuur". The
suggestion is filed by ``validate_kafka_confirmed``; ``KafkaRegister.file_suggestion`` commits before
it returns, so the reference the assistant then gives is real. Anonymous suggestions carry no
channel or conversation id.

Status: "wat is de status van KAFKA-2026-000123?" answers with the status label and dates only.
"""
from __future__ import annotations

import os
import re
import threading
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import metrics
from bot.actions.common import latest_entity, latest_intent
from bot.actions.tasks import (
    CHANGE,
    LEAVE_INTENTS,
    STOP_BUTTON,
    STOP_HINT,
    answer_for,
    apologise,
    change_field,
    change_request,
    channel_of,
    clean_name,
    contact_candidate,
    in_thread,
    is_activation,
    is_change,
    keep,
    latest_text,
    log_failure,
    looks_like_name,
    names_a_product,
    requested_slot,
    reset_values,
    starts_with_yes,
    yes_no,
)
from bot.core import db
from bot.core.answers import POPULAR_PRODUCTS, payload
from bot.core.catalogue import Catalogue, get_catalogue
from bot.core.contact import ContactKind, InvalidContact, normalise_contact
from bot.core.dates import format_day
from bot.core.kafka import (
    CITY_TZ,
    MAX_NAME_CHARS,
    MAX_PROBLEM_CHARS,
    MAX_PRODUCT_OTHER_CHARS,
    MAX_PROPOSAL_CHARS,
    MIN_PROBLEM_WORDS,
    InvalidReference,
    InvalidSuggestion,
    KafkaRegister,
    TooLong,
    TooShort,
    UnknownReference,
    parse_reference,
)

#: "Iets anders": a suggestion about something that is not in the catalogue.
OTHER = "anders"
#: Stored in a slot for "no answer" (no proposal, no topic, no reference), so the form moves on.
NONE = "-"

FORM_SLOTS = ["kafka_problem", "kafka_product", "kafka_proposal", "kafka_anonymous", "kafka_confirmed"]
IDENTITY_SLOTS = ["kafka_consent", "kafka_name", "kafka_contact"]
HELPERS = ["kafka_product_other", "kafka_menu", "kafka_reference"]

CHANGES = {
    "problem": re.compile(r"\b(tekst|probleem|beschrijving|uitleg|melding)\b"),
    "proposal": re.compile(r"\b(voorstel|idee|oplossing)\b"),
    "product": re.compile(r"\b(dienst|product|onderwerp|document)\b"),
    "identity": re.compile(r"\b(gegevens|anoniem|naam|contact\w*|e-?mail\w*|nummer|telefoon\w*)\b"),
}

_NO_ANSWER = re.compile(
    r"^\s*(nee|neen|geen|niks|niets|nope|geen idee|weet ik niet|ik weet het niet|weet niet|geen voorstel|"
    r"nee geen|nee hoor|nee dank u|nee bedankt|nee merci|overslaan|sla over|-)\s*[.!]*\s*$", re.IGNORECASE)
_ANONYMOUS = re.compile(r"\banoniem\w*\b", re.IGNORECASE)
_NAMED = re.compile(r"\b(contact\w*|gegevens|naam|mail\w*|bel\w*|telefoon\w*|antwoord)\b", re.IGNORECASE)
_WORD = re.compile(r"\w+")

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


def problem_error(text: str) -> Optional[str]:
    """Why a description cannot be filed (the register's own rules and Dutch messages), or None."""
    if len(text) > MAX_PROBLEM_CHARS:
        return TooLong("problem", MAX_PROBLEM_CHARS).citizen_message
    if "\x00" in text or len(_WORD.findall(text)) < MIN_PROBLEM_WORDS or text.lstrip().startswith("/"):
        return TooShort("problem", MIN_PROBLEM_WORDS).citizen_message
    return None


def product_label(catalogue: Catalogue, product_id: Optional[str], other: Optional[str]) -> str:
    product = catalogue.product(product_id or "")
    if product:
        return product.name
    return other if other and other != NONE else "iets anders"


def quote(text: str, limit: int = 300) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ValidateKafkaForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_kafka_form"

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

    # extraction (kafka_problem and kafka_proposal come verbatim from the from_text mappings)
    async def extract_kafka_problem(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> Dict[Text, Any]:
        return reset_values(tracker, ["kafka_problem"]) if is_activation(tracker) else {}

    async def extract_kafka_proposal(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            return reset_values(tracker, ["kafka_proposal"])
        if requested_slot(tracker) == "kafka_proposal" and latest_text(tracker).startswith("/"):
            # a button ("Geen voorstel" = /deny): the mapping stored the payload, make it an answer
            return {"kafka_proposal": NONE if latest_intent(tracker) == "deny" else latest_text(tracker)}
        return {}

    async def extract_kafka_product(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            product = get_catalogue().product(latest_entity(tracker, "product") or "")
            return {"kafka_product": product.id if product else None}
        value = answer_for(tracker, "kafka_product", entities=("product", "option"), looks_valid=names_a_product,
                           changes=CHANGES)
        return {} if value is None else {"kafka_product": value}

    async def extract_kafka_product_other(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                          domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            return {}
        value = answer_for(tracker, "kafka_product_other", changes=CHANGES)
        return {} if value is None else {"kafka_product_other": value}

    async def extract_kafka_anonymous(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                      domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            return reset_values(tracker, ["kafka_anonymous"])
        return self._choice(tracker, "kafka_anonymous")

    async def extract_kafka_consent(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> Dict[Text, Any]:
        return {} if is_activation(tracker) else self._choice(tracker, "kafka_consent")

    async def extract_kafka_name(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                 domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            return {}
        value = answer_for(tracker, "kafka_name", looks_valid=looks_like_name, changes=CHANGES)
        return {} if value is None else {"kafka_name": value}

    async def extract_kafka_contact(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            return {}
        value = answer_for(tracker, "kafka_contact", changes=CHANGES)
        return {} if value is None else {"kafka_contact": value}

    async def extract_kafka_confirmed(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                      domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            return reset_values(tracker, ["kafka_confirmed"])
        return self._choice(tracker, "kafka_confirmed")

    @staticmethod
    def _choice(tracker: Tracker, slot: str) -> Dict[str, Any]:
        """A yes/no question: True, False, 'change:<field>', a button option or the text."""
        if requested_slot(tracker) != slot:
            return {}
        field = change_request(tracker, CHANGES)
        if field:
            return {slot: CHANGE + field}
        option = latest_entity(tracker, "option")
        if option:
            return {slot: str(option)}
        text = latest_text(tracker)
        if slot == "kafka_anonymous" and not text.startswith("/") and (_ANONYMOUS.search(text) or _NAMED.search(text)):
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

    # validation
    async def validate_kafka_problem(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> Dict[Text, Any]:
        result: Dict[str, Any] = reset_values(tracker, IDENTITY_SLOTS + HELPERS) if is_activation(tracker) else {}
        if value is None:
            return {**result, **keep(tracker, "kafka_problem")}
        error = problem_error(str(value))
        if error:
            dispatcher.utter_message(text=error)
            return {**result, "kafka_problem": None}
        return {**result, "kafka_problem": str(value)}  # verbatim, as typed

    async def validate_kafka_product(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "kafka_product")
        if is_change(value):
            return self._change(change_field(value))
        catalogue = get_catalogue()
        text = str(value).strip()
        product = catalogue.product(text) or catalogue.find_product(text)
        if product:
            return {"kafka_product": product.id, "kafka_product_other": None}
        if text.lower() in (OTHER, "iets anders", "anders", "andere"):
            return {"kafka_product": OTHER, "kafka_product_other": None}
        if text.startswith("/") or not _WORD.search(text):
            dispatcher.utter_message(text="Kies een dienst hieronder, of typ in een paar woorden waarover het gaat.")
            return {"kafka_product": None}
        if _NO_ANSWER.match(text):
            return {"kafka_product": OTHER, "kafka_product_other": NONE}
        # a topic that is not in the catalogue ("het containerpark"): keep the citizen's words
        return {"kafka_product": OTHER, "kafka_product_other": text[:MAX_PRODUCT_OTHER_CHARS]}

    async def validate_kafka_product_other(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                           domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "kafka_product_other")
        if is_change(value):
            return self._change(change_field(value))
        text = str(value).strip()
        if _NO_ANSWER.match(text):
            return {"kafka_product_other": NONE}
        if text.startswith("/") or not _WORD.search(text):
            dispatcher.utter_message(text="Typ in een paar woorden over welke dienst of welk onderwerp het gaat.")
            return {"kafka_product_other": None}
        if len(text) > MAX_PRODUCT_OTHER_CHARS:
            dispatcher.utter_message(text=TooLong("product_other", MAX_PRODUCT_OTHER_CHARS).citizen_message)
            return {"kafka_product_other": None}
        return {"kafka_product_other": text}

    async def validate_kafka_proposal(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                      domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "kafka_proposal")
        if value == NONE:
            return {"kafka_proposal": NONE}
        if is_change(value):
            return self._change(change_field(value))
        text = str(value)
        if _NO_ANSWER.match(text) or latest_intent(tracker) == "deny" and len(_WORD.findall(text)) <= 3:
            return {"kafka_proposal": NONE}
        if text.startswith("/"):
            dispatcher.utter_message(text="Typ uw voorstel in uw eigen woorden, of kies 'Geen voorstel'.")
            return {"kafka_proposal": None}
        if len(text) > MAX_PROPOSAL_CHARS:
            dispatcher.utter_message(text=TooLong("proposal", MAX_PROPOSAL_CHARS).citizen_message)
            return {"kafka_proposal": None}
        return {"kafka_proposal": text}  # verbatim

    async def validate_kafka_anonymous(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                       domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "kafka_anonymous")
        if is_change(value):
            return self._change(change_field(value))
        text = str(value).lower()
        if value is True or text in ("anoniem", "true") or (isinstance(value, str) and _ANONYMOUS.search(text)):
            return {"kafka_anonymous": True, "kafka_consent": None, "kafka_name": None, "kafka_contact": None}
        if value is False or text in ("contact", "false") or (isinstance(value, str) and _NAMED.search(text)):
            return {"kafka_anonymous": False}
        dispatcher.utter_message(text="Kies 'Anoniem blijven' of 'Contacteer mij'.")
        return {"kafka_anonymous": None}

    async def validate_kafka_consent(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "kafka_consent")
        if is_change(value):
            return self._change(change_field(value))
        if value is True or str(value).lower() in ("ja", "akkoord", "true"):
            return {"kafka_consent": True}
        if value is False or str(value).lower() in ("nee", "false", "anoniem"):
            dispatcher.utter_message(text="Goed, dan bewaren we geen naam of contactgegevens. Uw melding blijft anoniem.")
            return {"kafka_consent": None, "kafka_anonymous": True, "kafka_name": None, "kafka_contact": None}
        dispatcher.utter_message(text="Gaat u akkoord? Tik op 'Ja, akkoord' of op 'Nee, liever anoniem'.")
        return {"kafka_consent": None}

    async def validate_kafka_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                  domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "kafka_name")
        if is_change(value):
            return self._change(change_field(value))
        name = clean_name(str(value), MAX_NAME_CHARS)
        if name is None:
            dispatcher.utter_message(text="Typ uw naam, bijvoorbeeld Jan Peeters.")
        return {"kafka_name": name}

    async def validate_kafka_contact(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "kafka_contact")
        if is_change(value):
            return self._change(change_field(value))
        try:
            contact = normalise_contact(contact_candidate(str(value)))
        except InvalidContact as error:
            dispatcher.utter_message(text=error.message_nl)
            return {"kafka_contact": None}
        return {"kafka_contact": contact.value}

    async def validate_kafka_confirmed(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                       domain: DomainDict) -> Dict[Text, Any]:
        if value is None:
            return keep(tracker, "kafka_confirmed")
        if is_change(value):
            return self._change(change_field(value))
        if value is True:
            return await self._file(dispatcher, tracker)
        if value is False:
            return {"kafka_confirmed": None, "kafka_menu": True}
        dispatcher.utter_message(text="Wilt u de melding versturen? Tik op 'Ja, verstuur'. Iets aanpassen? "
                                      "Kies hieronder wat.")
        return {"kafka_confirmed": None}

    async def _file(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> Dict[str, Any]:
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
            return {"kafka_confirmed": None, **self._clear_for(error.field)}
        except Exception as error:
            log_failure("filing a KAFKA suggestion", error)
            metrics.kafka_report("failed")
            apologise(dispatcher, " en uw melding is nog niet verstuurd")
            return {"kafka_confirmed": None}
        metrics.kafka_report("anonymous" if anonymous else "with_contact" if consent else "filed")
        return {"kafka_confirmed": True, "kafka_reference": suggestion.reference}

    @staticmethod
    def _clear_for(field: str) -> Dict[str, Any]:
        return {
            "problem": {"kafka_problem": None},
            "proposal": {"kafka_proposal": None},
            "product_other": {"kafka_product_other": None},
            "product_id": {"kafka_product": None},
            "contact_name": {"kafka_name": None},
            "contact_email": {"kafka_contact": None},
            "contact_phone": {"kafka_contact": None},
        }.get(field, {"kafka_anonymous": None, "kafka_consent": None, "kafka_name": None, "kafka_contact": None})

    @staticmethod
    def _change(field: str) -> Dict[str, Any]:
        result: Dict[str, Any] = {"kafka_confirmed": None, "kafka_menu": None}
        if field == "problem":
            result["kafka_problem"] = None
        elif field == "proposal":
            result["kafka_proposal"] = None
        elif field == "product":
            result.update(kafka_product=None, kafka_product_other=None)
        elif field == "identity":
            result.update(kafka_anonymous=None, kafka_consent=None, kafka_name=None, kafka_contact=None)
        return result


# -- questions -------------------------------------------------------------------------------------------
class _Ask:
    """Mixin for a fixed question with optional buttons (not an Action itself: rasa-sdk registers every
    Action subclass it finds)."""

    slot = ""
    text = ""
    buttons: List[Dict[str, str]] = []

    def name(self) -> Text:
        return f"action_ask_{self.slot}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        dispatcher.utter_message(text=self.text, buttons=list(self.buttons) or None)
        return []


class ActionAskKafkaProblem(_Ask, Action):
    slot = "kafka_problem"
    text = ("Fijn dat u helpt om de stad eenvoudiger te maken! Wat vindt u te ingewikkeld? Beschrijf het in "
            "een paar zinnen, in uw eigen woorden. Schrijf er geen gevoelige gegevens bij, zoals uw "
            f"rijksregisternummer.\n{STOP_HINT}")
    buttons = [STOP_BUTTON]


class ActionAskKafkaProductOther(_Ask, Action):
    slot = "kafka_product_other"
    text = "Over welke dienst of welk onderwerp gaat het? Typ het in een paar woorden, of typ 'weet ik niet'."


class ActionAskKafkaProposal(_Ask, Action):
    slot = "kafka_proposal"
    text = "Hebt u een idee hoe het eenvoudiger kan? Typ uw voorstel, of kies 'Geen voorstel'."
    buttons = [{"title": "Geen voorstel", "payload": "/deny"}, STOP_BUTTON]


class ActionAskKafkaAnonymous(_Ask, Action):
    slot = "kafka_anonymous"
    text = ("Wilt u anoniem blijven? Dan bewaren we niets over u. Of mogen we u contacteren als we vragen "
            "hebben of als er nieuws is over uw melding?")
    buttons = [{"title": "Anoniem blijven", "payload": payload("choose_option", option="anoniem")},
               {"title": "Contacteer mij", "payload": payload("choose_option", option="contact")}, STOP_BUTTON]


class ActionAskKafkaConsent(_Ask, Action):
    slot = "kafka_consent"
    text = ("Om u te contacteren bewaren we uw naam en uw e-mailadres of telefoonnummer, maximaal 1 jaar. "
            "We gebruiken ze alleen voor deze melding. Gaat u daarmee akkoord?")
    buttons = [{"title": "Ja, akkoord", "payload": "/affirm"}, {"title": "Nee, liever anoniem", "payload": "/deny"}]


class ActionAskKafkaName(_Ask, Action):
    slot = "kafka_name"
    text = "Wat is uw naam?"


class ActionAskKafkaContact(_Ask, Action):
    slot = "kafka_contact"
    text = "Op welk e-mailadres of telefoonnummer mogen we u contacteren?"


class ActionAskKafkaProduct(Action):
    def name(self) -> Text:
        return "action_ask_kafka_product"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        catalogue = get_catalogue()
        mentioned = catalogue.find_product(tracker.get_slot("kafka_problem") or "")
        ids = [mentioned.id if mentioned else "", tracker.get_slot("product") or "", *POPULAR_PRODUCTS]
        products = [p for p in (catalogue.product(i) for i in dict.fromkeys(ids)) if p][:6]
        dispatcher.utter_message(
            text="Over welke dienst of welk document gaat het? Kies hieronder, of typ het.",
            buttons=[{"title": p.name, "payload": payload("choose_option", product=p.id)} for p in products]
            + [{"title": "Iets anders", "payload": payload("choose_option", option=OTHER)}])
        return []


class ActionAskKafkaConfirmed(Action):
    def name(self) -> Text:
        return "action_ask_kafka_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        change = [
            {"title": "Tekst aanpassen", "payload": payload("change_detail", detail="problem")},
            {"title": "Dienst aanpassen", "payload": payload("change_detail", detail="product")},
            {"title": "Voorstel aanpassen", "payload": payload("change_detail", detail="proposal")},
            {"title": "Gegevens aanpassen", "payload": payload("change_detail", detail="identity")},
        ]
        if tracker.get_slot("kafka_menu"):
            dispatcher.utter_message(text="Geen probleem. Wat wilt u aanpassen?",
                                     buttons=change + [{"title": "Toch versturen", "payload": "/affirm"}, STOP_BUTTON])
            return [SlotSet("kafka_menu", None)]
        catalogue = get_catalogue()
        proposal = tracker.get_slot("kafka_proposal")
        if tracker.get_slot("kafka_anonymous"):
            who = "anoniem (we bewaren niets over u)"
        else:
            contact = tracker.get_slot("kafka_contact")
            who = (f"{tracker.get_slot('kafka_name')}, {contact}" if tracker.get_slot("kafka_consent") and contact
                   else "zonder contactgegevens")
        lines = [
            "Dit is uw melding:",
            f"- Wat is te ingewikkeld: \"{quote(tracker.get_slot('kafka_problem') or '')}\"",
            f"- Over: {product_label(catalogue, tracker.get_slot('kafka_product'), tracker.get_slot('kafka_product_other'))}",
            f"- Uw voorstel: {quote(proposal) if proposal and proposal != NONE else 'geen'}",
            f"- Van: {who}",
            "Wilt u de melding versturen?",
        ]
        dispatcher.utter_message(text="\n".join(lines),
                                 buttons=[{"title": "Ja, verstuur", "payload": "/affirm"}, *change, STOP_BUTTON])
        return []


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
        contacted = bool(tracker.get_slot("kafka_consent")) and not tracker.get_slot("kafka_anonymous")
        follow_up = ("We contacteren u als we meer uitleg nodig hebben of als er nieuws is." if contacted
                     else "U blijft anoniem, dus we kunnen u niet persoonlijk antwoorden." if tracker.get_slot("kafka_anonymous")
                     else "U gaf geen contactgegevens, dus we kunnen u niet persoonlijk antwoorden.")
        dispatcher.utter_message(
            text=f"Bedankt! We hebben uw melding goed ontvangen. Uw referentienummer is {reference}. Bewaar het goed.\n"
                 "Wat gebeurt er nu? Het KAFKA-team van de stad leest elke melding en bezorgt ze aan de juiste "
                 f"dienst. {follow_up}\n"
                 f"Hoe ver staat het? Vraag het mij later met uw nummer, bijvoorbeeld: 'status {reference}'.",
            buttons=[{"title": "Status bekijken", "payload": payload("kafka_status", reference=reference)},
                     {"title": "Nee, bedankt", "payload": "/thank"}])
        return events


# -- status --------------------------------------------------------------------------------------------------
def find_kafka_reference(text: str) -> Optional[str]:
    try:
        return parse_reference(text or "")
    except InvalidReference:
        return None


class ValidateKafkaStatusForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_kafka_status_form"

    async def extract_kafka_status_reference(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                             domain: DomainDict) -> Dict[Text, Any]:
        if is_activation(tracker):
            entity = latest_entity(tracker, "reference")
            return {"kafka_status_reference": find_kafka_reference(entity or "") or find_kafka_reference(latest_text(tracker))}
        value = answer_for(tracker, "kafka_status_reference", entities=("reference",),
                           looks_valid=lambda text: find_kafka_reference(text) is not None)
        if value is None and requested_slot(tracker) == "kafka_status_reference" and latest_intent(tracker) == "deny":
            value = NONE
        return {} if value is None else {"kafka_status_reference": value}

    async def validate_kafka_status_reference(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                              domain: DomainDict) -> Dict[Text, Any]:
        if value is None or value == NONE:
            return {"kafka_status_reference": value}
        reference = find_kafka_reference(str(value))
        if reference:
            return {"kafka_status_reference": reference}
        if _NO_ANSWER.match(str(value)) or latest_intent(tracker) == "deny":
            return {"kafka_status_reference": NONE}
        dispatcher.utter_message(text="Dat nummer herken ik niet. Een referentienummer ziet eruit als "
                                      "KAFKA-2026-000123. U vindt het in het bericht dat u kreeg na uw melding.")
        return {"kafka_status_reference": None}


class ActionAskKafkaStatusReference(_Ask, Action):
    slot = "kafka_status_reference"
    text = ("Wat is het referentienummer van uw melding? Het ziet eruit als KAFKA-2026-000123. "
            "Geen nummer? Typ 'weet ik niet'.")
    buttons = [STOP_BUTTON]


class ActionKafkaStatus(Action):
    """After the status form: the status of a suggestion (label and dates, nothing personal)."""

    def name(self) -> Text:
        return "action_kafka_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        reference = tracker.get_slot("kafka_status_reference")
        events: List[EventType] = [SlotSet("kafka_status_reference", None)] if reference else []
        contact = get_catalogue().contact
        if not reference or reference == NONE:
            dispatcher.utter_message(
                text="Zonder referentienummer kan ik de status niet opzoeken. "
                     f"{contact.name} helpt u verder: bel {contact.phone} of mail {contact.email}.")
            return events
        try:
            register = await in_thread(get_register)
            info = await in_thread(register.status_of, reference)
        except (UnknownReference, InvalidReference):
            dispatcher.utter_message(
                text=f"Ik vind geen melding met nummer {reference}. Kijk het nummer even na: het staat in het "
                     "bericht dat u kreeg na uw melding.")
            return events
        except Exception as error:
            log_failure("KAFKA status", error)
            apologise(dispatcher)
            return events
        filed = format_day(info.created_at.astimezone(CITY_TZ).date(), with_year=True)
        changed = format_day(info.updated_at.astimezone(CITY_TZ).date(), with_year=True)
        dispatcher.utter_message(
            text=f"Uw melding {info.reference} (ingediend op {filed}):\nStatus: {info.label}\n"
                 f"Laatste wijziging: {changed}.\nWilt u meer weten? Bel {contact.name} op {contact.phone}.")
        return events
