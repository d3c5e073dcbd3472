"""Held-out knowledge questions through the real assistant: right topic, no wrong form (issue 12, "Measure").

Every question of ``tests/knowledge_test.yml`` (written before the knowledge was tuned, never trained on;
tests/test_eval_sets.py keeps it unseen) goes through the running assistant over Rasa's REST channel, each
in a fresh conversation. The conversation's tracker (Rasa's HTTP API, ``GET /conversations/<id>/tracker``)
then tells what happened in that one turn:

- the answered topic: the last non-empty ``topic`` slot set in the turn (the knowledge answer action sets it
  to the topic or product id it answered), else the last ``product`` slot (the catalogue answer action);
  three topics offered as buttons is no answer (counted apart as "offered");
- the form started: the first ``active_loop`` event with a name.

Figures printed: top-1 accuracy per domain and overall (topic questions), the share of "no topic" items
(nonsense, other languages) that got no topic, the share of form requests that started the right form,
and the share of all messages that started a wrong form. Goals (issue 12): overall >= 0.90, every domain
>= 0.80 (the "no topic" and form groups included), wrong-form starts 0.

The figures are all this prints: the questions it misses stay out of the output so nobody tunes to them.
Set ``GENTINFO_EVAL_SHOW_MISSES=1`` to list them while debugging the harness itself.
"""
from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set
from urllib.parse import quote

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "tests" / "knowledge_test.yml"
CONTENT = ROOT / "bot" / "data" / "content"
FORMS = {"appointment_form", "appointment_manage_form", "kafka_form", "kafka_status_form"}
MIN_OVERALL = 0.90
MIN_PER_DOMAIN = 0.80
#: Parallel conversations: the assistant serves many citizens at once; 4 keeps the 2 shared cores usable.
WORKERS = 4
#: A turn that waits on a busy machine (training elsewhere) may take long; the figures do not measure speed.
TURN_TIMEOUT = 120


@dataclass(frozen=True)
class Item:
    text: str
    topics: Sequence[str]  # accepted ids, empty for "no topic"
    domain: str
    expect_form: Optional[str]


@dataclass(frozen=True)
class Outcome:
    topic: Optional[str]
    offered: Sequence[str]  # topic ids offered as buttons
    form: Optional[str]


def load_items() -> List[Item]:
    items = []
    for raw in yaml.safe_load(QUESTIONS.read_text()):
        topic = raw.get("topic")
        topics = [] if topic is None else [topic] if isinstance(topic, str) else list(topic)
        items.append(Item(raw["text"], topics, raw["domain"], raw.get("expect_form")))
    return items


def known_ids() -> Set[str]:
    """Every id the assistant can answer: catalogue products and knowledge topics (read as plain YAML)."""
    ids = {p["id"] for p in yaml.safe_load((CONTENT / "catalogue.yml").read_text())["products"]}
    for path in (CONTENT / "knowledge").glob("*.yml"):
        ids |= {t["id"] for t in (yaml.safe_load(path.read_text()) or {}).get("topics") or []}
    return ids


def offered_topics(messages: List[Dict[str, Any]]) -> List[str]:
    """Topic ids in the buttons (payloads like ``/ask_city{"topic": "gft"}``)."""
    found = []
    for message in messages:
        for button in message.get("buttons") or []:
            payload = button.get("payload") or ""
            if "{" in payload:
                try:
                    found.append(json.loads(payload[payload.index("{"):]).get("topic"))
                except ValueError:
                    continue
    return [topic for topic in found if topic]


def ask(assistant, text: str) -> Outcome:
    sender = f"web:{uuid.uuid4()}"
    messages = assistant.rest(sender, text, timeout=TURN_TIMEOUT)
    response = requests.get(f"{assistant.url}/conversations/{quote(sender, safe=':')}/tracker", timeout=30)
    response.raise_for_status()
    events = response.json()["events"]
    # a tracker without the message would silently count as "no topic, no form"
    assert any(e.get("event") == "user" for e in events), f"no tracker found for {sender}"
    slots: Dict[str, str] = {}
    form = None
    for event in events:
        if event.get("event") == "slot" and event.get("name") in ("topic", "product") and event.get("value"):
            slots[event["name"]] = event["value"]
        if event.get("event") == "active_loop" and event.get("name") and form is None:
            form = event["name"]
    return Outcome(slots.get("topic") or slots.get("product"), offered_topics(messages), form)


