"""Search for the long tail: which knowledge topic or catalogue product a free question is about.

Used when the NLU is unsure (``nlu_fallback``), for general city questions (``ask_city``) and when a
product question names no catalogue product. The index reads the content files, so a new topic or
synonym works after :func:`reload` (or automatically when a file changes), without retraining.

How it scores (all text normalised: lower case, no accents; Dutch lemmas from spaCy's lookup table;
query words that are not in the index vocabulary are corrected to the nearest one with rapidfuzz,
so "identitijtskaart" reads as "identiteitskaart"):

- *phrase*: the best cosine between the question and one title or synonym of the entry, from word
  TF-IDF plus character 3-5-gram TF-IDF (scikit-learn), so compounds and spelling variants match;
- *document*: word TF-IDF cosine between the question and all the entry's text (title, synonyms,
  answer), so the words around the name count ("gestolen", "portefeuille").

:meth:`SearchIndex.decide` turns the ranking into one of four decisions: one ``answer`` when one entry
clearly wins, ``choose`` (the three best as buttons) when several are close, ``mixed`` when the
question names two different things (ask which), ``none`` when nothing plausible matches (nonsense,
"wat is de hoofdstad van Peru"): a question word must really occur in the winner's text.
"""
from __future__ import annotations

import gzip
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np
from rapidfuzz import fuzz, process
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.core import knowledge as knowledge_module
from bot.core.catalogue import normalise
from bot.core.knowledge import Entry, Knowledge

#: Words that say nothing about *which* topic: function words, question words, aspects (price,
#: place, documents are answered for every topic) and the city itself.
_STOPWORD_TEXT = """
a aan al alle alles als alstublieft aub ben bent bij da daar dan dat de der des deze die dit doe doen
door dus e een eens en er ge gij gaan graag had heb hebben hebt het hier hij hoe hoeveel hun ik in is ja
je jij jullie k kan kun kunnen kunt kunde krijg krijgen maar me meer met mij mijn moet moeten mogen mag
na naar nee niet nog nu of om ons onze ook op over te tot toch u uw van veel voor waar wanneer wat
we wel welke wie wij wil willen zal ze zelf zich zijn zo zou zouden goeiedag dag hallo hoi beste bedankt
dank merci help helpen vraag vragen weten info informatie iets iemand eigenlijk even gewoon
kost kosten prijs betaal meebrengen nodig stad gent gentse aanvragen aanvraag doen
nieuw nieuwe vernieuwen maken regelen
worden wordt gaan gaat komen liggen ligt zitten zit staan staat zeggen vinden zien niks niets echt heel zeer erg
precies juist misschien allemaal snel laat vandaag morgen gisteren er hoop soms altijd nooit af raken
vorig vorige volgend volgende erin weet
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
#: Characters of a word before typo correction is tried (short words are too ambiguous).
MIN_FUZZY_LEN = 6
FUZZY_CUTOFF = 85  # words of 8 characters or more
SHORT_FUZZY_CUTOFF = 90  # 6-7 characters: one typo only

# Decision thresholds, tuned on the examples in tests/test_search.py (never on a held-out set).
MIN_SCORE = 0.20  # below: nothing plausible
MARGIN = 0.08  # best minus second at least this: one clear answer
LONG_QUESTION = 20  # words; longer messages are answered on their main topic
LONG_MARGIN = 0.03
PLAUSIBLE_PHRASE = 0.5  # a title or synonym matched this well is plausible on its own
COVERAGE = 0.5  # else this share of the question's word weight must be in the entry's text
PHRASE_COVERAGE = 0.4  # ... and with a well-matched name, this share
LONG_COVERAGE = 0.15
MIXED_PHRASE = 0.35  # each of two topics must match one of its own names this well to ask "which?"
PHRASE_WEIGHT = 0.6
WORD_WEIGHT = 0.65  # inside a phrase score: words vs character n-grams
#: Two subjects are joined: "verhuizen en een reispas", "terras, ook huisvuil".
_JOINED = re.compile(r"\b(en|ook|plus|daarnaast|tevens|of)\b|,")


@lru_cache(maxsize=1)
def _lemmas() -> Dict[str, str]:
    """spaCy's Dutch lookup lemmatizer table (the same table the NLU pipeline uses)."""
    path = resources.files("spacy_lookups_data") / "data" / "nl_lemma_lookup.json.gz"
    with gzip.open(str(path), "rt", encoding="utf-8") as handle:
        table: Dict[str, str] = json.load(handle)
    return {normalise(k): normalise(v) for k, v in table.items() if k.isalpha()}


def _pairs(text: str) -> List[Tuple[str, str]]:
    """(word, lemma) for the content words of a text: normalised, stopwords dropped."""
    table = _lemmas()
    out = []
    for word in normalise(text).split():
        if word in STOPWORDS or len(word) < 2:
            continue
        lemma = table.get(word, word)
        if lemma not in STOPWORDS:
            out.append((word, lemma))
    return out


