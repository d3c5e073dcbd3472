"""The evaluation sets stay unseen: no held-out message is a near-copy of training data or of another set.

A held-out figure only means something when its messages were never trained on. An exact-duplicate
check is not enough: "identiteitskaartje" passes it while being a copy of "identiteitskaart". So every
message of the held-out sets is compared, with rapidfuzz's character similarity (Indel ratio on
lower-cased text without punctuation), with every training example, and the sets with each other:

- training: every intent example of ``bot/data/nlu/*.yml`` (read fresh, so files added later count) and
  every ``user:`` text of ``bot/data/stories`` and ``bot/data/rules``;
- held-out: ``tests/nlu_test.yml`` (the NLU test set), ``tests/nlu_dev.yml`` (the set for choices,
  bench/nlu_compare.py), ``tests/knowledge_test.yml`` (knowledge questions) and the ``user:`` turns of
  ``tests/stories/*.yml`` (end-to-end test conversations);
- the knowledge questions of four words or more are also compared with the synonyms and names of the
  knowledge topics and catalogue products, which the search index reads like training data (a short
  question such as "paspoort aanvrage" may honestly equal a product name, a sentence may not).

Button payloads ("/choose_option{...}") are not text a citizen types and are left out.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Tuple

import pytest
import yaml
from rapidfuzz import fuzz, process, utils

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bot" / "data"
TESTS = ROOT / "tests"
#: Two messages at or above this character similarity count as copies (issue 11 found 17 such pairs).
THRESHOLD = 85.0
#: Knowledge questions shorter than this may equal a topic's name or synonym (see module docstring).
MIN_WORDS_FOR_SYNONYM_CHECK = 4
ENTITY = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")

#: (source label, message)
Message = Tuple[str, str]


def _plain(example: str) -> str:
    """The text a person typed: entity markup ``[reispas](product)`` becomes ``reispas``."""
    return ENTITY.sub(r"\1", example).strip().strip("'\"")


def _nlu_examples(path: Path) -> Iterator[Message]:
    for item in (yaml.safe_load(path.read_text()) or {}).get("nlu") or []:
        if "intent" not in item:
            continue  # lookup tables, regexes and synonyms are not messages
        for line in (item.get("examples") or "").splitlines():
            line = line.strip()
            if line.startswith("- "):
                yield f"{path.relative_to(ROOT)} ({item['intent']})", _plain(line[2:])


def _user_turns(path: Path) -> Iterator[Message]:
    document = yaml.safe_load(path.read_text()) or {}
    for conversation in (document.get("stories") or []) + (document.get("rules") or []):
        for step in conversation.get("steps") or []:
            text = step.get("user") if isinstance(step, dict) else None
            if text and not text.strip().startswith("/"):
                name = conversation.get("story") or conversation.get("rule")
                yield f"{path.relative_to(ROOT)} ({name})", _plain(text)


def training_messages() -> List[Message]:
    found = [m for path in sorted((DATA / "nlu").glob("*.yml")) for m in _nlu_examples(path)]
    for folder in ("stories", "rules"):
        found += [m for path in sorted((DATA / folder).glob("*.yml")) for m in _user_turns(path)]
    return found


def knowledge_questions() -> List[Message]:
    path = TESTS / "knowledge_test.yml"
    return [(f"{path.relative_to(ROOT)}", item["text"]) for item in yaml.safe_load(path.read_text())]


def held_out_sets() -> Dict[str, List[Message]]:
    return {
        "nlu_test": list(_nlu_examples(TESTS / "nlu_test.yml")),
        "nlu_dev": list(_nlu_examples(TESTS / "nlu_dev.yml")),
        "knowledge_test": knowledge_questions(),
        "stories": [m for path in sorted((TESTS / "stories").glob("*.yml")) for m in _user_turns(path)],
    }


def knowledge_names() -> List[Message]:
    """Titles, names and synonyms the knowledge search indexes (catalogue products and topic files)."""
    found: List[Message] = []
    catalogue = yaml.safe_load((DATA / "content" / "catalogue.yml").read_text())
    for product in catalogue.get("products") or []:
        for name in [product.get("name"), *(product.get("synonyms") or [])]:
            if name:
                found.append((f"catalogue.yml ({product['id']})", str(name)))
    for path in sorted((DATA / "content" / "knowledge").glob("*.yml")):
        for topic in (yaml.safe_load(path.read_text()) or {}).get("topics") or []:
            for name in [topic.get("title"), *(topic.get("synonyms") or [])]:
                if name:
                    found.append((f"knowledge/{path.name} ({topic['id']})", str(name)))
    return found


def near_copies(queries: Iterable[Message], choices: List[Message]) -> List[str]:
    """Every query with its most similar choice when that is at or above THRESHOLD."""
    # emoji or punctuation only: nothing left to compare once lower-cased without punctuation
    queries = [q for q in queries if utils.default_process(q[1])]
    choices = [c for c in choices if utils.default_process(c[1])]
    if not queries or not choices:
        return []
    scores = process.cdist([q for _, q in queries], [c for _, c in choices], scorer=fuzz.ratio,
                           processor=utils.default_process)
    found = []
    for row, (source, text) in zip(scores, queries, strict=True):
        best = int(row.argmax())
        if row[best] >= THRESHOLD:
            found.append(f"{row[best]:.0f}%  {text!r} ({source})  ~  {choices[best][1]!r} ({choices[best][0]})")
    return found


def test_the_similarity_measure_catches_an_edited_copy() -> None:
    # the case from the audit: one suffix added to pass an exact-duplicate check
    assert near_copies([("test", "mijn identiteitskaartje is vervallen")],
                       [("train", "mijn identiteitskaart is vervallen")])
    assert not near_copies([("test", "mijn portemonnee met eID is gepikt")],
                           [("train", "mijn identiteitskaart is vervallen")])


def test_there_is_training_data_and_every_held_out_set_is_big_enough() -> None:
    sets = held_out_sets()
    assert len(training_messages()) > 500
    assert len(sets["nlu_test"]) >= 160
    assert len(sets["knowledge_test"]) >= 300
    assert len(sets["nlu_dev"]) >= 80


@pytest.mark.parametrize("name", ["nlu_test", "nlu_dev", "knowledge_test", "stories"])
def test_no_held_out_message_is_a_near_copy_of_a_training_example(name: str) -> None:
    copies = near_copies(held_out_sets()[name], training_messages())
    assert not copies, f"{len(copies)} near-copies of training examples:\n" + "\n".join(copies)


def test_no_knowledge_question_sentence_is_a_near_copy_of_a_topic_synonym() -> None:
    long_questions = [m for m in knowledge_questions() if len(m[1].split()) >= MIN_WORDS_FOR_SYNONYM_CHECK]
    copies = near_copies(long_questions, knowledge_names())
    assert not copies, f"{len(copies)} held-out questions copied into synonyms:\n" + "\n".join(copies)


def test_no_message_is_in_two_held_out_sets_or_twice_in_one() -> None:
    sets = held_out_sets()
    problems: List[str] = []
    names = sorted(sets)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            problems += [f"[{first} vs {second}] {line}" for line in near_copies(sets[first], sets[second])]
    for name, messages in sets.items():
        seen: Dict[str, List[str]] = defaultdict(list)
        for source, text in messages:
            if utils.default_process(text):  # emoji-only messages have no text to compare
                seen[utils.default_process(text)].append(source)
        if name != "stories":  # a conversation may repeat a short answer ("ja") in another conversation
            problems += [f"[{name}] {text!r} {len(where)} times" for text, where in seen.items() if len(where) > 1]
    assert not problems, "\n".join(problems)
