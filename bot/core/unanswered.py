"""Questions the assistant could not answer, scrubbed of personal data, grouped for the content team.

Stored are: the fallback, a low-confidence intent, a search without a clear winner and "that did not
help". Personal data is removed *before* the insert (:func:`scrub`): phone numbers (the phonenumbers
library, Belgian and international), e-mail addresses, rijksregisternummers and IBANs (both only
when their checksum is right, so ordinary numbers stay readable), any other run of 8+ digits, and
names after "ik ben", "mijn naam is", "ik heet". Rows are deleted after
``GENTINFO_UNANSWERED_RETENTION_DAYS`` (default 90).

:func:`clusters` groups similar questions (TF-IDF over character 3-5-grams, so typos and Flemish
spellings fall together, then average-linkage agglomerative clustering on cosine distance), largest
first. :func:`add_as_synonyms` and :func:`new_topic` turn a cluster into a *draft* in the content
store: nothing reaches citizens before an editor publishes it.

Table: ``unanswered_questions`` (bot/core/db.py).
"""
from __future__ import annotations

import inspect
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple

import phonenumbers
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.core.catalogue import normalise
from bot.core.content_checks import KNOWLEDGE_PREFIX, topic_refs
from bot.core.content_store import ContentError, ContentStore
from bot.core.db import unanswered_questions

logger = logging.getLogger(__name__)

RETENTION_ENV = "GENTINFO_UNANSWERED_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 90
REASONS = ("fallback", "low_confidence", "no_clear_winner", "not_helpful")
MAX_TEXT_CHARS = 500
#: The newest open questions that are clustered (the distance matrix is quadratic).
MAX_CLUSTERED = 2000
#: Cosine distance under which two groups merge (tuned on tests/test_unanswered.py's examples).
DISTANCE_THRESHOLD = 0.8
#: Knowledge domains a new topic may go to (the schema's list; the knowledge module has the same).
DOMAINS = ("burgerzaken", "afval", "mobiliteit", "wonen", "welzijn", "onderwijs", "vrije_tijd", "ondernemen",
           "belastingen", "inburgering", "werken", "vrijwilligerswerk", "huisdieren", "politiereglement",
           "bestuur", "meldingen", "elsewhere")

# --- scrubbing -----------------------------------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_RRN = re.compile(r"(?<![\d.])\d{2}[. ]?\d{2}[. ]?\d{2}[-. ]?\d{3}[-. ]?\d{2}(?![\d])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}", re.IGNORECASE)
_DIGITS = re.compile(r"\d(?:[ ./-]?\d){7,}")
_NAME_WORD = r"[A-Za-zÀ-ÿ][\w'’-]*"
_NAMED = re.compile(rf"(?i:\b(?:mijn naam is|ik heet|mijn naam:|naam:))\s+({_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})")
_CAPITAL_WORD = r"[A-ZÀ-Þ][\w'’-]*"
_IK_BEN = re.compile(
    rf"(?i:\bik ben)\s+({_CAPITAL_WORD}(?:\s+(?:(?i:van|de|der|den|ter|le|la)\b|{_CAPITAL_WORD})){{0,3}})"
)
#: Words that end a name taken after "mijn naam is" ("mijn naam is jan en ik …").
_NOT_NAME = frozenset(["en", "ik", "wil", "heb", "woon", "uit", "maar", "want", "om", "of", "ben", "is", "dus", "graag"])


def _rrn_valid(digits: str) -> bool:
    base, check = int(digits[:9]), int(digits[9:])
    return check in (97 - base % 97, 97 - (2_000_000_000 + base) % 97)


def _iban_valid(compact: str) -> bool:
    if len(compact) < 15 or len(compact) > 34 or not compact[2:4].isdigit():
        return False
    moved = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in moved))
    except ValueError:
        return False
    return number % 97 == 1


def _replace_rrn(text: str) -> str:
    def repl(match: re.Match) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return "[rijksregisternummer]" if _rrn_valid(digits) else match.group(0)

    return _RRN.sub(repl, text)


def _replace_iban(text: str) -> str:
    def repl(match: re.Match) -> str:
        raw = match.group(0)
        # the pattern may run into the next word ("BE68 5390 0754 7034 en"): try shorter ends
        positions = [i for i, ch in enumerate(raw) if ch != " "]
        for end in range(len(positions), 14, -1):
            compact = "".join(raw[i] for i in positions[:end]).upper()
            if _iban_valid(compact):
                return "[iban]" + raw[positions[end - 1] + 1:]
        return raw

    return _IBAN.sub(repl, text)


def _replace_phones(text: str) -> str:
    spans = [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(text, "BE")]
    for start, end in reversed(spans):
        text = text[:start] + "[telefoonnummer]" + text[end:]
    return text


