"""The handoff gate: in front of Rasa, every input channel asks it before the assistant answers.

While a Gentinfo agent has (or is about to take) a conversation, the assistant keeps quiet: the
citizen's message goes to the agent's transcript in Redis and not to Rasa. "stop" leaves the queue
(or the agent) and is then answered by the assistant as usual. Outside agents' hours, after the
assistant offered it, the next message is kept as the message for the agents.

Connectors wrap the ``on_new_message`` Rasa gives their blueprint::

    on_new_message = gate.guard(on_new_message)

Without ``REDIS_URL`` there is no handoff, and the gate lets everything through. When Redis fails the
gate also lets the message through: an answer from the assistant beats a message lost (the inbox's
dedupe decides the same way, see ``connectors/inbox.py``). Its texts are ``channels.*`` in texts.yml.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Awaitable, Callable, Optional

import redis
from rasa.core.channels.channel import UserMessage

from bot import wiring
from bot.core import handoff
from bot.core.clock import CITY_TZ
from bot.core.texts import say

logger = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


async def admit(message: UserMessage, store: Optional[handoff.HandoffStore] = None) -> bool:
    """True when Rasa should handle ``message``; otherwise the gate has dealt with it."""
    store = store or wiring.handoff_store()
    conversation, text = message.sender_id, message.text or ""
    if store is None or not conversation:
        return True
    try:
        decision = await store.citizen_message(conversation, text)
    except redis.RedisError as error:
        logger.warning("handoff gate: Redis unavailable, the assistant answers: %s", error)
        return True
    channel = message.input_channel
    if decision.action == "stopped":
        await _say(message, say("channels.handoff_stopped", channel))
    elif decision.action == "message_left":
        await _say(message, say("channels.message_left", channel, when=_next_opening_text(store, channel)))
    if decision.action != "pass":
        logger.info("handoff gate: %s message of handoff %s", decision.action, decision.handoff_id)
    return decision.to_assistant


def guard(on_new_message: OnNewMessage, store: Optional[handoff.HandoffStore] = None) -> OnNewMessage:
    """``on_new_message`` behind the gate: the one line each connector adds."""

    async def gated(message: UserMessage) -> Any:
        if await admit(message, store):
            return await on_new_message(message)
        return None

    return gated


def _next_opening_text(store: handoff.HandoffStore, channel: Optional[str]) -> str:
    now = datetime.now(CITY_TZ)
    moment = store.config.next_opening(now)
    return handoff.when_text(moment, now) if moment else say("channels.next_opening_unknown", channel)


async def _say(message: UserMessage, text: str) -> None:
    if message.output_channel is None:
        return
    try:
        await message.output_channel.send_text_message(message.sender_id, text)
    except Exception as error:
        logger.warning("handoff gate: notice not sent: %s", error)
