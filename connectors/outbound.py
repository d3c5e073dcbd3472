"""Send a message to any conversation on the citizen's own channel.

Conversation ids (``bot.core.conversation.ConversationId``) carry their channel as a prefix:
``whatsapp:+32470123456``, ``telegram:123456789``, ``web:4f0c…``. Each connector registers a factory
for a Rasa ``OutputChannel`` under its prefix, so the human handoff (agents' replies), reminders and
the connectors themselves all send through one path, using Rasa's own
``OutputChannel.send_response`` for text, buttons, images and attachments.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, Tuple

from rasa.core.channels.channel import OutputChannel

from bot.core.conversation import ConversationId, NotAConversationId

OutputFactory = Callable[[], OutputChannel]

_factories: Dict[str, OutputFactory] = {}

#: Modules whose import registers an output factory (see ``load_channels``).
CHANNEL_MODULES = ("connectors.whatsapp", "connectors.telegram", "connectors.webchat")


class UnknownChannel(LookupError):
    """The conversation id names no registered channel."""


def register(prefix: str, factory: OutputFactory) -> None:
    _factories[prefix] = factory


def load_channels() -> None:
    """Import the connector modules so that they register (for processes outside Rasa)."""
    for module in CHANNEL_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise


def output_channel_for(conversation: str) -> Tuple[OutputChannel, str]:
    """The output channel and the channel's own recipient id for a conversation id."""
    try:
        parsed = ConversationId.parse(conversation)
    except NotAConversationId as error:
        raise UnknownChannel(str(error)) from None
    try:
        return _factories[parsed.channel](), parsed.native
    except KeyError:
        raise UnknownChannel(f"no output channel registered for {parsed.channel!r}") from None


async def send(conversation: str, message: Dict[str, Any]) -> None:
    """Send one Rasa-style bot message (``text``, ``buttons``, ``image``, ``attachment``, ...)."""
    channel, recipient = output_channel_for(conversation)
    await channel.send_response(recipient, message)