def words(text: str) -> List[str]:
    """Content words of a text: normalised, lemmatised, stopwords dropped."""
    return [lemma for _, lemma in _pairs(text)]


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float
    phrase: float  # the best title/synonym match alone
    covered: FrozenSet[str]  # question words that occur in the best phrase
    coverage: float = 1.0  # share of the question's word weight (idf) that occurs in the entry's text


@dataclass
class Decision:
    """``answer`` (hits[0]), ``choose`` (up to 3 hits), ``mixed`` (2 hits) or ``none``."""

    kind: str
    hits: List[Hit] = field(default_factory=list)

    @property
    def best(self) -> Optional[Hit]:
        return self.hits[0] if self.hits else None


def _identity(tokens: List[str]) -> List[str]:
    return tokens


def _query_vector(vectorizer: TfidfVectorizer, terms: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """The question's TF-IDF vector as (term columns, weights), the way the vectorizer weighs
    documents (sublinear tf, idf, l2 norm); unknown terms are dropped."""
    counts = Counter(t for t in terms if t in vectorizer.vocabulary_)
    if not counts:
        return np.empty(0, dtype=int), np.empty(0)
    columns = np.fromiter((vectorizer.vocabulary_[t] for t in counts), dtype=int, count=len(counts))
    weights = (1 + np.log(np.fromiter(counts.values(), dtype=float, count=len(counts)))) * vectorizer.idf_[columns]
    return columns, weights / np.linalg.norm(weights)


def _scores(term_rows: csr_matrix, columns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Cosine of the question with every row of the (transposed) matrix."""
    if not columns.size:
        return np.zeros(term_rows.shape[1])
    return np.asarray(term_rows[columns].T @ weights).ravel()


class SearchIndex:
    """TF-IDF matrices over every entry's phrases and text; immutable once built."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.entries: List[Entry] = list(knowledge.entries)
        phrases: List[List[str]] = []
        owners: List[int] = []
        for number, entry in enumerate(self.entries):
            for phrase in dict.fromkeys([entry.title, entry.id.replace("_", " "), *entry.synonyms]):
                tokens = words(phrase)
                if tokens:
                    phrases.append(tokens)
                    owners.append(number)
        documents = [words(" ".join([e.title, *e.synonyms, e.text])) for e in self.entries]
        self._phrase_tokens = [frozenset(p) for p in phrases]
        self._owners = np.array(owners)
        # phrases are grouped by entry in order: reduceat takes the best phrase of each entry
        self._starts = np.searchsorted(self._owners, np.arange(len(self.entries)))
        self._words = TfidfVectorizer(analyzer=_identity, sublinear_tf=True).fit(documents + phrases)
        self._chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
        # stored transposed (term x phrase): a question has few terms, so its scores are the sum of
        # a few rows; cheaper than the vectorizer's own transform for a single short text
        self._phrase_words = self._words.transform(phrases).T.tocsr()
        self._phrase_chars = self._chars.fit_transform([" ".join(p) for p in phrases]).T.tocsr()
        self._documents = self._words.transform(documents).T.tocsr()
        self._char_analyzer = self._chars.build_analyzer()
        self._doc_vocab = [frozenset(d) for d in documents]
        self._known = frozenset(self._words.vocabulary_)
        # a word the index does not know weighs like a fairly rare word: it may be filler or the
        # real subject of a question the city cannot answer
        self._unknown_idf = float(np.percentile(self._words.idf_, 75))
        # every written form in the index with its lemma: typos are matched against what people
        # write ("gestoolen" ~ "gestolen" -> "stelen"), not against lemmas
        forms: Dict[str, str] = {}
        for entry in self.entries:
            for word, lemma in _pairs(" ".join([entry.title, *entry.synonyms, entry.text])):
                forms.setdefault(word, lemma)
                forms.setdefault(lemma, lemma)
        self._forms = forms
        self._form_list = sorted(forms)

    def tokens(self, text: str) -> List[str]:
        """The question's lemmas, with unknown words corrected to the nearest written form in the
        index (typos, Flemish spelling): "identitijtskaart" -> "identiteitskaart"."""
        out = []
        for word, lemma in _pairs(text):
            if lemma in self._known or len(word) < MIN_FUZZY_LEN or word.isdigit():
                out.append(lemma)
                continue
            cutoff = FUZZY_CUTOFF if len(word) >= 8 else SHORT_FUZZY_CUTOFF
            match = process.extractOne(word, self._form_list, scorer=fuzz.ratio, score_cutoff=cutoff)
            out.append(self._forms[match[0]] if match else lemma)
        return out

    def rank(self, text: str, limit: int = 5) -> Tuple[List[str], List[Hit]]:
        """The question's content words and the best entries, best first (only entries with a shared word)."""
        tokens = self.tokens(text)
        if not tokens or not self._owners.size:
            return tokens, []
        word_terms, word_weights = _query_vector(self._words, tokens)
        char_terms, char_weights = _query_vector(self._chars, self._char_analyzer(" ".join(tokens)))
        phrase = WORD_WEIGHT * _scores(self._phrase_words, word_terms, word_weights)
        phrase += (1 - WORD_WEIGHT) * _scores(self._phrase_chars, char_terms, char_weights)
        best_phrase = np.maximum.reduceat(phrase, self._starts)
        document = _scores(self._documents, word_terms, word_weights)
        scores = PHRASE_WEIGHT * best_phrase + (1 - PHRASE_WEIGHT) * document
        query = frozenset(tokens)
        weight = {t: self._idf(t) for t in query}
        total = sum(weight.values()) or 1.0
        hits: List[Hit] = []
        for number in np.argsort(-scores):
            if len(hits) == limit or scores[number] <= 0:
                break
            # plausibility: a question word must really be in the entry's text (not only n-grams)
            if not query & self._doc_vocab[number]:
                continue
            start = self._starts[number]
            end = self._starts[number + 1] if number + 1 < len(self._starts) else len(phrase)
            top = start + int(np.argmax(phrase[start:end]))
            shared = query & self._doc_vocab[number]
            hits.append(Hit(self.entries[number], float(scores[number]), float(best_phrase[number]),
                            query & self._phrase_tokens[top], sum(weight[t] for t in shared) / total))
        return tokens, hits

    def _idf(self, token: str) -> float:
        column = self._words.vocabulary_.get(token)
        return float(self._words.idf_[column]) if column is not None else self._unknown_idf

    def decide(self, text: str) -> Decision:
        tokens, ranked = self.rank(text)
        long_question = len(text.split()) > LONG_QUESTION
        ranked = [hit for hit in ranked if hit.score >= MIN_SCORE]
        hits = [hit for hit in ranked if self._plausible(hit, long_question)]
        if not hits:
            return Decision("none")
        best = hits[0]
        if not long_question and _JOINED.search(normalise(text)):
            # the second subject only needs its own words: most of the question is about the first
            other = self._second_subject(best, [hit for hit in ranked if hit is not best])
            if other is not None:
                return Decision("mixed", [best, other])
        second = hits[1].score if len(hits) > 1 else 0.0
        if best.score - second >= (LONG_MARGIN if long_question else MARGIN):
            return Decision("answer", [best])
        return Decision("choose", hits[:3])

    @staticmethod
    def _plausible(hit: Hit, long_question: bool) -> bool:
        """Most of the question's weight is in the entry's text, or a name matched well and a fair
        share is ("wie wint de ronde van vlaanderen" shares one word with a topic: not plausible)."""
        if long_question:
            return hit.coverage >= LONG_COVERAGE
        return hit.coverage >= (PHRASE_COVERAGE if hit.phrase >= PLAUSIBLE_PHRASE else COVERAGE)

    def _second_subject(self, best: Hit, others: Sequence[Hit]) -> Optional[Hit]:
        """A close runner-up named in full by other words of the question, words the winner's own
        text does not use: the question is about two things ("verhuizen en een nieuwe reispas").
        "Portefeuille gestolen met mijn id kaart" stays one subject: the theft topic talks about cards."""
        if best.phrase < MIXED_PHRASE or not best.covered:
            return None
        best_vocabulary = self._doc_vocab[self.entries.index(best.entry)]
        for hit in others[:3]:
            if (hit.phrase >= MIXED_PHRASE and hit.covered and hit.score >= best.score * 0.6
                    and not hit.covered & best.covered and not hit.covered & best_vocabulary
                    and hit.covered == self._best_phrase_tokens(hit)):
                return hit
        return None

    def _best_phrase_tokens(self, hit: Hit) -> FrozenSet[str]:
        """The words of the hit's phrase that the question matched, when all of them are there."""
        number = self.entries.index(hit.entry)
        candidates = [p for p, owner in zip(self._phrase_tokens, self._owners, strict=True) if owner == number and p <= hit.covered]
        return max(candidates, key=len, default=frozenset())


class _State:
    """The current index and the file stamp it was built from."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.index: Optional[SearchIndex] = None
        self.stamp: Tuple[Tuple[str, float], ...] = ()


_state = _State()


def get_index() -> SearchIndex:
    """The index for the current files; rebuilt (about a second) when a knowledge file changed.
    Reads ``knowledge.KNOWLEDGE_DIR`` at call time (tests point it at a copy)."""
    directory = knowledge_module.KNOWLEDGE_DIR
    stamp = knowledge_module.fingerprint(directory)
    with _state.lock:
        if _state.index is None or _state.stamp != stamp:
            _state.index = SearchIndex(knowledge_module.load(directory))
            _state.stamp = stamp
        return _state.index


def reload() -> SearchIndex:
    """Read the knowledge files again and rebuild the index (after the content team edited them)."""
    with _state.lock:
        _state.index = None
    return get_index()


def search(text: str) -> Decision:
    return get_index().decide(text)
