#!/usr/bin/env python
"""Memory of the embedded conversation store over many conversations: Rasa's vs ours.

Saves ``--conversations`` (default 10,000) conversations of 10 turns each (user message with
intent, bot answer, slots set, like a booking conversation of the assistant) through the
tracker store's own ``save``, one after the other, a simulated clock moving ``--gap`` seconds per
conversation, and prints the Python heap in use (tracemalloc) every 1,000 conversations for Rasa
3.6's ``InMemoryTrackerStore`` and for ``bot.memory_store.ExpiringInMemoryTrackerStore`` with the
settings of ``endpoints.yml``. In-process, no server, no network.

    .venv/bin/python bench/memory.py [--conversations 10000] [--gap 2]
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tracemalloc
from pathlib import Path
from typing import Any, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rasa.core.tracker_store import InMemoryTrackerStore  # noqa: E402
from rasa.shared.core.domain import Domain  # noqa: E402
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered  # noqa: E402
from rasa.shared.core.trackers import DialogueStateTracker  # noqa: E402

from bot.memory_store import ExpiringInMemoryTrackerStore  # noqa: E402

TURNS = [("ik wil een afspraak maken voor een reispas", "book_appointment"), ("stadskantoor", "inform"),
         ("zo snel mogelijk", "inform"), ("de tweede", "choose_option"), ("Jan Peeters", "inform"),
         ("0470 12 34 56", "inform"), ("ja, bevestig", "affirm"), ("hoeveel kost een reispas?", "ask_price"),
         ("wanneer is het stadskantoor open?", "ask_opening_hours"), ("bedankt", "thank")]


def conversation(number: int, domain: Domain) -> DialogueStateTracker:
    tracker = DialogueStateTracker(f"whatsapp:+3247{number:07d}", domain.slots)
    for turn, (text, intent) in enumerate(TURNS):
        tracker.update(ActionExecuted("action_listen"))
        tracker.update(UserUttered(text, {"name": intent, "confidence": 0.97},
                                   parse_data={"intent": {"name": intent, "confidence": 0.97}, "entities": [],
                                               "text": text}))
        tracker.update(SlotSet("product", "reispas"))
        tracker.update(ActionExecuted(f"action_answer_{turn}"))
        tracker.update(BotUttered(f"Antwoord {turn}: " + "Dit is een antwoord van de assistent. " * 4,
                                  {"buttons": [{"title": "Ja", "payload": "/affirm"}]}))
    return tracker


def measure(store: Any, clock: Optional[List[float]], conversations: int, gap: float, domain: Domain) -> List[int]:
    figures: List[int] = []
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for number in range(1, conversations + 1):
        asyncio.run(store.save(conversation(number, domain)))
        if clock is not None:
            clock[0] += gap
        if number % 1000 == 0:
            gc.collect()
            figures.append(round((tracemalloc.get_traced_memory()[0] - base) / 2**20))
    tracemalloc.stop()
    return figures


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--gap", type=float, default=2.0, help="simulated seconds between new conversations")
    args = parser.parse_args(argv)
    domain = Domain.load(str(ROOT / "domain.yml"))
    clock = [0.0]
    stock = measure(InMemoryTrackerStore(domain), None, args.conversations, args.gap, domain)
    ours = measure(ExpiringInMemoryTrackerStore(domain, idle_seconds=7200, max_conversations=20_000,
                                                clock=lambda: clock[0]), clock, args.conversations, args.gap, domain)
    print(f"heap in use (MB) after every 1,000 conversations, one new conversation every {args.gap:g} s:")
    print("| conversations | " + " | ".join(str(1000 * (i + 1)) for i in range(len(stock))) + " |")
    print("| --- |" + " ---: |" * len(stock))
    print("| Rasa InMemoryTrackerStore | " + " | ".join(map(str, stock)) + " |")
    print("| ExpiringInMemoryTrackerStore (2 h idle, 20,000 max) | " + " | ".join(map(str, ours)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
