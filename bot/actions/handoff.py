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

from bot import metrics
from bot.actions.common import latest_intent, now
from bot.actions.tasks import text_channel
from bot.core import answers, handoff
from bot.core.catalogue import get_catalogue
from bot.core.texts import say

logger = logging.getLogger(__name__)

ACTION_NAME = "action_human_handoff"
#: Slots that say nothing to an agent.
_QUIET_SLOTS = {"requested_slot", "session_started_metadata"}


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


def _no_live_chat(key: str, channel: Optional[str]) -> str:
    return say("handoff.no_live_chat", channel, intro=say(key, channel), contact=answers.contact_text(get_catalogue()))


class ActionHumanHandoff(Action):
    def name(self) -> Text:
        return ACTION_NAME

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        conversation = tracker.sender_id
        channel = text_channel(tracker)
        store = handoff.default_store()
        if handoff.channel_of(conversation) not in handoff.LIVE_CHANNELS:
            dispatcher.utter_message(text=_no_live_chat("handoff.not_on_this_channel", channel))
            return []
        if store is None:
            dispatcher.utter_message(text=_no_live_chat("handoff.not_available", channel))
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
            dispatcher.utter_message(text=_no_live_chat("handoff.failed", channel))
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
        channel = text_channel(tracker)
        status = queued.handoff.status
        if status == "held":
            return say("handoff.already_with_agent", channel)
        if status == "message":
            opening = config.next_opening(moment)
            when = handoff.when_text(opening, moment) if opening else say("handoff.when_asap", channel)
            return say("handoff.leave_a_message", channel, hours=config.hours_text(), when=when)
        position = queued.position or 1
        wait = store.wait_minutes(position)
        lines = []
        if reason == "topic":
            product = get_catalogue().product(str(tracker.get_slot("product") or ""))
            subject = say("handoff.subject_product", channel, product=product.in_sentence) if product else \
                say("handoff.subject_this", channel)
            lines.append(say("handoff.topic_for_people", channel, subject=subject))
        lines.append(say("handoff.queued" if queued.created else "handoff.queued_again", channel))
        lines.append(say("handoff.position_minute" if wait == 1 else "handoff.position_minutes", channel,
                         position=position, wait=wait))
        lines.append(say("handoff.agent_sees_conversation", channel))
        lines.append(say("handoff.back_to_assistant_hint", channel))
        return "\n".join(lines)
