"""Answers to general questions, from the editable catalogue."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.common import latest_entity, latest_intent, now, say
from bot.actions.handoff import topic_followup
from bot.actions.knowledge import answer_product_question
from bot.core import answers
from bot.core.catalogue import Catalogue, Location, Product, get_catalogue

ASPECT_BY_INTENT = {
    "ask_product_info": "info",
    "ask_price": "price",
    "ask_documents": "documents",
    "ask_appointment_needed": "appointment",
    "ask_where": "where",
    "ask_delivery": "delivery",
}


def resolve_product(catalogue: Catalogue, tracker: Tracker) -> Optional[Product]:
    """The product from this message (entity, else the words), else the one the conversation is about."""
    entity = latest_entity(tracker, "product")
    for text in (entity, tracker.latest_message.get("text")):
        if text:
            product = catalogue.product(text) or catalogue.find_product(text)
            if product:
                return product
    slot = tracker.get_slot("product")
    return catalogue.product(slot) if slot else None


def resolve_location(catalogue: Catalogue, tracker: Tracker) -> Optional[Location]:
    entity = latest_entity(tracker, "location")
    for text in (entity, tracker.latest_message.get("text")):
        if text:
            location = catalogue.location(text) or catalogue.find_location(text)
            if location:
                return location
    slot = tracker.get_slot("location")
    return catalogue.location(slot) if slot else None


class ActionAnswerProduct(Action):
    def name(self) -> Text:
        return "action_answer_product"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        catalogue = get_catalogue()
        intent = latest_intent(tracker)
        # knowledge hook: topics, follow-ups on a topic, one office; None keeps the answer below
        handled = answer_product_question(dispatcher, tracker, ASPECT_BY_INTENT.get(intent, "info"))
        if handled is not None:
            return handled
        product = resolve_product(catalogue, tracker)
        if product is None:
            say(dispatcher, answers.which_product(catalogue, intent if intent in ASPECT_BY_INTENT else "ask_product_info"))
            return []
        say(dispatcher, answers.product_answer(catalogue, product, ASPECT_BY_INTENT.get(intent, "info")))
        # always-human topics (docs/handoff.md) go to an agent after the answer, unless the
        # citizen is in the middle of a form (e.g. booking that product): the form goes on
        handover = [] if tracker.active_loop_name else topic_followup(product.id)
        return [SlotSet("product", product.id), *handover]


class ActionOpeningHours(Action):
    def name(self) -> Text:
        return "action_opening_hours"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        catalogue = get_catalogue()
        location = resolve_location(catalogue, tracker) or catalogue.location("stadskantoor") or catalogue.locations[0]
        say(dispatcher, answers.opening_hours_answer(catalogue, location, now()))
        return [SlotSet("location", location.id)]


class ActionLocations(Action):
    def name(self) -> Text:
        return "action_locations"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        catalogue = get_catalogue()
        location = resolve_location(catalogue, tracker)
        if location is None:
            say(dispatcher, answers.locations_overview(catalogue))
            return []
        say(dispatcher, answers.location_answer(location))
        return [SlotSet("location", location.id)]


class ActionContact(Action):
    def name(self) -> Text:
        return "action_contact"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(text=answers.contact_text(get_catalogue()))
        return []
