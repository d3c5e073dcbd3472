"""The test conversations in tests/stories/ pass end to end: real text in, the real action server runs.

Rasa Open Source 3.6 cannot do this itself: ``rasa test core`` replays the written events and only
compares the policies' predictions (the action server never runs, a custom action's slots and
follow-ups are taken from the story), ``--e2e`` adds intent parsing but still runs no action, and
``rasa test e2e`` exists only in Rasa Pro. So this module plays every conversation against the running
assistant (the ``assistant`` fixture: Rasa server + action server, as in production) over Rasa's REST
channel, each in a fresh conversation, and after every message reads the tracker
(``GET /conversations/<id>/tracker``) to compare that turn with the story:

- ``intent``: the intent the model parsed from the text (button payloads carry theirs);
- the ``action`` steps up to the next ``user`` step: exactly the actions that ran (``action_listen``
  left out), in order -- forms, custom actions on the action server, responses;
- ``active_loop``: the form active at the end of the turn is the last one the turn names;
- ``slot_was_set``: each named slot was set to that value in the turn.

The stories keep Rasa's test-story format (``rasa data validate`` and ``rasa test core --e2e --stories
tests/stories`` still read them). Their user text is fresh: tests/test_eval_sets.py fails when a turn is
a near-copy of a training example. A turn may say ``{reference}`` (and ``{reference_spaced}``, lower case
with a space, as people type it): the runner books an appointment in the assistant's database first (phone
BOOKED_PHONE, e-mail BOOKED_EMAIL), so looking up, moving and cancelling work on a real booking.
"""
from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

import pytest
import requests
import yaml

from bot.core import db
from bot.core.appointments import SqlAppointmentBook, load_book_config
from bot.core.catalogue import get_catalogue

ROOT = Path(__file__).resolve().parents[1]
STORIES = ROOT / "tests" / "stories"
BOOKED_PHONE = "0478 11 22 99"
BOOKED_EMAIL = "griet.vandamme@example.be"
ENTITY = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")
#: Conversations played at the same time (each is sequential in itself).
WORKERS = 4
TURN_TIMEOUT = 120


@dataclass
class Turn:
    text: str
    intent: Optional[str]
    actions: List[str] = field(default_factory=list)
    slots: Dict[str, Any] = field(default_factory=dict)
    loops: List[Optional[str]] = field(default_factory=list)


@dataclass
class Conversation:
    name: str
    source: str
    turns: List[Turn]


def load_conversations() -> List[Conversation]:
    conversations = []
    for path in sorted(STORIES.glob("*.yml")):
        for story in yaml.safe_load(path.read_text())["stories"]:
            turns: List[Turn] = []
            for step in story["steps"]:
                if "user" in step:
                    turns.append(Turn(ENTITY.sub(r"\1", step["user"]).strip(), step.get("intent")))
                elif "action" in step:
                    turns[-1].actions.append(step["action"])
                elif "active_loop" in step:
                    turns[-1].loops.append(step["active_loop"])
                elif "slot_was_set" in step:
                    for item in step["slot_was_set"]:
                        turns[-1].slots.update(item if isinstance(item, dict) else {item: None})
                else:
                    raise AssertionError(f"{path.name} / {story['story']}: step not supported here: {step}")
            conversations.append(Conversation(story["story"], path.name, turns))
    return conversations


def book_an_appointment(assistant) -> str:
    """A real booking in the running assistant's database; its reference."""
    engine = db.make_engine(assistant.env["GENTINFO_DATABASE_URL"])
    db.create_schema(engine)
    book = SqlAppointmentBook(engine, get_catalogue(), load_book_config())
    slot = book.free_slots("reispas", "stadskantoor")[0]
    booking = book.book(slot, "Griet Van Damme", phone=BOOKED_PHONE, email=BOOKED_EMAIL)
    engine.dispose()
    return booking.reference


def turn_events(assistant, sender: str) -> Tuple[Optional[str], List[Dict[str, Any]], Optional[str]]:
    """The parsed intent and events of the latest turn, and the form active after it."""
    response = requests.get(f"{assistant.url}/conversations/{quote(sender, safe=':')}/tracker", timeout=30)
    response.raise_for_status()
    events = response.json()["events"]
    last_user = max(i for i, event in enumerate(events) if event["event"] == "user")
    intent = ((events[last_user].get("parse_data") or {}).get("intent") or {}).get("name")
    loop = None
    for event in events:
        if event["event"] == "active_loop":
            loop = event.get("name")
    return intent, events[last_user + 1:], loop


def play(assistant, conversation: Conversation) -> List[str]:
    """Play one conversation; the differences from the story, empty when it passed."""
    sender = f"web:{uuid.uuid4()}"
    values: Dict[str, str] = {}
    if any("{reference" in turn.text for turn in conversation.turns):
        reference = book_an_appointment(assistant)
        values = {"reference": reference, "reference_spaced": reference.lower().replace("-", " ")}
    problems = []
    for number, turn in enumerate(conversation.turns, start=1):
        text = turn.text
        for key, value in values.items():  # not str.format: button payloads contain braces
            text = text.replace("{" + key + "}", value)
        assistant.rest(sender, text, timeout=TURN_TIMEOUT)
        intent, events, loop = turn_events(assistant, sender)
        actions = [e["name"] for e in events if e["event"] == "action" and e["name"] != "action_listen"]
        where = f"{conversation.source} / {conversation.name} / turn {number} {text!r}"
        if turn.intent and intent != turn.intent:
            problems.append(f"{where}: intent {intent}, story says {turn.intent}")
        if actions != turn.actions:
            problems.append(f"{where}: actions {actions}, story says {turn.actions}")
        if turn.loops and loop != turn.loops[-1]:
            problems.append(f"{where}: active form {loop}, story says {turn.loops[-1]}")
        set_here = {e["name"]: e.get("value") for e in events if e["event"] == "slot"}
        for slot, value in turn.slots.items():
            if slot not in set_here or set_here[slot] != value:
                problems.append(f"{where}: slot {slot} = {set_here.get(slot, '<not set>')!r}, story says {value!r}")
        if problems:
            break  # the rest of the conversation would only repeat the first difference
    return problems


def test_there_are_at_least_25_test_conversations() -> None:
    assert len(load_conversations()) >= 25


def test_the_story_reader_understands_every_step() -> None:
    conversations = load_conversations()
    assert all(c.turns and all(t.actions for t in c.turns) for c in conversations)
    assert any(t.loops for c in conversations for t in c.turns)


# ~250 turns plus starting the assistant; the shared 2-core machine may be busy training elsewhere
@pytest.mark.timeout(1800)
def test_all_test_conversations_pass_end_to_end(assistant, capsys) -> None:
    conversations = load_conversations()
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda conversation: play(assistant, conversation), conversations))
    failed = [problem for problems in results for problem in problems]
    with capsys.disabled():
        turns = sum(len(c.turns) for c in conversations)
        print(f"\nTest conversations end to end: {len(conversations) - sum(map(bool, results))}"
              f"/{len(conversations)} passed ({turns} user turns)")
    assert not failed, "\n".join(failed)
