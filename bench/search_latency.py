#!/usr/bin/env python
"""Latency of the long-tail search (bot/core/search.py) per message, at 500 topics.

Builds 500 topics synthetically from the real ones (the catalogue's products and every file in
``bot/data/content/knowledge/``): each copy gets a new id, a district or qualifier in its title and
synonyms, and synonyms borrowed from another topic, so the vocabulary and the matrices grow as real
content would. Then it times :meth:`SearchIndex.decide` on realistic questions (titles, synonyms,
typos, long messages, nonsense) and prints the build time and p50/p95/max per message.

    .venv/bin/python bench/search_latency.py [--topics 500] [--messages 2000] [--knowledge DIR]

Single-threaded, after one warm-up pass. Run it when the machine is otherwise idle (goal: p95 <= 5 ms).
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.knowledge import DomainFile, Knowledge, Topic, load
from bot.core.search import SearchIndex

DISTRICTS = ["Ledeberg", "Mariakerke", "Sint-Denijs-Westrem", "Zwijnaarde", "Muide", "Brugse Poort", "Dampoort",
             "Sluizeken", "Moscou", "Afsnee", "Desteldonk", "Mendonk", "Sint-Kruis-Winkel", "Kanaaldorpen"]
QUALIFIERS = ["aanvraag", "premie", "vergunning", "melding", "attest", "uitzondering", "tarief", "registratie",
              "inschrijving", "wachtlijst", "verlenging", "toelating", "subsidie", "begeleiding", "ophaling"]
NONSENSE = ["qwerty asdf", "wat is de hoofdstad van Peru", "hoe laat is het", "vertel een mop", "blabla"]


def typo(text: str, rng: random.Random) -> str:
    if len(text) < 6:
        return text
    i = rng.randrange(1, len(text) - 2)
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def synthetic(real: Knowledge, size: int, rng: random.Random) -> Knowledge:
    """``size`` entries: the real ones plus copies with new names and borrowed synonyms."""
    real_topics = real.topics()
    templates = real_topics or []
    extra = max(0, size - len(real.entries))
    pool = [s for e in real.entries for s in e.synonyms] or ["onderwerp"]
    copies: List[Topic] = []
    for number in range(extra):
        if templates:
            base = templates[number % len(templates)]
            data = base.dict()
        else:  # no knowledge files yet: build from the catalogue's products
            product = real.catalogue.products[number % len(real.catalogue.products)]
            data = {"id": product.id, "title": product.name[:30], "synonyms": product.synonyms,
                    "answer": product.summary.split(". ")[0] + ".", "url": product.url, "owner": "Stad Gent",
                    "checked": "2026-12-02"}
        district, qualifier = rng.choice(DISTRICTS), rng.choice(QUALIFIERS)
        data.update(
            id=f"{data['id']}_{number}",
            title=f"{data['title'][:22]} {qualifier}"[:40],
            synonyms=[f"{s} {district.lower()}" for s in data["synonyms"][:4]] + rng.sample(pool, min(3, len(pool))),
            related=[],
        )
        copies.append(Topic.parse_obj(data))
    domains: Dict[str, DomainFile] = dict(real.domains)
    domains["bench"] = DomainFile.construct(domain="bench", title="bench", topics=copies)
    return Knowledge(domains, real.catalogue)


def questions(knowledge: Knowledge, count: int, rng: random.Random) -> List[str]:
    entries = knowledge.entries
    made: List[str] = []
    while len(made) < count:
        entry = rng.choice(entries)
        phrase = rng.choice([entry.title, *entry.synonyms])
        kind = rng.random()
        if kind < 0.4:
            made.append(f"hoe zit het met {phrase.lower()}?")
        elif kind < 0.6:
            made.append(typo(phrase.lower(), rng))
        elif kind < 0.75:
            made.append(f"Goeiedag, ik heb een vraag. {entry.text} Maar wat moet ik nu precies doen voor "
                        f"{phrase.lower()} want ik begrijp het niet goed en ik wil het snel regelen, alvast bedankt")
        elif kind < 0.85:
            made.append(rng.choice(NONSENSE))
        else:
            other = rng.choice(entries)
            made.append(f"{phrase.lower()} en ook {other.title.lower()}")
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=500)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--knowledge", type=Path, default=None, help="knowledge directory (default: the shipped one)")
    args = parser.parse_args()
    rng = random.Random(42)
    knowledge = synthetic(load(args.knowledge) if args.knowledge else load(), args.topics, rng)
    started = time.perf_counter()
    index = SearchIndex(knowledge)
    build = time.perf_counter() - started
    texts = questions(knowledge, args.messages, rng)
    for text in texts[:200]:  # warm-up: lemma table, caches
        index.decide(text)
    timings = []
    kinds: Dict[str, int] = {}
    for text in texts:
        started = time.perf_counter()
        decision = index.decide(text)
        timings.append((time.perf_counter() - started) * 1000)
        kinds[decision.kind] = kinds.get(decision.kind, 0) + 1
    timings.sort()
    p50 = statistics.median(timings)
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(f"entries: {len(knowledge.entries)} ({len(knowledge.catalogue.products)} catalogue products)")
    print(f"index build: {build:.2f} s")
    print(f"messages: {len(timings)}  p50 {p50:.2f} ms  p95 {p95:.2f} ms  max {timings[-1]:.2f} ms")
    print("decisions: " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
    return 0 if p95 <= 5.0 else 1


if __name__ == "__main__":
    sys.exit(main())
