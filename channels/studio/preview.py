"""Ask the assistant a question against the draft, before anything is published.

With the knowledge search (bot/core/search.py, bot/core/knowledge_answers.py) the draft's topics and
products are indexed exactly as the assistant indexes the published ones, and the answer is built by
the same answer module. Without it (before the knowledge branch is merged) the catalogue's own term
matching answers product and office questions, as the product action does. The index of a draft is
kept until the draft changes (building it takes about a second).
"""
from __future__ import annotations

import hashlib
import importlib
import json
import re
import threading
from datetime import datetime
from types import ModuleType
from typing import Any, Dict, List, Mapping, Optional, Tuple
from zoneinfo import ZoneInfo

from bot.core import answers, content_checks
from bot.core.catalogue import Catalogue

CITY_TZ = ZoneInfo("Europe/Brussels")
_ASPECTS = (
    ("price", re.compile(r"\b(kost|kosten|prijs|betalen|hoeveel|duur|gratis)\b")),
    ("documents", re.compile(r"\b(meebrengen|meenemen|mee brengen|mee nemen|documenten|papieren)\b")),
    ("appointment", re.compile(r"\bafspraak\b")),
    ("where", re.compile(r"\b(waar|adres|loket)\b")),
)
_HOURS = re.compile(r"\b(open|openingsuren|uren|gesloten|sluit)\b")


def aspect_of(text: str) -> str:
    lowered = text.lower()
    return next((aspect for aspect, pattern in _ASPECTS if pattern.search(lowered)), "info")


def _optional(name: str) -> Optional[ModuleType]:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        return None


class _IndexCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key = ""
        self.value: Optional[Tuple[Any, Any]] = None


_cache = _IndexCache()


def _index(docs: Mapping[str, Any], catalogue: Catalogue, search: ModuleType) -> Tuple[Any, Any]:
    key = hashlib.sha256(json.dumps(docs, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
    with _cache.lock:
        if _cache.key != key or _cache.value is None:
            knowledge = content_checks.build_knowledge(docs, catalogue)
            _cache.value = (knowledge, search.SearchIndex(knowledge))
            _cache.key = key
        return _cache.value


def _buttons(answer: answers.Answer) -> List[str]:
    return [button["title"] for button in answer.buttons]


def preview(docs: Mapping[str, Any], question: str, channel: str = "webchat",
            now: Optional[datetime] = None) -> Dict[str, Any]:
    """``{"kind": "answer" | "choose" | "none", "text", "buttons", "topic", "engine"}``."""
    catalogue = content_checks.build_catalogue(docs)
    aspect = aspect_of(question)
    search = _optional("bot.core.search")
    knowledge_answers = _optional("bot.core.knowledge_answers")
    if search is not None and knowledge_answers is not None and content_checks.knowledge_module() is not None:
        knowledge, index = _index(docs, catalogue, search)
        decision = index.decide(question)
        answer = knowledge_answers.decision_answer(knowledge, decision, aspect, channel)
        if answer is None:
            return {"kind": "none", "text": "", "buttons": [], "topic": None, "engine": "search"}
        best = decision.best.entry.id if decision.kind == "answer" and decision.best else None
        return {"kind": decision.kind, "text": answer.text, "buttons": _buttons(answer), "topic": best,
                "engine": "search"}
    location = catalogue.find_location(question)
    product = catalogue.find_product(question)
    if location and (not product or _HOURS.search(question.lower())):
        answer = answers.opening_hours_answer(catalogue, location, now or datetime.now(CITY_TZ))
        return {"kind": "answer", "text": answer.text, "buttons": _buttons(answer), "topic": location.id,
                "engine": "catalogue"}
    if product:
        answer = answers.product_answer(catalogue, product, aspect)
        return {"kind": "answer", "text": answer.text, "buttons": _buttons(answer), "topic": product.id,
                "engine": "catalogue"}
    return {"kind": "none", "text": "", "buttons": [], "topic": None, "engine": "catalogue"}
