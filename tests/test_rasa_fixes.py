"""The fixes of ``bot/rasa_fixes.py``: each test here fails on Rasa 3.6.21 without its fix.

They run on Rasa's real classes in this process (the fixes are installed once, as the entry point
``python -m bot.server`` does); the whole assistant under faults is tested in tests/test_faults.py.
"""
from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any, AsyncIterator, Callable, List

import pytest
import rasa.shared.utils.common
from jsonschema import ValidationError
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.lock_store import LockError
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, Event, SlotSet, UserUttered, deserialise_events
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot import rasa_fixes
from tests.assistant import ROOT, free_port


@pytest.fixture(autouse=True, scope="module")
def fixes_installed() -> None:
    rasa_fixes.install()


def counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> List[int]:
    """Count the calls of ``owner.name`` from now on (the original still runs)."""
    calls: List[int] = []
    original: Callable[..., Any] = getattr(owner, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return calls


# -- validator_built_once ------------------------------------------------------------------------
REPLY = {"events": [{"event": "slot", "name": "city", "value": "Gent"}], "responses": [{"text": "Dag!"}]}


def test_action_replies_are_validated_without_checking_the_schema_again(monkeypatch: pytest.MonkeyPatch) -> None:
    schema_class = validator_for(RemoteAction.action_response_format_spec())
    checks = counting(monkeypatch, schema_class, "check_schema")
    action = RemoteAction("action_answer", None)
    for _ in range(5):
        assert action._validate_action_result(REPLY) is True
    assert checks == []  # Rasa 3.6.21: jsonschema.validate checks the metaschema on every reply


def test_an_invalid_action_reply_is_still_refused_with_rasas_explanation() -> None:
    with pytest.raises(ValidationError) as refused:
        RemoteAction("action_answer", None)._validate_action_result({"events": [{"name": "city"}]})
    assert "Failed to validate Action server response" in refused.value.message
    with pytest.raises(ValidationError):
        RemoteAction("action_answer", None)._validate_action_result({"responses": "not a list"})


# -- event_types_indexed --------------------------------------------------------------------------
def test_deserialising_events_does_not_walk_the_event_class_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    walks = counting(monkeypatch, rasa.shared.utils.common, "all_subclasses")
    events = deserialise_events([{"event": "user", "text": "hallo", "parse_data": {"intent": {"name": "greet"}}},
                                 {"event": "slot", "name": "a", "value": 1},
                                 {"event": "bot", "text": "Dag!"}] * 10)
    assert [type(event) for event in events[:3]] == [UserUttered, SlotSet, BotUttered]
    assert walks == []  # Rasa 3.6.21: one recursive walk of ~40 classes per event


def test_every_event_type_resolves_to_the_class_rasa_would_choose() -> None:
    for cls in rasa.shared.utils.common.all_subclasses(Event):
        expected = next(c for c in rasa.shared.utils.common.all_subclasses(Event) if c.type_name == cls.type_name)
        assert Event.resolve_by_type(cls.type_name) is expected
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no such event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError):
        Event.resolve_by_type("no such event")


# -- polite_action_failure ------------------------------------------------------------------------
def run_remote(name: str, top_action: str) -> List[Event]:
    """Run a remote action against a closed port, as the processor would run ``top_action``."""
    action = RemoteAction(name, EndpointConfig(f"http://127.0.0.1:{free_port()}/webhook"))
    tracker = DialogueStateTracker("citizen", [])

    async def run() -> List[Event]:
        token = rasa_fixes._TOP_ACTION.set(top_action)
        try:
            return await action.run(CollectingOutputChannel(), TemplatedNaturalLanguageGenerator({}), tracker,
                                    Domain.empty())
        finally:
            rasa_fixes._TOP_ACTION.reset(token)

    return asyncio.run(run())


def test_an_unreachable_action_server_gives_the_citizen_a_polite_answer() -> None:
    events = run_remote("action_answer_question", top_action="action_answer_question")
    assert len(events) == 1 and isinstance(events[0], BotUttered)
    assert events[0].text.startswith("Sorry, ik kan uw vraag nu even niet beantwoorden")
    assert events[0].metadata == {rasa_fixes.ERROR_METADATA_KEY: "action_server"}


def test_a_validation_called_inside_a_form_still_fails_so_the_form_never_goes_on_unvalidated() -> None:
    from rasa.shared.exceptions import RasaException

    with pytest.raises(RasaException):
        run_remote("validate_appointment_form", top_action="appointment_form")


# -- polite_store_failure -------------------------------------------------------------------------
class BrokenLockStore:
    """A lock store whose Redis is down."""

    def lock(self, conversation_id: str) -> AsyncIterator[None]:
        raise LockError("Redis is down")


def test_a_failing_conversation_store_gives_the_citizen_a_polite_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    agent = Agent()
    monkeypatch.setattr(agent, "is_ready", lambda: True)
    agent.lock_store = BrokenLockStore()  # a stand-in for Redis being down
    channel = CollectingOutputChannel()
    answer = asyncio.run(agent.handle_message(UserMessage("hallo", channel, "citizen")))
    assert answer is None
    assert [m["text"] for m in channel.messages] == [rasa_fixes.SORRY_STORE.format(phone=rasa_fixes._phone())]


# -- installation ---------------------------------------------------------------------------------
def test_installing_twice_wraps_nothing_twice() -> None:
    before = Agent.handle_message, RemoteAction.run, RemoteAction._validate_action_result
    rasa_fixes.install()
    assert (Agent.handle_message, RemoteAction.run, RemoteAction._validate_action_result) == before
    assert rasa_fixes.installed()


def test_the_entry_point_installs_the_fixes_before_rasa_runs() -> None:
    """``python -m bot.server`` hands its arguments to Rasa's command line with the fixes in place."""
    script = ("import sys, rasa.__main__\n"
              "rasa.__main__.main = lambda: print('fixed' if __import__('bot.rasa_fixes').rasa_fixes.installed()"
              " else 'stock', sys.argv)\n"
              "from bot import server\nserver.main(['run', '--port', '1'])\n")
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=True)
    assert run.stdout.strip().endswith("fixed ['rasa', 'run', '--port', '1']")
