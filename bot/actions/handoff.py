"""``action_human_handoff``: put the conversation in the queue of Gentinfo's agents.

Three ways in: the citizen asks (intent ``human_handoff``), the citizen taps "Met een medewerker
praten" after the assistant misunderstood twice (the fallback's button), or the conversation is
about a product that ``bot/data/content/handoff.yml`` reserves for people (answer actions return
``topic_followup(product_id)``). The queue entry carries the context (channel, reason, last
messages, slots) so that the agent does not have to ask again. From then on ``connectors/gate.py``
keeps the assistant quiet for this conversation. See docs/handoff.md.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Dict, List, Optional, Text

import redis
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction
from rasa_sdk.executor import CollectingDispatcher

from bot import metrics, wiring
from bot.actions.common import latest_intent, now
from bot.core import answers, handoff
from bot.core.catalogue import get_catalogue

logger = logging.getLogger(__name__)

ACTION_NAME = "action_human_handoff"
#: Slots that say nothing to an agent.
_QUIET_SLOTS = {"requested_slot", "session_started_metadata"}
STOP_HINT = "Wilt u toch verder met de digitale assistent? Typ dan 'stop'."


def always_human(product_id: Optional[str]) -> bool:
    return bool(product_id) and product_id in handoff.get_config().always_human_products


def topic_followup(product_id: Optional[str]) -> List[EventType]:
    """For answer actions: ``return [..., *topic_followup(product.id)]`` hands always-human topics over."""
    return [FollowupAction(ACTION_NAME)] if always_human(product_id) else []


def _after_fallback(tracker: Tracker) -> bool:
    """Did the assistant answer the message before this one with the fallback (its button)?"""
    seen_latest_user = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            if seen_latest_user:
                return False
            seen_latest_user = True
        elif kind == "action" and seen_latest_user and event.get("name") not in ("action_listen", None):
            return event.get("name") == "action_default_fallback"
    return False


def handoff_reason(tracker: Tracker) -> str:
    if latest_intent(tracker) != "human_handoff" and always_human(tracker.get_slot("product")):
        return "topic"
    if _after_fallback(tracker):
        return "misunderstood"
    return "explicit"


def _readable(text: str, event: Dict[str, Any]) -> str:
    """A button payload (``/ask_price{"product": "reispas"}``) as the agent should read it."""
    if not text.startswith("/"):
        return text
    intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name") or text[1:].split("{")[0]
    return f"[knop: {intent}]"


def conversation_context(tracker: Tracker, config: handoff.HandoffConfig) -> Dict[str, Any]:
    """What the agent sees in the queue: the last messages and what the assistant collected."""
    messages: List[Dict[str, Any]] = []
    for event in tracker.events:
        text = event.get("text")
        if event.get("event") not in ("user", "bot") or not text:
            continue
        who = "citizen" if event["event"] == "user" else "assistant"
        messages.append({"from": who, "text": _readable(text, event) if who == "citizen" else text,
                         "at": event.get("timestamp")})
    slots = {
        name: value for name, value in tracker.current_slot_values().items()
        if value not in (None, "", [], {}) and name not in _QUIET_SLOTS
    }
    catalogue = get_catalogue()
    product = catalogue.product(str(slots.get("product") or ""))
    location = catalogue.location(str(slots.get("location") or ""))
    return {
        "messages": messages[-config.context_messages:],
        "slots": slots,
        "product_name": product.name if product else None,
        "location_name": location.name if location else None,
        "intent": latest_intent(tracker),
    }


def _no_live_chat(intro: str) -> str:
    return f"{intro}\n{answers.contact_text(get_catalogue())}"


class ActionHumanHandoff(Action):
    def name(self) -> Text:
        return ACTION_NAME

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        conversation = tracker.sender_id
        store = wiring.handoff_store()
        if handoff.channel_of(conversation) not in handoff.LIVE_CHANNELS:
            dispatcher.utter_message(text=_no_live_chat(
                "Chatten met een medewerker kan via WhatsApp, Telegram of de webchat op stad.gent, niet via dit kanaal."))
            return []
        if store is None:
            dispatcher.utter_message(text=_no_live_chat("Chatten met een medewerker is hier op dit moment niet beschikbaar."))
            return []
        config = store.config
        reason = handoff_reason(tracker)
        try:
            moment = now()
            live = await store.agents_available(moment)
            queued = await store.enqueue(conversation, reason=reason, context=conversation_context(tracker, config),
                                         live=live)
        except redis.RedisError as error:
            logger.error("handoff unavailable, Redis error: %s", error)
            dispatcher.utter_message(text=_no_live_chat("Chatten met een medewerker lukt nu even niet, sorry."))
            return []
        logger.info("handoff %s: %s, %s (%s)", queued.handoff.id, reason, queued.handoff.status,
                    "new" if queued.created else "again")
        if queued.created:
            metrics.handoff(reason, queued.handoff.status)
        dispatcher.utter_message(text=self.answer(queued, reason, tracker, config, store, moment))
        return []

    @staticmethod
    def answer(queued: handoff.Enqueued, reason: str, tracker: Tracker, config: handoff.HandoffConfig,
               store: handoff.HandoffStore, moment: datetime) -> str:
        status = queued.handoff.status
        if status == "held":
            return "U praat al met een medewerker van Gentinfo. Typ gerust uw vraag."
        if status == "message":
            catalogue = get_catalogue()
            contact = catalogue.contact
            opening = config.next_opening(moment)
            when = handoff.when_text(opening, moment) if opening else "zo snel mogelijk"
            return (
                f"Onze medewerkers chatten {config.hours_text()}. Nu is er helaas niemand beschikbaar.\n"
                f"U kunt Gentinfo bellen op {contact.phone} ({contact.hours}) of mailen naar {contact.email}.\n"
                f"Of laat hier een bericht achter: typ uw vraag nu in één bericht. Een medewerker leest het "
                f"zodra we weer open zijn ({when}) en antwoordt u hier.\n"
                "Geen bericht achterlaten? Typ dan 'stop'."
            )
        position = queued.position or 1
        wait = store.wait_minutes(position)
        lines = []
        if reason == "topic":
            product = get_catalogue().product(str(tracker.get_slot("product") or ""))
            subject = f"over {product.in_sentence}" if product else "hierover"
            lines.append(f"Voor vragen {subject} helpt een medewerker van Gentinfo u persoonlijk verder.")
        if queued.created:
            lines.append("Ik stuur uw vraag door naar een medewerker van Gentinfo.")
        else:
            lines.append("U staat al in de wachtrij voor een medewerker van Gentinfo.")
        lines.append(
            f"U bent nummer {position} in de wachtrij. De verwachte wachttijd is ongeveer {wait} "
            f"{'minuut' if wait == 1 else 'minuten'}."
        )
        lines.append("De medewerker ziet ons gesprek, u hoeft uw vraag niet te herhalen.")
        lines.append(STOP_HINT)
        return "\n".join(lines)