def judge(item: Item, outcome: Outcome) -> bool:
    if item.expect_form:
        return outcome.form == item.expect_form
    if outcome.form:
        return False
    if not item.topics:
        return outcome.topic is None
    return outcome.topic in item.topics


def wrong_form(item: Item, outcome: Outcome) -> bool:
    return outcome.form is not None and outcome.form != item.expect_form


def test_the_held_out_questions_are_many_and_cover_every_domain() -> None:
    items = load_items()
    by_domain: Dict[str, int] = defaultdict(int)
    for item in items:
        by_domain[item.domain] += 1
        assert item.expect_form is None or item.expect_form in FORMS, item.text
    topic_domains = {d: n for d, n in by_domain.items() if d not in ("none", "form")}
    assert sum(topic_domains.values()) >= 300 and len(topic_domains) >= 17
    assert min(topic_domains.values()) >= 15, topic_domains
    assert by_domain["none"] >= 20 and by_domain["form"] >= 20


def test_every_expected_topic_exists_in_the_knowledge() -> None:
    # a renamed or merged topic id must be renamed here too, or its questions would count as misses
    known = known_ids()
    missing = sorted({topic for item in load_items() for topic in item.topics if topic not in known})
    assert not missing, f"topic ids in tests/knowledge_test.yml that no knowledge file or product has: {missing}"


# 360 turns plus starting the assistant; on the shared 2-core machine under load this exceeds the suite's 600 s
@pytest.mark.timeout(2400)
def test_held_out_questions_get_the_right_topic_and_never_a_wrong_form(assistant, capsys) -> None:
    items = load_items()
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = list(pool.map(lambda item: ask(assistant, item.text), items))

    right: Dict[str, List[bool]] = defaultdict(list)
    offered = 0
    for item, outcome in zip(items, outcomes, strict=True):
        right[item.domain].append(judge(item, outcome))
        offered += bool(item.topics and outcome.topic is None and set(item.topics) & set(outcome.offered))
    topic_results = [ok for domain, oks in right.items() if domain not in ("none", "form") for ok in oks]
    overall = sum(topic_results) / len(topic_results)
    wrong_forms = sum(wrong_form(item, outcome) for item, outcome in zip(items, outcomes, strict=True))
    shares = {domain: sum(oks) / len(oks) for domain, oks in right.items()}

    with capsys.disabled():
        print(f"\nKnowledge held-out ({len(items)} messages, {len(topic_results)} topic questions):")
        for domain in sorted(shares, key=lambda d: (d in ("none", "form"), d)):
            print(f"  {domain:<18} {shares[domain]:.3f}  ({sum(right[domain])}/{len(right[domain])})")
        print(f"  top-1 overall      {overall:.3f}; right topic only among the buttons: {offered}")
        print(f"  wrong-form starts  {wrong_forms}/{len(items)} = {wrong_forms / len(items):.3f}")
        if os.environ.get("GENTINFO_EVAL_SHOW_MISSES"):
            for item, outcome in zip(items, outcomes, strict=True):
                if not judge(item, outcome):
                    print(f"  MISS [{item.domain}] {item.text!r}: want {list(item.topics) or item.expect_form}, "
                          f"got topic={outcome.topic} form={outcome.form} offered={list(outcome.offered)}")

    assert wrong_forms == 0, f"{wrong_forms} messages started a form they did not ask for"
    assert overall >= MIN_OVERALL, f"top-1 accuracy {overall:.3f} < {MIN_OVERALL}"
    low = {domain: round(share, 3) for domain, share in shares.items() if share < MIN_PER_DOMAIN}
    assert not low, f"domains below {MIN_PER_DOMAIN}: {low}"