def _replace_names(text: str) -> str:
    def named(match: re.Match) -> str:
        words = match.group(1).split()
        kept: List[str] = []
        for word in words:
            if word.lower() in _NOT_NAME:
                break
            kept.append(word)
        rest = match.group(1)[len(" ".join(kept)):] if kept else match.group(1)
        prefix = match.group(0)[: match.start(1) - match.start(0)]
        return f"{prefix}[naam]{rest}" if kept else match.group(0)

    text = _NAMED.sub(named, text)
    return _IK_BEN.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + "[naam]", text)


def scrub(text: str) -> str:
    """The question without personal data, whitespace tidied, at most 500 characters."""
    text = " ".join(text.split())
    text = _EMAIL.sub("[e-mail]", text)
    text = _replace_iban(text)
    text = _replace_rrn(text)
    text = _replace_phones(text)
    text = _DIGITS.sub("[nummer]", text)
    text = _replace_names(text)
    return text[:MAX_TEXT_CHARS]


# --- storing ---------------------------------------------------------------------------------------


def retention_days() -> int:
    raw = os.environ.get(RETENTION_ENV, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_RETENTION_DAYS


def _now() -> datetime:
    return datetime.now(timezone.utc)


def record(engine: Engine, text: str, *, channel: str, reason: str, topic_guess: Optional[str] = None,
           now: Optional[datetime] = None) -> Optional[int]:
    """Store one unanswered question (scrubbed first); None for an empty one or a button payload."""
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {REASONS}")
    cleaned = scrub(text or "")
    if not cleaned or cleaned.startswith("/"):
        return None
    with engine.begin() as connection:
        result = connection.execute(insert(unanswered_questions).values(
            asked_at=now or _now(), text=cleaned, channel=(channel or "")[:20], reason=reason,
            topic_guess=(topic_guess or None) and topic_guess[:80], status="open"))
    return int(result.inserted_primary_key[0])


def note(text: str, *, channel: str, reason: str, topic_guess: Optional[str] = None) -> None:
    """:func:`record` on the process's database, for the actions: a failure is logged (without the
    text), never raised, so the citizen still gets the fallback answer."""
    from bot.core.insights import default_engine

    try:
        record(default_engine(), text, channel=channel, reason=reason, topic_guess=topic_guess)
    except (SQLAlchemyError, OSError) as error:
        logger.warning("unanswered: question not stored (%s)", type(error).__name__)


def purge(engine: Engine, now: Optional[datetime] = None, days: Optional[int] = None) -> int:
    """Delete questions older than the retention period; returns how many."""
    cutoff = (now or _now()) - timedelta(days=days or retention_days())
    with engine.begin() as connection:
        return int(connection.execute(delete(unanswered_questions).where(unanswered_questions.c.asked_at < cutoff)).rowcount)


def set_status(engine: Engine, question_ids: Sequence[int], status: str, *, user: str,
               topic: Optional[str] = None) -> int:
    if status not in ("open", "used", "dismissed"):
        raise ValueError(status)
    ids = [int(i) for i in question_ids][:MAX_CLUSTERED]
    if not ids:
        return 0
    with engine.begin() as connection:
        return int(connection.execute(update(unanswered_questions).where(unanswered_questions.c.id.in_(ids))
                                      .values(status=status, resolved_topic=topic, resolved_by=user)).rowcount)


def questions(engine: Engine, ids: Sequence[int]) -> List[Dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(unanswered_questions).where(unanswered_questions.c.id.in_([int(i) for i in ids]))
                                  .order_by(unanswered_questions.c.id)).all()
    return [dict(row._mapping) for row in rows]


# --- clustering ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    size: int
    phrasings: Tuple[Tuple[str, int], ...]  # distinct texts with how often they were asked, most first
    question_ids: Tuple[int, ...]
    reasons: Tuple[Tuple[str, int], ...]
    topic_guess: Optional[str]
    last_asked: datetime

    def as_dict(self) -> Dict[str, Any]:
        return {"size": self.size, "phrasings": [{"text": t, "count": c} for t, c in self.phrasings],
                "question_ids": list(self.question_ids), "reasons": dict(self.reasons),
                "topic_guess": self.topic_guess, "last_asked": self.last_asked.isoformat()}


def _labels(texts: List[str], threshold: float) -> List[int]:
    if len(texts) < 2:
        return [0] * len(texts)
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_distances

    matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True).fit_transform(texts)
    distances = cosine_distances(matrix)
    # scikit-learn renamed ``affinity`` to ``metric`` in 1.2; the lock pins 1.1
    name = "metric" if "metric" in inspect.signature(AgglomerativeClustering).parameters else "affinity"
    model = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, linkage="average",
                                    **{name: "precomputed"})
    return [int(label) for label in model.fit_predict(distances)]


