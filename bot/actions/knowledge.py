"""Answers to general city questions from the knowledge files and the long-tail search.

``action_answer_city`` answers ``ask_city`` and ``nlu_fallback`` messages (and taps on topic
buttons, ``/ask_city{"topic": ...}``): one answer, buttons to choose, or the usual fallback when
nothing plausible matches (the same text as ``action_default_fallback``).
:func:`answer_product_question` is the hook the product answer action (bot/actions/info.py)
calls first, so a product question that names no product, or names a different subject more
clearly ("portefeuille gestolen met mijn id kaart"), or follows a topic ("en hoeveel kost dat?"),
or asks about one office ("kan dat ook in Oostakker?") gets the right answer; everything else
keeps the catalogue answer exactly as before.

Slots: ``topic`` (the id of the last entry answered, topic or product) and ``product`` (set to the
product id when that entry is a product, cleared otherwise, so follow-ups go to the latest subject).
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.common import latest_entity, say
from bot.actions.fallback import ActionDefaultFallback
from bot.actions.handoff import topic_followup
from bot.core import knowledge_answers
from bot.core.catalogue import Catalogue, Location, Product
from bot.core.knowledge import Entry
from bot.core.search import MARGIN, Decision, SearchIndex, get_index

#: A follow-up question is short; a long message without a known subject is not one.
FOLLOW_UP_WORDS = 8

#: Aspect words of a follow-up question without a subject ("en hoeveel kost dat?").
_ASPECTS = (
    ("price", re.compile(r"\b(kost|kosten|prijs|betalen|hoeveel|duur|gratis)\b")),
    ("documents", re.compile(r"\b(meebrengen|meenemen|mee brengen|mee nemen|documenten|papieren)\b")),
    ("appointment", re.compile(r"\bafspraak\b")),
    ("where", re.compile(r"\b(waar|adres|loket|kantoor)\b")),
)


def _channel(tracker: Tracker) -> Optional[str]:
    return tracker.get_latest_input_channel()


def _text(tracker: Tracker) -> str:
    text = (tracker.latest_message.get("text") or "").strip()
    return "" if text.startswith("/") else text  # a button payload is not a question


def aspect_of(text: str) -> Optional[str]:
    lowered = text.lower()
    return next((aspect for aspect, pattern in _ASPECTS if pattern.search(lowered)), None)


def _location_in_message(catalogue: Catalogue, tracker: Tracker) -> Optional[Location]:
    value = latest_entity(tracker, "location")
    for text in (value, _text(tracker)):
        if text:
            location = catalogue.location(text) or catalogue.find_location(text)
            if location:
                return location
    return None


def _subject_events(entry: Entry) -> List[EventType]:
    return [SlotSet("topic", entry.id), SlotSet("product", entry.product.id if entry.product else None)]


def _answer_entry(
    dispatcher: CollectingDispatcher, tracker: Tracker, index: SearchIndex, entry: Entry, aspect: str
) -> List[EventType]:
    say(dispatcher, knowledge_answers.entry_answer(index.knowledge, entry, aspect, _channel(tracker)))
    # always-human products go to an agent after the answer, as in the product answer action
    handover = topic_followup(entry.id) if entry.product and not tracker.active_loop_name else []
    return [*_subject_events(entry), *handover]


def _answer_decision(
    dispatcher: CollectingDispatcher, tracker: Tracker, index: SearchIndex, decision: Decision, aspect: str
) -> List[EventType]:
    if decision.kind == "answer" and decision.best:
        return _answer_entry(dispatcher, tracker, index, decision.best.entry, aspect)
    answer = knowledge_answers.decision_answer(index.knowledge, decision, aspect, _channel(tracker))
    if answer:
        say(dispatcher, answer)
    return []


def _current_subject(tracker: Tracker, index: SearchIndex) -> Optional[Entry]:
    """The entry the conversation is about: the product slot, else the topic slot."""
    for slot in ("product", "topic"):
        value = tracker.get_slot(slot)
        entry = index.knowledge.entry(value) if value else None
        if entry:
            return entry
    return None


def answer_product_question(
    dispatcher: CollectingDispatcher, tracker: Tracker, aspect: str
) -> Optional[List[EventType]]:
    """Hook for the product answer action: the events when this module answered, None to let the
    catalogue answer as before."""
    if (tracker.latest_message.get("text") or "").startswith("/"):
        return None  # a button: the catalogue answers exactly as before ("/ask_product_info" = which one?)
    index = get_index()
    catalogue = index.knowledge.catalogue
    text = _text(tracker)
    entity = latest_entity(tracker, "product")
    mentioned: Optional[Product] = (catalogue.product(entity) or catalogue.find_product(entity)) if entity else None
    mentioned = mentioned or (catalogue.find_product(text) if text else None)
    location = _location_in_message(catalogue, tracker)
    if mentioned is not None:
        if text:
            tokens, hits = index.rank(text)
            decision = index.decide(text)
            own = next((hit.score for hit in hits if hit.entry.id == mentioned.id), 0.0)
            best = decision.best
            if decision.kind == "answer" and best and best.entry.id != mentioned.id and best.score - own >= MARGIN:
                return _answer_entry(dispatcher, tracker, index, best.entry, aspect)
            if decision.kind == "mixed" and mentioned.id in {hit.entry.id for hit in decision.hits}:
                return _answer_decision(dispatcher, tracker, index, decision, aspect)  # "which one first?"
        if aspect == "where" and location:
            say(dispatcher, knowledge_answers.office_answer(catalogue, mentioned, location, _channel(tracker)))
            return _subject_events(_product_entry(index, mentioned))
        return None
    if text:
        decision = index.decide(text)
        if decision.kind != "none":
            return _answer_decision(dispatcher, tracker, index, decision, aspect)
    subject = _current_subject(tracker, index)
    if subject is None:
        return None
    if subject.product:
        if aspect == "where" and location:
            say(dispatcher, knowledge_answers.office_answer(catalogue, subject.product, location, _channel(tracker)))
            return _subject_events(subject)
        return None  # the catalogue answers from the product slot, as before
    return _answer_entry(dispatcher, tracker, index, subject, aspect)


def answer_if_found(dispatcher: CollectingDispatcher, tracker: Tracker) -> Optional[List[EventType]]:
    """Hook for "out of context" messages (a change or loose answer outside a task): a typed city
    question the NLU took for one gets its answer; None keeps the out-of-context text."""
    text = _text(tracker)
    if not text:
        return None
    index = get_index()
    decision = index.decide(text)
    return _answer_decision(dispatcher, tracker, index, decision, "info") if decision.kind != "none" else None


def _product_entry(index: SearchIndex, product: Product) -> Entry:
    entry = index.knowledge.entry(product.id)
    assert entry is not None, product.id  # every catalogue product is an entry
    return entry


class ActionAnswerCity(Action):
    """General city questions and everything the NLU was unsure about."""

    def name(self) -> Text:
        return "action_answer_city"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        index = get_index()
        chosen = latest_entity(tracker, "topic")
        entry = index.knowledge.entry(chosen) if chosen else None
        if entry:  # a tap on a topic button
            return _answer_entry(dispatcher, tracker, index, entry, "info")
        text = _text(tracker)
        decision = index.decide(text) if text else Decision("none")
        if decision.kind != "none":
            return _answer_decision(dispatcher, tracker, index, decision, "info")
        # a short follow-up without a subject ("en hoeveel kost dat?", "kan dat ook in Oostakker?")
        # is about the subject of the conversation
        subject = _current_subject(tracker, index)
        location = _location_in_message(index.knowledge.catalogue, tracker)
        aspect = aspect_of(text) or ("where" if location else None)
        if subject and aspect and len(text.split()) <= FOLLOW_UP_WORDS:
            if subject.product and aspect == "where" and location:
                say(dispatcher, knowledge_answers.office_answer(
                    index.knowledge.catalogue, subject.product, location, _channel(tracker)))
                return _subject_events(subject)
            return _answer_entry(dispatcher, tracker, index, subject, aspect)
        # nothing plausible: the usual "say it differently" answer (after two misses: a human)
        return await ActionDefaultFallback().run(dispatcher, tracker, domain)
