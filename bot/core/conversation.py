"""The conversation id, one type for every place that reads, shows or stores it.

Rasa's sender id carries the citizen's channel as a prefix: ``whatsapp:+32470123456``,
``telegram:123456789``, ``web:<uuid>``. The part after the prefix is the channel's own address,
so it can be a phone number: it is masked in logs and lists (:meth:`ConversationId.masked`) and
hashed in Redis key names (:meth:`ConversationId.key`), so that neither the log store nor anyone
reading Redis sees it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

#: The channel prefixes the connectors register (``connectors.outbound``).
WHATSAPP, TELEGRAM, WEB = "whatsapp", "telegram", "web"
#: What an agent or a report calls each channel.
CHANNEL_NAMES = {WHATSAPP: "WhatsApp", TELEGRAM: "Telegram", WEB: "webchat"}


class NotAConversationId(ValueError):
    """The text has no ``channel:address`` form."""


@dataclass(frozen=True)
class ConversationId:
    """``channel:native`` — e.g. ``ConversationId("whatsapp", "+32470123456")``."""

    channel: str
    native: str

    @classmethod
    def parse(cls, value: str) -> "ConversationId":
        """``"telegram:42"`` -> ``ConversationId("telegram", "42")``; raises without a prefix."""
        channel, sep, native = (value or "").partition(":")
        if not sep or not channel or not native:
            raise NotAConversationId("conversation id has no channel prefix")
        return cls(channel, native)

    @classmethod
    def of(cls, channel: str, recipient: str) -> "ConversationId":
        """From a channel and either its own address (``+32…``) or a full id (``whatsapp:+32…``).

        Output channels get both: Rasa passes the sender id, outbound senders the native address.
        """
        prefix = f"{channel}:"
        return cls(channel, recipient[len(prefix):] if recipient.startswith(prefix) else recipient)

    def __str__(self) -> str:
        return f"{self.channel}:{self.native}"

    @property
    def masked(self) -> str:
        """``whatsapp:…456``: the channel and the last three characters, fit for INFO logs."""
        return f"{self.channel}:…{self.native[-3:]}"

    @property
    def text_channel(self) -> str:
        """The channel name of Rasa and of texts.yml variants (``web`` ids come from ``webchat``)."""
        return "webchat" if self.channel == WEB else self.channel

    @property
    def key(self) -> str:
        """A Redis key part without the phone number in it (a hash of the whole id)."""
        return key(str(self))


def key(conversation: str) -> str:
    """:attr:`ConversationId.key` for any text (a malformed id still gets a stable key)."""
    return hashlib.sha256(conversation.encode("utf-8")).hexdigest()[:32]


def channel_of(conversation: str) -> str:
    """The channel prefix, or ``""`` for a text that is no conversation id."""
    parsed = try_parse(conversation)
    return parsed.channel if parsed else ""


def try_parse(conversation: str) -> Optional[ConversationId]:
    try:
        return ConversationId.parse(conversation)
    except NotAConversationId:
        return None


def mask(conversation: str) -> str:
    """:attr:`ConversationId.masked` for any text: ``…456`` when there is no channel prefix."""
    parsed = try_parse(conversation)
    return parsed.masked if parsed else f"…{conversation[-3:]}"
