"""One base class for the task forms' validation actions, and one for their questions.

rasa-sdk's ``FormValidationAction`` looks up ``extract_<slot>`` and ``validate_<slot>`` by name
(``getattr(self, name, None)``). ``TableForm`` answers those look-ups from a per-slot table of
``Field`` entries, so a form says *what* differs per slot (which entities, what looks like an answer,
the slot's own check) instead of repeating the same 10 lines of plumbing per slot:

- extract: at activation clear what an unfinished earlier task left (or the field's own
  ``activate``); afterwards the field's ``extract``, or ``answer_for`` with its entities and test;
- validate: ``None`` keeps what an earlier validator of this run set; a change request
  ("andere dag") goes to the form's ``change``; everything else to the field's ``check``.

Questions: rasa-sdk registers every non-abstract ``Action`` subclass under its ``name()``. ``ask_actions``
makes one small subclass per slot from a table, named ``action_ask_<slot>`` as domain.yml expects.
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from functools import partial
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Pattern, Sequence, Text, Tuple, Type

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.tasks import answer_for, is_activation, keep, reset_values, text_channel
from bot.core.choices import change_field, is_change
from bot.core.texts import say

Result = Dict[str, Any]
#: The slot's own check of an answer: (form, value, dispatcher, tracker) -> slot updates.
Check = Callable[[Any, Any, CollectingDispatcher, Tracker], Awaitable[Result]]
Button = Dict[str, str]


@dataclass(frozen=True)
class Field:
    """How one slot of a form is read from the latest message and checked.

    ``activate``: slot updates at form activation (default: clear a leftover value; ``NOTHING``:
    none). ``extract``: a custom reading of the answer; otherwise ``answer_for`` with ``entities`` and
    ``looks_valid(text, tracker)``. ``check``: the slot's validation after the shared steps;
    ``changes``: whether a change request ("change:day") is passed to the form's ``change``.
    """

    check: Optional[Check] = None
    entities: Tuple[str, ...] = ()
    looks_valid: Optional[Callable[[str, Tracker], bool]] = None
    activate: Optional[Callable[[Tracker], Result]] = None
    extract: Optional[Callable[[Tracker], Result]] = None
    changes: bool = True
    keep_on_none: bool = True


def nothing(tracker: Tracker) -> Result:
    """For ``Field.activate``: nothing to read or clear when the form starts."""
    return {}


class TableForm(FormValidationAction, metaclass=ABCMeta):
    """A form validation action driven by ``fields`` (see the module docstring). Abstract (``change``),
    so that rasa-sdk, which registers every concrete Action subclass, skips this base class."""

    #: The form's name in domain.yml (the action is ``validate_<form>``).
    form: str = ""
    fields: Mapping[str, Field] = {}
    #: Keywords of typed change requests ("ander uur") -> field, for ``answer_for``.
    changes: Optional[Mapping[str, Pattern[str]]] = None

    def name(self) -> Text:
        return f"validate_{self.form}"

    def __getattr__(self, attribute: str) -> Any:
        # only called when normal look-up fails: explicit extract_/validate_ methods still win
        for prefix, handler in (("extract_", self._extract), ("validate_", self._validate)):
            if attribute.startswith(prefix) and attribute[len(prefix):] in type(self).fields:
                return partial(handler, attribute[len(prefix):])
        raise AttributeError(attribute)

    async def _extract(self, slot: str, dispatcher: CollectingDispatcher, tracker: Tracker,
                       domain: DomainDict) -> Result:
        field = self.fields[slot]
        if is_activation(tracker):
            return field.activate(tracker) if field.activate else reset_values(tracker, [slot])
        if field.extract is not None:
            return field.extract(tracker)
        test = field.looks_valid
        value = answer_for(tracker, slot, entities=field.entities,
                           looks_valid=(lambda text: test(text, tracker)) if test else None,
                           changes=self.changes if field.changes else None)
        return {} if value is None else {slot: value}

    async def _validate(self, slot: str, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                        domain: DomainDict) -> Result:
        field = self.fields[slot]
        if value is None and field.keep_on_none:
            return keep(tracker, slot)
        if field.changes and is_change(value):
            return await self.change(change_field(value), dispatcher, tracker)
        if field.check is None:
            return {slot: value}
        return await field.check(self, value, dispatcher, tracker)

    @abstractmethod
    async def change(self, field: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> Result:
        """Forget the answer the citizen wants to change (and what depends on it); the form asks again."""


# -- questions ---------------------------------------------------------------------------------------
#: What an ask action does: (dispatcher, tracker) -> events.
Ask = Callable[[CollectingDispatcher, Tracker], Awaitable[List[EventType]]]


def question(key: str, buttons: Sequence[Button] = (), **values: Any) -> Ask:
    """A fixed question from texts.yml (per channel), with optional buttons."""

    async def ask(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
        dispatcher.utter_message(text=say(key, text_channel(tracker), **values), buttons=list(buttons) or None)
        return []

    return ask


class _AskAction:
    """The behaviour of every ``action_ask_<slot>`` (a mixin: rasa-sdk registers each Action subclass,
    so only the generated subclasses below are Actions)."""

    slot = ""
    ask: Ask

    def name(self) -> Text:
        return f"action_ask_{self.slot}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        return await type(self).ask(dispatcher, tracker)


def ask_actions(asks: Mapping[str, Ask]) -> Dict[str, Type[Action]]:
    """One Action class per slot, registered by rasa-sdk as ``action_ask_<slot>``. Keep the returned
    mapping in a module global: rasa-sdk finds subclasses through weak references."""
    classes: Dict[str, Type[Action]] = {}
    for slot, ask in asks.items():
        class_name = "ActionAsk" + "".join(part.title() for part in slot.split("_"))
        classes[slot] = type(class_name, (_AskAction, Action), {"slot": slot, "ask": staticmethod(ask)})
    return classes
