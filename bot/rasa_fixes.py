"""Every change this project makes to Rasa Open Source 3.6.21's own classes, in one place.

Installed explicitly, once per process, by the entry point that starts Rasa
(``python -m bot.server run …``, see ``bot/server.py``), never by a channel's constructor: whoever
reads how Rasa is started sees that these fixes exist. Each fix names the Rasa behaviour it fixes
and has a test in ``tests/test_rasa_fixes.py`` that fails without it.

Speed (measured in ``docs/performance.md``):

- ``validator_built_once``: ``RemoteAction._validate_action_result`` calls ``jsonschema.validate``
  on every action-server reply; that checks the schema against the JSON-Schema metaschema and
  builds a new validator each time (≥ 45 % of the Rasa process' CPU under load). The schema is a
  constant, so it is checked and its validator built once.
- ``event_types_indexed``: ``Event.resolve_by_type`` walks ``all_subclasses(Event)`` (a recursive
  walk plus ``inspect.isabstract`` for ~40 classes) for every event it deserialises, and the
  tracker store deserialises every event of a conversation on each message. The classes are
  indexed by type name once; a name not in the index (an Event subclass imported later) rebuilds it.

Citizens never left without an answer:

- ``polite_action_failure``: when the action server cannot be reached, times out or fails,
  Rasa 3.6 logs the error and says nothing (the REST channel returns ``[]``, WhatsApp and Telegram
  send nothing). The action the processor runs then answers a polite Dutch sentence instead. A
  remote action called *inside* another one (a form's ``validate_<form>``, a custom slot mapping)
  still fails as usual, so that its form never goes on with unvalidated values.
- ``polite_store_failure``: when the lock or tracker store (Redis) fails, ``Agent.handle_message``
  raises: the REST channel logs it and returns ``[]``, other channels answer HTTP 500. The citizen
  gets a polite "send it again" instead (unless the answer was already given).

The Redis tracker and lock stores of the production profile are fixed in subclasses configured in
``endpoints.production.yml`` (``bot/stores.py``), the in-memory tracker store in
``bot/memory_store.py`` (``endpoints.yml``): Rasa loads those by module path, no patch is needed.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from typing import Any, Callable, Dict, List, Optional, Text, Type

from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.core.actions.loops import LoopAction
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.processor import MessageProcessor
from rasa.shared.core.events import BotUttered, Event

from bot import metrics

logger = logging.getLogger(__name__)

#: The Rasa release these fixes were written and tested for; another one gets a warning.
RASA_VERSION = "3.6.21"

#: Gentinfo's line, when the catalogue cannot be read (the apology must not depend on it).
GENTINFO_PHONE = "09 210 10 10"
SORRY_ACTION_SERVER = (
    "Sorry, ik kan uw vraag nu even niet beantwoorden door een technisch probleem. "
    "Probeer het over een paar minuten opnieuw, of bel Gentinfo op {phone}."
)
SORRY_STORE = (
    "Sorry, er ging even iets mis aan onze kant. Stuur uw bericht over een ogenblik gerust opnieuw, "
    "of bel Gentinfo op {phone}."
)
#: Metadata on the polite answers, so that tests and analytics can tell them apart.
ERROR_METADATA_KEY = "gentinfo_error"

#: Marks a replaced method, so that installing twice never wraps a wrapper.
_MARK = "_gentinfo_fix"


def _phone() -> str:
    try:
        from bot.core.catalogue import get_catalogue

        return get_catalogue().contact.phone or GENTINFO_PHONE
    except Exception:
        return GENTINFO_PHONE


def _replace(owner: type, name: str, replacement: Callable[..., Any], static: bool = False) -> bool:
    """Put ``replacement`` in place of ``owner.name`` unless a fix is there already."""
    if is_fixed(owner, name):
        return False
    setattr(replacement, _MARK, True)
    setattr(owner, name, staticmethod(replacement) if static else replacement)
    return True


def is_fixed(owner: type, name: str) -> bool:
    """Whether ``owner.name`` is one of our fixes (the ops channel warns when none is installed)."""
    return bool(getattr(getattr(owner, name, None), _MARK, False))


# -- speed ----------------------------------------------------------------------------------------
def validator_built_once() -> None:
    """Validate action-server replies with one prepared validator (same errors as Rasa's)."""
    from jsonschema import ValidationError
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for
    from rasa.shared.constants import DOCS_BASE_URL

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)  # once, as jsonschema.validate does on every call
    validator = cls(schema)

    def _validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
        error: Optional[ValidationError] = best_match(validator.iter_errors(result))
        if error is None:
            return True
        error.message += (  # Rasa's own wording
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error

    _replace(RemoteAction, "_validate_action_result", _validate_action_result)


_EVENT_TYPES: Dict[Text, Type[Event]] = {}


def _index_event_types() -> None:
    from rasa.shared.utils.common import all_subclasses

    _EVENT_TYPES.clear()
    for cls in reversed(all_subclasses(Event)):  # the first class of a name wins, as in Rasa
        _EVENT_TYPES[cls.type_name] = cls


def event_types_indexed() -> None:
    """Resolve an event's class by a dictionary look-up instead of a class-tree walk per event."""

    def resolve_by_type(type_name: Text, default: Optional[Type[Event]] = None) -> Optional[Type[Event]]:
        cls = _EVENT_TYPES.get(type_name)
        if cls is None:
            _index_event_types()  # an Event subclass imported since the last look-up
            cls = _EVENT_TYPES.get(type_name)
        if cls is not None:
            return cls
        if type_name == "topic":
            return None  # Rasa: backwards compatibility with old TopicSet events
        if default is not None:
            return default
        raise ValueError(f"Unknown event name '{type_name}'.")

    if not is_fixed(Event, "resolve_by_type"):
        _index_event_types()
        _replace(Event, "resolve_by_type", resolve_by_type, static=True)


# -- polite answers -------------------------------------------------------------------------------
#: The action the processor is running right now (one per message task): only that one answers
#: politely; a remote action it calls itself fails as usual.
_TOP_ACTION: "contextvars.ContextVar[Optional[str]]" = contextvars.ContextVar("gentinfo_top_action", default=None)


def _polite_action_failure(action_name: str, error: BaseException) -> List[Event]:
    metrics.ERROR_ANSWERS.labels(cause="action_server").inc()
    logger.error("rasa_fixes.action_server.failed: %s: %s; the citizen gets a polite answer",
                 action_name, type(error).__name__)
    return [BotUttered(SORRY_ACTION_SERVER.format(phone=_phone()), metadata={ERROR_METADATA_KEY: "action_server"})]


def polite_action_failure() -> None:
    """A polite Dutch answer when the action server fails, counted per action and outcome."""
    original_run_action = MessageProcessor._run_action
    original_remote = RemoteAction.run
    original_loop = LoopAction.run

    @functools.wraps(original_run_action)
    async def _run_action(self: MessageProcessor, action: Any, *args: Any, **kwargs: Any) -> bool:
        token = _TOP_ACTION.set(action.name())
        try:
            return await original_run_action(self, action, *args, **kwargs)
        finally:
            _TOP_ACTION.reset(token)

    @functools.wraps(original_remote)
    async def remote_run(self: RemoteAction, *args: Any, **kwargs: Any) -> List[Event]:
        try:
            events = await original_remote(self, *args, **kwargs)
        except ActionExecutionRejection:
            metrics.ACTION_CALLS.labels(action=self.name(), outcome="rejected").inc()
            raise  # e.g. a form's validation refusing the value: Rasa handles it
        except Exception as error:
            metrics.ACTION_CALLS.labels(action=self.name(), outcome="failed").inc()
            if _TOP_ACTION.get() != self.name():
                raise
            return _polite_action_failure(self.name(), error)
        metrics.ACTION_CALLS.labels(action=self.name(), outcome="ok").inc()
        return events

    @functools.wraps(original_loop)
    async def loop_run(self: LoopAction, *args: Any, **kwargs: Any) -> List[Event]:
        try:
            return await original_loop(self, *args, **kwargs)
        except ActionExecutionRejection:
            raise
        except Exception as error:
            if _TOP_ACTION.get() != self.name():
                raise
            return _polite_action_failure(self.name(), error)

    _replace(MessageProcessor, "_run_action", _run_action)
    _replace(RemoteAction, "run", remote_run)
    _replace(LoopAction, "run", loop_run)


async def _apologise(message: UserMessage) -> None:
    channel = message.output_channel
    if channel is None:
        return
    if isinstance(channel, CollectingOutputChannel) and channel.messages:
        return  # the answer was given; only storing the turn failed
    try:
        await channel.send_response(
            message.sender_id,
            {"text": SORRY_STORE.format(phone=_phone()), "custom": None,
             "metadata": {ERROR_METADATA_KEY: "conversation_store"}},
        )
    except Exception as error:
        logger.error("rasa_fixes.apology.failed: %s", type(error).__name__)


def polite_store_failure() -> None:
    """A polite Dutch answer when the lock or tracker store fails, instead of silence or a 500."""
    original = Agent.handle_message

    @functools.wraps(original)
    async def handle_message(self: Agent, message: UserMessage) -> Optional[List[Dict[Text, Any]]]:
        try:
            return await original(self, message)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            metrics.ERROR_ANSWERS.labels(cause="conversation_store").inc()
            logger.error("rasa_fixes.message.failed: %s: %s; the citizen gets a polite answer",
                         type(error).__name__, error)
            await _apologise(message)
            return None

    _replace(Agent, "handle_message", handle_message)


#: Every fix, in the order they are installed.
FIXES: Dict[str, Callable[[], None]] = {
    "validator_built_once": validator_built_once,
    "event_types_indexed": event_types_indexed,
    "polite_action_failure": polite_action_failure,
    "polite_store_failure": polite_store_failure,
}


def install(only: Optional[List[str]] = None) -> List[str]:
    """Install the fixes (all, or ``only`` these) and the log masking; idempotent. Their names."""
    import rasa

    from bot import logsafe

    logsafe.install()
    if rasa.__version__ != RASA_VERSION:
        logger.warning("rasa_fixes: written for Rasa %s, running %s: check every fix (tests/test_rasa_fixes.py)",
                       RASA_VERSION, rasa.__version__)
    names = list(FIXES) if only is None else only
    for name in names:
        FIXES[name]()
    return names


def installed() -> bool:
    """Whether the fixes are in place in this process."""
    return is_fixed(Agent, "handle_message") and is_fixed(RemoteAction, "_validate_action_result")
