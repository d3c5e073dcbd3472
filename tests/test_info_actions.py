"""The answer action keeps context and hands always-human topics to an agent."""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.info import ActionAnswerProduct


def tracker(text: str, intent: str, slots: Optional[Dict[str, Any]] = None, form: Optional[str] = None) -> Tracker:
    message = {"text": text, "intent": {"name": intent, "confidence": 0.99}, "entities": []}
    loop = {"name": form} if form else {}
    return Tracker("test:1", slots or {}, message, [], False, None, loop, "action_listen")


def run(
    text: str, intent: str, slots: Optional[Dict[str, Any]] = None, form: Optional[str] = None
) -> tuple[List[dict], List[dict]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionAnswerProduct().run(dispatcher, tracker(text, intent, slots, form), {}))
    return dispatcher.messages, events


def test_product_from_the_words_is_answered_and_remembered() -> None:
    messages, events = run("ik heb een nieuw paspoort nodig", "ask_product_info")
    assert "Reispas" in messages[0]["text"]
    assert {"event": "slot", "name": "product", "value": "reispas", "timestamp": None} in events


def test_follow_up_without_a_product_uses_the_remembered_one() -> None:
    messages, _ = run("en hoeveel kost dat?", "ask_price", {"product": "rijbewijs"})
    assert messages[0]["text"].startswith("Prijs rijbewijs")


def test_no_product_at_all_asks_which_one_with_buttons() -> None:
    messages, events = run("hoeveel kost dat?", "ask_price")
    assert "Over welk document" in messages[0]["text"] and messages[0]["buttons"]
    assert events == []


def test_always_human_topic_is_answered_then_handed_to_an_agent() -> None:
    messages, events = run("mijn vader is overleden", "ask_product_info")
    assert "Overlijden" in messages[0]["text"]
    assert any(e.get("event") == "followup" and e.get("name") == "action_human_handoff" for e in events)


def test_always_human_topic_does_not_break_off_an_active_form() -> None:
    _, events = run("wat moet ik meebrengen voor de nationaliteit", "ask_documents", form="appointment_form")
    assert not any(e.get("event") == "followup" for e in events)