def clusters(engine: Engine, *, now: Optional[datetime] = None, threshold: float = DISTANCE_THRESHOLD,
             limit: int = MAX_CLUSTERED) -> List[Cluster]:
    """Open questions of the retention period in groups of similar ones, largest first."""
    cutoff = (now or _now()) - timedelta(days=retention_days())
    with engine.connect() as connection:
        rows = connection.execute(
            select(unanswered_questions).where(unanswered_questions.c.status == "open",
                                               unanswered_questions.c.asked_at >= cutoff)
            .order_by(unanswered_questions.c.id.desc()).limit(limit)).all()
    groups: Dict[str, List[Any]] = {}
    for row in rows:  # identical questions (after normalising) are one point, weighted by count
        groups.setdefault(normalise(row.text) or row.text, []).append(row)
    keys = list(groups)
    labels = _labels(keys, threshold)
    members: Dict[int, List[Any]] = {}
    for key, label in zip(keys, labels, strict=True):
        members.setdefault(label, []).extend(groups[key])
    result = []
    for rows_of in members.values():
        texts = Counter(row.text for row in rows_of)
        guesses = Counter(row.topic_guess for row in rows_of if row.topic_guess)
        result.append(Cluster(
            size=len(rows_of),
            phrasings=tuple(sorted(texts.items(), key=lambda item: (-item[1], item[0]))),
            question_ids=tuple(sorted(row.id for row in rows_of)),
            reasons=tuple(Counter(row.reason for row in rows_of).most_common()),
            topic_guess=guesses.most_common(1)[0][0] if guesses else None,
            last_asked=max(row.asked_at for row in rows_of),
        ))
    return sorted(result, key=lambda c: (-c.size, -c.last_asked.timestamp() if c.last_asked.tzinfo else 0))


# --- from a cluster to content ---------------------------------------------------------------------


def _usable(phrasings: Sequence[str]) -> List[str]:
    """Phrasings fit to be synonyms: no scrubbed placeholders, not too long, each once."""
    seen, out = set(), []
    for text in phrasings:
        text = text.strip().rstrip("?!. ")
        key = normalise(text)
        if key and "[" not in text and len(text) <= 120 and key not in seen:
            seen.add(key)
            out.append(text)
    return out


def add_as_synonyms(engine: Engine, store: ContentStore, question_ids: Sequence[int], topic_id: str,
                    user: str) -> Tuple[str, List[str], List[Any]]:
    """Add the questions' phrasings to a topic's synonyms in a draft: (document, added, problems)."""
    docs = store.working_set()
    ref = topic_refs(docs).get(topic_id)
    if ref is None:
        raise ContentError(f"Onderwerp {topic_id!r} bestaat niet.")
    document = docs[ref.document]
    item = document[ref.list_key][ref.index]
    known = {normalise(term) for term in [item.get("id", ""), item.get("name", ""), item.get("title", ""),
                                          *item.get("synonyms", [])]}
    added = [text for text in _usable([q["text"] for q in questions(engine, question_ids)])
             if normalise(text) not in known]
    item["synonyms"] = [*item.get("synonyms", []), *added]
    problems = store.save_draft(ref.document, document, user)
    set_status(engine, question_ids, "used", user=user, topic=topic_id)
    return ref.document, added, problems


def _slug(text: str) -> str:
    words = normalise(text).split()
    return "_".join(words[:5])[:60].strip("_") or "nieuw_onderwerp"


def new_topic(engine: Engine, store: ContentStore, question_ids: Sequence[int], domain: str, user: str,
              today: Optional[date] = None) -> Tuple[str, str, List[Any]]:
    """Start a topic from the questions in ``knowledge/<domain>`` (a draft, the answer still empty):
    (document, topic id, problems). The editor writes the answer before it can be published."""
    if domain not in DOMAINS:
        raise ContentError(f"Onbekend domein {domain!r}.")
    phrasings = _usable([q["text"] for q in questions(engine, question_ids)])
    if not phrasings:
        raise ContentError("Deze vragen bevatten geen bruikbare zinnen.")
    docs = store.working_set()
    name = f"{KNOWLEDGE_PREFIX}{domain}"
    document = docs.get(name) or {"domain": domain, "title": domain.replace("_", " ").capitalize(), "topics": []}
    taken = set(topic_refs(docs))
    base = topic_id = _slug(phrasings[0])
    number = 2
    while topic_id in taken:
        topic_id, number = f"{base}_{number}", number + 1
    title = phrasings[0][:40].strip()
    document.setdefault("topics", []).append({
        "id": topic_id, "title": title[:1].upper() + title[1:], "synonyms": phrasings, "answer": "",
        "url": "", "owner": "", "checked": (today or date.today()).isoformat(),
    })
    problems = store.save_draft(name, document, user)
    set_status(engine, question_ids, "used", user=user, topic=topic_id)
    return name, topic_id, problems
