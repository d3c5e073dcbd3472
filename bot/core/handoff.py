"""Human handoff: Gentinfo agents take over escalated conversations and hand them back.

Everything lives in Redis so that every Rasa worker, action server and agent console sees the same
state, and none of them loses it on a restart:

``gentinfo:handoff:h:<id>``          hash    one handoff: conversation, channel, status, reason, since,
                                             agent, context (JSON: last messages, slots), ...
``gentinfo:handoff:active:<ckey>``   string  the open handoff id of a conversation (``ckey``: a hash of
                                             the conversation id, no phone numbers in key names)
``gentinfo:handoff:queue``           zset    waiting handoff ids, score = waiting since (epoch s)
``gentinfo:handoff:held``            zset    handoff ids an agent holds, score = claimed at
``gentinfo:handoff:stream:<id>``     stream  the transcript after the handoff: citizen, agent, note, system
``gentinfo:handoff:events``          pub/sub live updates for the consoles (JSON)
``gentinfo:handoff:availability``    string  ``open`` / ``closed`` overrides the hours ("auto" when absent)

The agents' hours and their Dutch phrases are in ``bot/core/handoff_hours.py``, the Lua scripts in
``bot/core/handoff_scripts.py``; the process-wide store comes from ``bot.wiring.handoff_store()``.

A handoff's status goes ``message`` (outside hours: waiting for the citizen's message) or straight
to ``waiting`` -> ``held`` (claimed by one agent) -> ``closed`` (handed back, closed, citizen typed
"stop", or idle). Every transition is one Lua script, so two agents claiming at once, or a citizen
message racing an agent's hand-back, always end in one consistent state. Key names are composed
inside the scripts: this needs a single Redis (or a primary with replicas), not Redis Cluster.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Sequence

import redis
import redis.asyncio
import yaml
from pydantic import ValidationError

from bot.core import handoff_scripts as scripts
from bot.core import redis_clients
from bot.core.clock import CITY_TZ as CITY_TZ
from bot.core.conversation import CHANNEL_NAMES, TELEGRAM, WEB, WHATSAPP
from bot.core.conversation import channel_of as channel_of
from bot.core.conversation import key as conversation_key
from bot.core.conversation import mask as mask
from bot.core.handoff_hours import CONFIG_ENV, CONFIG_PATH
from bot.core.handoff_hours import GENTINFO_HOURS as GENTINFO_HOURS
from bot.core.handoff_hours import HandoffConfig as HandoffConfig
from bot.core.handoff_hours import get_config as get_config
from bot.core.handoff_hours import load_config as load_config
from bot.core.handoff_hours import when_text as when_text
from bot.core.loops import LoopLocal

logger = logging.getLogger(__name__)

PREFIX = "gentinfo:handoff"

#: Channels an agent can write to (``connectors.outbound`` prefixes). Others (REST, terminal) get
#: the phone line instead of live chat.
LIVE_CHANNELS = (WHATSAPP, TELEGRAM, WEB)

#: Why a conversation was handed over.
REASONS = {
    "explicit": "vroeg zelf naar een medewerker",
    "misunderstood": "de assistent begreep de vraag niet",
    "topic": "onderwerp altijd door een medewerker",
}
OUTCOMES = ("handback", "closed", "citizen_stop", "expired")

_ID = re.compile(r"^[0-9a-f]{24}$")
MAX_TEXT_CHARS = 4000
STREAM_MAXLEN = 5000
TRANSCRIPT_LIMIT = 2000

#: What a citizen types to leave the queue (or an agent) and go back to the assistant.
STOP_WORDS = frozenset({"stop", "/stop", "stoppen", "stop aub", "stop alstublieft"})


def is_stop(text: Optional[str]) -> bool:
    value = unicodedata.normalize("NFKC", text or "").strip().casefold().rstrip(".!? ")
    return value in STOP_WORDS


def valid_id(value: str) -> bool:
    return bool(_ID.match(value or ""))


# --- data ----------------------------------------------------------------------------------------


class HandoffError(Exception):
    """A transition that is not allowed now; ``code`` is stable for the API."""

    def __init__(self, code: str, message: str, holder: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.holder = code, message, holder


@dataclass
class Handoff:
    id: str
    conversation: str
    channel: str
    status: str  # message | waiting | held | closed
    reason: str
    since: float
    offline: bool = False  # a message left outside agents' hours
    agent: str = ""
    claimed_at: Optional[float] = None
    last_activity: Optional[float] = None
    closed_at: Optional[float] = None
    outcome: str = ""
    context: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_hash(cls, handoff_id: str, data: Dict[str, str]) -> "Handoff":
        def number(name: str) -> Optional[float]:
            return float(data[name]) if data.get(name) else None

        try:
            context = json.loads(data.get("context") or "{}")
        except ValueError:
            context = {}
        return cls(
            id=handoff_id, conversation=data.get("conversation", ""), channel=data.get("channel", ""),
            status=data.get("status", ""), reason=data.get("reason", ""), since=number("since") or 0.0,
            offline=data.get("offline") == "1", agent=data.get("agent", ""), claimed_at=number("claimed_at"),
            last_activity=number("last_activity"), closed_at=number("closed_at"), outcome=data.get("outcome", ""),
            context=context,
        )

    @property
    def open(self) -> bool:
        return self.status in ("message", "waiting", "held")

    def as_dict(self) -> Dict[str, Any]:
        return {
            "id": self.id, "conversation": self.conversation, "channel": self.channel,
            "channel_name": CHANNEL_NAMES.get(self.channel, self.channel), "label": mask(self.conversation),
            "status": self.status, "reason": self.reason, "reason_text": REASONS.get(self.reason, self.reason),
            "since": self.since, "offline": self.offline, "agent": self.agent, "claimed_at": self.claimed_at,
            "last_activity": self.last_activity, "closed_at": self.closed_at, "outcome": self.outcome,
            "context": self.context,
        }


@dataclass
class Enqueued:
    handoff: Handoff
    created: bool
    position: Optional[int]  # 1 = next; None when not in the queue (held, or waiting for a message)


@dataclass
class GateDecision:
    """What the input gate does with a citizen message: ``pass`` (to Rasa), ``held`` (to the agent
    only), ``message_left`` (stored as the message for the agents), ``stopped`` (left the queue, then
    to Rasa), ``expired`` (idle hold released, then to Rasa)."""

    action: str
    handoff_id: str = ""
    entry: Optional[Dict[str, Any]] = None

    @property
    def to_assistant(self) -> bool:
        return self.action in ("pass", "stopped", "expired")


def _entry(stream_id: str, fields: Dict[str, str]) -> Dict[str, Any]:
    return {
        "id": stream_id, "type": fields.get("type", ""), "text": fields.get("text", ""),
        "agent": fields.get("agent", ""), "at": float(fields.get("at") or 0),
        **({"delivered": fields["delivered"] == "1"} if "delivered" in fields else {}),
    }


# --- the store ----------------------------------------------------------------------------------


class HandoffStore:
    """All handoff state, in Redis. Cheap to create; one connection pool per event loop."""

    def __init__(self, url: str, *, prefix: str = PREFIX, config: Optional[HandoffConfig] = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.prefix = prefix
        self._config = config
        self.clock = clock
        self._clients: LoopLocal[redis.asyncio.Redis] = LoopLocal(
            lambda: redis_clients.async_client(url, decode_responses=True)
        )

    @property
    def config(self) -> HandoffConfig:
        return self._config or get_config()

    @property
    def redis(self) -> redis.asyncio.Redis:
        return self._clients.get()

    async def close(self) -> None:
        client = self._clients.pop()
        if client is not None:
            await client.close()

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _now(self, now: Optional[float]) -> str:
        return repr(float(self.clock() if now is None else now))

    async def _run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> List[str]:
        client = self.redis
        # register_script keeps the SHA; EVALSHA falls back to EVAL when Redis restarted.
        return await client.register_script(script)(keys=list(keys), args=[self.prefix, STREAM_MAXLEN, *args])

    @property
    def _retention(self) -> int:
        return int(self.config.retention_days * 86400)

    async def publish(self, event: Dict[str, Any]) -> None:
        try:
            await self.redis.publish(self._key("events"), json.dumps(event, ensure_ascii=False))
        except redis.RedisError as error:
            logger.warning("handoff event not published: %s", error)

    # -- escalation (action server) -------------------------------------------------------------
    async def enqueue(self, conversation: str, *, reason: str, context: Dict[str, Any], live: bool = True,
                      now: Optional[float] = None) -> Enqueued:
        """Put a conversation in the queue (``live``), or wait for the message it leaves outside hours.
        Asking again while already waiting keeps the place in the queue."""
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}")
        note = {
            "explicit": "Doorgestuurd: de burger vroeg naar een medewerker.",
            "misunderstood": "Doorgestuurd: de assistent begreep de burger niet.",
            "topic": "Doorgestuurd: dit onderwerp behandelt altijd een medewerker.",
        }[reason]
        if not live:
            note += " Buiten de uren: de burger kan een bericht achterlaten."
        handoff_id, created, position = await self._run(
            scripts.ENQUEUE, [self._key("active", conversation_key(conversation))],
            [secrets.token_hex(12), conversation, conversation_key(conversation), channel_of(conversation), reason,
             json.dumps(context, ensure_ascii=False, default=str), self._now(now), "live" if live else "message", note],
        )
        handoff = await self.get(handoff_id)
        assert handoff is not None
        if created == "1" or handoff.status == "waiting":
            await self.publish({"type": "queued" if created == "1" else "updated", "id": handoff_id})
        return Enqueued(handoff, created == "1", int(position) if position else None)

    async def position(self, handoff_id: str) -> Optional[int]:
        rank = await self.redis.zrank(self._key("queue"), handoff_id)
        return None if rank is None else rank + 1

    def wait_minutes(self, position: int) -> int:
        return max(1, position) * self.config.minutes_per_waiting_conversation

    # -- the input gate (Rasa process) ----------------------------------------------------------
    async def citizen_message(self, conversation: str, text: str, now: Optional[float] = None) -> GateDecision:
        config = self.config
        stamp = self._now(now)
        action, handoff_id, entry_id = await self._run(
            scripts.CITIZEN, [self._key("active", conversation_key(conversation))],
            [text[:MAX_TEXT_CHARS], stamp, "1" if is_stop(text) else "0",
             int(config.idle_release_hours * 3600), int(config.message_wait_minutes * 60), self._retention],
        )
        decision = GateDecision(action, handoff_id)
        if entry_id:
            decision.entry = {"id": entry_id, "type": "citizen", "text": text[:MAX_TEXT_CHARS], "agent": "",
                              "at": float(stamp)}
            await self.publish({"type": "message", "id": handoff_id, "entry": decision.entry})
        if action == "message_left":
            await self.publish({"type": "queued", "id": handoff_id})
        elif action in ("stopped", "expired"):
            await self.publish({"type": "closed", "id": handoff_id, "outcome": "citizen_stop" if action == "stopped" else action})
        return decision

    # -- agents ---------------------------------------------------------------------------------
    async def claim(self, handoff_id: str, agent: str, now: Optional[float] = None) -> Handoff:
        """Exactly one agent wins a waiting conversation; the others get ``HandoffError("taken")``."""
        result, detail = await self._run(scripts.CLAIM, [], [handoff_id, agent, self._now(now)])
        if result == "taken":
            raise HandoffError("taken", f"{detail} heeft dit gesprek al overgenomen.", holder=detail)
        if result == "gone":
            raise HandoffError("gone" if detail else "not_found", "Dit gesprek wacht niet meer.")
        await self.publish({"type": "claimed", "id": handoff_id, "agent": agent})
        handoff = await self.get(handoff_id)
        assert handoff is not None
        return handoff

    async def _append(self, handoff_id: str, agent: str, kind: str, text: str, now: Optional[float]) -> Dict[str, Any]:
        text = text.strip()
        if not text:
            raise HandoffError("empty", "Typ eerst een bericht.")
        if len(text) > MAX_TEXT_CHARS:
            raise HandoffError("too_long", f"Een bericht mag hoogstens {MAX_TEXT_CHARS} tekens lang zijn.")
        stamp = self._now(now)
        result, detail = await self._run(scripts.APPEND, [], [handoff_id, agent, stamp, kind, text])
        if result == "not_holder":
            raise HandoffError("not_holder", f"{detail} behandelt dit gesprek.", holder=detail)
        if result == "gone":
            raise HandoffError("gone" if detail else "not_found", "Dit gesprek is niet meer open.")
        entry = {"id": detail, "type": kind, "text": text, "agent": agent, "at": float(stamp)}
        await self.publish({"type": "message" if kind == "agent" else "note", "id": handoff_id, "entry": entry})
        return entry

    async def agent_message(self, handoff_id: str, agent: str, text: str, now: Optional[float] = None) -> Dict[str, Any]:
        """Record the holder's reply (the caller sends it to the citizen)."""
        return await self._append(handoff_id, agent, "agent", text, now)

    async def note(self, handoff_id: str, agent: str, text: str, now: Optional[float] = None) -> Dict[str, Any]:
        """An internal note for colleagues; never sent to the citizen."""
        return await self._append(handoff_id, agent, "note", text, now)

    async def system_note(self, handoff_id: str, text: str, now: Optional[float] = None) -> Dict[str, Any]:
        stamp = self._now(now)
        entry_id = await self.redis.xadd(self._key("stream", handoff_id),
                                         {"type": "system", "text": text, "agent": "", "at": stamp},
                                         maxlen=STREAM_MAXLEN, approximate=True)
        entry = {"id": entry_id, "type": "system", "text": text, "agent": "", "at": float(stamp)}
        await self.publish({"type": "message", "id": handoff_id, "entry": entry})
        return entry

    async def finish(self, handoff_id: str, agent: str, outcome: str, now: Optional[float] = None) -> Handoff:
        """Hand back to the assistant or close: the holder, or anyone for a conversation nobody holds."""
        if outcome not in ("handback", "closed"):
            raise ValueError(f"unknown outcome {outcome!r}")
        text = (f"{agent} gaf het gesprek terug aan de digitale assistent." if outcome == "handback"
                else f"{agent} sloot het gesprek af.")
        result, detail = await self._run(scripts.FINISH, [], [handoff_id, agent, self._now(now), outcome, self._retention, text])
        if result == "not_holder":
            raise HandoffError("not_holder", f"{detail} behandelt dit gesprek.", holder=detail)
        if result == "gone":
            raise HandoffError("gone" if detail else "not_found", "Dit gesprek is niet meer open.")
        await self.publish({"type": "closed", "id": handoff_id, "outcome": outcome, "agent": agent})
        handoff = await self.get(handoff_id)
        assert handoff is not None
        return handoff

    # -- reading --------------------------------------------------------------------------------
    async def get(self, handoff_id: str) -> Optional[Handoff]:
        if not valid_id(handoff_id):
            return None
        data = await self.redis.hgetall(self._key("h", handoff_id))
        return Handoff.from_hash(handoff_id, data) if data else None

    async def active_for(self, conversation: str) -> Optional[Handoff]:
        handoff_id = await self.redis.get(self._key("active", conversation_key(conversation)))
        return await self.get(handoff_id) if handoff_id else None

    async def _many(self, zset: str) -> List[Handoff]:
        ids = await self.redis.zrange(self._key(zset), 0, -1)
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for handoff_id in ids:
                pipe.hgetall(self._key("h", handoff_id))
            rows = await pipe.execute()
        return [Handoff.from_hash(i, row) for i, row in zip(ids, rows, strict=True) if row]

    async def waiting(self) -> List[Handoff]:
        """The queue, longest waiting first."""
        return await self._many("queue")

    async def held(self) -> List[Handoff]:
        return await self._many("held")

    async def transcript(self, handoff_id: str, after: str = "-", limit: int = TRANSCRIPT_LIMIT) -> List[Dict[str, Any]]:
        start = f"({after}" if after not in ("-", "") else "-"
        rows = await self.redis.xrange(self._key("stream", handoff_id), min=start, max="+", count=limit)
        return [_entry(stream_id, fields) for stream_id, fields in rows]

    async def recent(self, handoff_id: str, count: int) -> List[Dict[str, Any]]:
        rows = await self.redis.xrevrange(self._key("stream", handoff_id), count=count)
        return [_entry(stream_id, fields) for stream_id, fields in reversed(rows)]

    # -- availability switch ----------------------------------------------------------------------
    async def availability(self) -> str:
        value = await self.redis.get(self._key("availability"))
        return value if value in ("open", "closed") else "auto"

    async def set_availability(self, value: str) -> None:
        if value not in ("open", "closed", "auto"):
            raise ValueError("availability is open, closed or auto")
        if value == "auto":
            await self.redis.delete(self._key("availability"))
        else:
            await self.redis.set(self._key("availability"), value)
        await self.publish({"type": "availability", "value": value})

    async def agents_available(self, at: datetime) -> bool:
        """Agents answer now: the switch in the console, else the hours in handoff.yml."""
        value = await self.availability()
        return value == "open" if value != "auto" else self.config.is_open(at)

    # -- live updates -----------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[Dict[str, Any]]:
        """Every event published by any process, until cancelled. Its own connection (no timeout).
        Starts with ``{"type": "resync"}`` once subscribed: whatever happened before is not in here."""
        client = redis_clients.async_client(self.url, decode_responses=True, subscriber=True)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._key("events"))
            yield {"type": "resync"}
            while True:
                message = await pubsub.get_message(timeout=30.0)
                if message is None:
                    continue
                try:
                    yield json.loads(message["data"])
                except (ValueError, TypeError):
                    continue
        finally:
            try:
                await pubsub.unsubscribe()
                await pubsub.close()
            finally:
                await client.close()


def main(argv: List[str]) -> int:
    if not argv or argv[0] != "validate":
        print("usage: python -m bot.core.handoff validate [PATH]", file=sys.stderr)
        return 2
    path = Path(argv[1]) if len(argv) > 1 else Path(os.environ.get(CONFIG_ENV) or CONFIG_PATH)
    try:
        config = load_config(path)
    except (OSError, yaml.YAMLError, ValidationError) as error:
        print(f"{path}: {error}", file=sys.stderr)
        return 1
    print(f"{path}: ok (agents {config.hours_text()}; always human: {', '.join(config.always_human_products) or '-'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
