"""The city's knowledge: one YAML file per domain plus the catalogue's products, as one list of entries.

The content team writes topics in ``bot/data/content/knowledge/<domain>.yml`` (format:
docs/knowledge.md); the 25 Burgerzaken products stay in the catalogue and are read from there, so
nothing is written twice. :class:`Knowledge` is what the search index (bot/core/search.py) and the
answers read. ``python -m bot.core.knowledge validate`` checks every file and exits non-zero on a
broken one (the test suite runs it): unique ids, related ids that resolve, answers of at most three
sentences, https links, ``elsewhere`` for topics the city does not handle, domain equal to the file name.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import yaml
from pydantic import BaseModel, HttpUrl, ValidationError, root_validator, validator

from bot.core.catalogue import Catalogue, Product, get_catalogue, normalise

KNOWLEDGE_DIR = Path(__file__).resolve().parents[1] / "data" / "content" / "knowledge"

DOMAINS = (
    "burgerzaken", "afval", "mobiliteit", "wonen", "welzijn", "onderwijs", "vrije_tijd", "ondernemen",
    "belastingen", "inburgering", "werken", "vrijwilligerswerk", "huisdieren", "politiereglement",
    "bestuur", "meldingen", "elsewhere",
)
MAX_SENTENCES = 3
MAX_TITLE = 40
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
# a sentence ends at . ! ? followed by the end or a space and a capital/digit ("bv. een" is not an end)
_SENTENCE_END = re.compile(r"[.!?]+(?=\s*$|\s+[A-Z0-9À-Ý€\"'(])")
_LINK = re.compile(r"https?://|www\.", re.IGNORECASE)


class Kind(str, Enum):
    """What kind of question a topic answers; it decides how the answer ends."""

    info = "info"
    report = "report"  # something broken or dirty in public space: the meldingen channel
    complaint = "complaint"  # unhappy with a city service: the complaints route
    suggestion = "suggestion"  # an idea to simplify: the KAFKA form
    elsewhere = "elsewhere"  # not the city's job: who handles it


class TopicAppointment(str, Enum):
    required = "required"
    recommended = "recommended"
    not_needed = "not_needed"
    online = "online"


def sentence_count(text: str) -> int:
    """Sentences in a short answer ("€ 2,20 per rol. Bv. een rol" counts two; "bv. een" one)."""
    return max(1, len(_SENTENCE_END.findall(text.strip()))) if text.strip() else 0


class Topic(BaseModel):
    id: str
    title: str
    synonyms: List[str] = []
    answer: str
    price: Optional[str] = None
    who: Optional[str] = None
    bring: List[str] = []
    where: Optional[str] = None
    appointment: Optional[TopicAppointment] = None
    url: HttpUrl
    owner: str
    checked: date
    related: List[str] = []
    kind: Kind = Kind.info
    elsewhere: Optional[str] = None

    class Config:
        extra = "forbid"  # a misspelled key ("synonym:") is an error, not silently ignored

    @validator("id")
    def _snake_case(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"{value!r} is not snake_case")
        return value

    @validator("title")
    def _short_title(cls, value: str) -> str:
        if not value.strip() or len(value) > MAX_TITLE:
            raise ValueError(f"title must be 1-{MAX_TITLE} characters (button title)")
        return value

    @validator("answer")
    def _short_answer(cls, value: str) -> str:
        count = sentence_count(value)
        if count == 0:
            raise ValueError("answer is empty")
        if count > MAX_SENTENCES:
            raise ValueError(f"answer has {count} sentences (at most {MAX_SENTENCES})")
        if _LINK.search(value):
            raise ValueError("answer contains a link (put it in url)")
        return value

    @validator("url")
    def _https(cls, value: HttpUrl) -> HttpUrl:
        if value.scheme != "https":
            raise ValueError("url must be https")
        return value

    @root_validator(skip_on_failure=True)
    def _elsewhere_says_who(cls, values: dict) -> dict:
        if values["kind"] == Kind.elsewhere and not (values.get("elsewhere") or "").strip():
            raise ValueError("kind elsewhere needs 'elsewhere': who handles it")
        return values


class DomainFile(BaseModel):
    domain: str
    title: str
    topics: List[Topic]

    class Config:
        extra = "forbid"

    @validator("domain")
    def _known_domain(cls, value: str) -> str:
        if value not in DOMAINS:
            raise ValueError(f"unknown domain {value!r} (use {', '.join(DOMAINS)})")
        return value


@dataclass(frozen=True)
class Entry:
    """One searchable item: a knowledge topic or a catalogue product, with what the index reads."""

    id: str
    title: str
    domain: str
    synonyms: Tuple[str, ...]
    text: str  # the answer (topic) or summary (product)
    topic: Optional[Topic] = None
    product: Optional[Product] = None

    @property
    def kind(self) -> Kind:
        return self.topic.kind if self.topic else Kind.info


class KnowledgeError(ValueError):
    """A knowledge file is broken; the message names the file and the problem."""


@dataclass
class Knowledge:
    domains: Dict[str, DomainFile]
    catalogue: Catalogue
    entries: List[Entry] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.entries = [
            Entry(p.id, p.name, "burgerzaken", tuple(p.synonyms), p.summary, product=p) for p in self.catalogue.products
        ] + [
            Entry(t.id, t.title, d.domain, tuple(t.synonyms), t.answer, topic=t)
            for d in self.domains.values() for t in d.topics
        ]
        self._by_id = {entry.id: entry for entry in self.entries}

    def entry(self, entry_id: str) -> Optional[Entry]:
        return self._by_id.get(entry_id)

    def topics(self) -> List[Topic]:
        return [entry.topic for entry in self.entries if entry.topic]


def _check(knowledge: Knowledge) -> None:
    """Cross-file rules: unique ids (also against the catalogue), related ids resolve. Shared
    synonyms are only warnings: two topics may honestly share a word, the search then asks which."""
    seen: Dict[str, str] = {p.id: "catalogue" for p in knowledge.catalogue.products}
    for name, domain in knowledge.domains.items():
        for topic in domain.topics:
            if topic.id in seen:
                raise KnowledgeError(f"{name}.yml: topic id {topic.id!r} is also in {seen[topic.id]}")
            seen[topic.id] = f"{name}.yml"
    for name, domain in knowledge.domains.items():
        for topic in domain.topics:
            unknown = [r for r in topic.related if r not in seen]
            if unknown:
                raise KnowledgeError(f"{name}.yml: topic {topic.id}: unknown related ids {unknown}")
    owner: Dict[str, str] = {}
    for entry in knowledge.entries:
        for term in {normalise(t) for t in (entry.title, *entry.synonyms)}:
            if owner.setdefault(term, entry.id) != entry.id:
                knowledge.warnings.append(f"'{term}' is a term of both {owner[term]} and {entry.id}")


def load_file(path: Path) -> DomainFile:
    try:
        with path.open(encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
        domain = DomainFile.parse_obj(data)
    except (ValidationError, yaml.YAMLError, TypeError) as error:
        raise KnowledgeError(f"{path.name}: {error}") from error
    if domain.domain != path.stem:
        raise KnowledgeError(f"{path.name}: domain {domain.domain!r} must equal the file name {path.stem!r}")
    return domain


def load(directory: Path = KNOWLEDGE_DIR, catalogue: Optional[Catalogue] = None) -> Knowledge:
    """Every ``*.yml`` in ``directory`` plus the catalogue's products; raises :class:`KnowledgeError`."""
    files = sorted(directory.glob("*.yml")) if directory.is_dir() else []
    domains = {path.stem: load_file(path) for path in files}
    knowledge = Knowledge(domains, catalogue or get_catalogue())
    _check(knowledge)
    return knowledge


def fingerprint(directory: Path = KNOWLEDGE_DIR) -> Tuple[Tuple[str, float], ...]:
    """Names and modification times of the files: a change means the index must be rebuilt."""
    if not directory.is_dir():
        return ()
    return tuple((p.name, p.stat().st_mtime) for p in sorted(directory.glob("*.yml")))


@lru_cache(maxsize=1)
def get_knowledge() -> Knowledge:
    """The knowledge, read once per process (the search index is built from it)."""
    return load()


def reload() -> Knowledge:
    get_knowledge.cache_clear()
    return get_knowledge()


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] != "validate":
        print("usage: python -m bot.core.knowledge validate [DIRECTORY]", file=sys.stderr)
        return 2
    directory = Path(argv[1]) if len(argv) > 1 else KNOWLEDGE_DIR
    try:
        knowledge = load(directory)
    except (KnowledgeError, OSError) as error:
        print(f"knowledge in {directory} is broken:\n{error}", file=sys.stderr)
        return 1
    for warning in knowledge.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    topics = len(knowledge.topics())
    print(f"knowledge OK: {topics} topics in {len(knowledge.domains)} files + {len(knowledge.catalogue.products)} products")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
