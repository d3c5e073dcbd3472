"""``action_human_handoff`` run in-process on real trackers (rasa-sdk's own ``Tracker``) and real Redis."""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.fallback import ActionDefaultFallback
from bot.actions.handoff import ActionHumanHandoff, conversation_context, handoff_reason, topic_followup
from bot.core import handoff
from bot.core.handoff import HandoffStore


def _user(text: str, intent: str, **extra: Any) -> Dict[str, Any]:
    return {"event": "user", "text": text, "timestamp": 1700000000.0,
            "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "entities": []}, **extra}


def _bot(text: str) -> Dict[str, Any]:
    return {"event": "bot", "text": text, "timestamp": 1700000001.0}


def _action(name: str) -> Dict[str, Any]:
    return {"event": "action", "name": name}


def tracker(sender: str, events: List[Dict[str, Any]], slots: Optional[Dict[str, Any]] = None) -> Tracker:
    latest = next(e for e in reversed(events) if e["event"] == "user")
    latest_message = {"text": latest["text"], **latest["parse_data"]}
    all_slots = {"product": None, "location": None, "reference": None, **(slots or {})}
    return Tracker(sender, all_slots, latest_message, events, False, None, {}, "action_listen")


EXPLICIT = [_action("action_listen"), _user("hoeveel kost een reispas", "ask_price"), _action("action_answer_product"),
            _bot("Prijs reispas: 70 euro (indicatief)."), _action("action_listen"),
            _user("ik wil een medewerker spreken", "human_handoff")]
AFTER_FALLBACK = [_action("action_listen"), _user("blabla", "nlu_fallback"), _action("action_default_fallback"),
                  _bot("Sorry, dat begreep ik niet goed."), _action("action_listen"), _user("qwerty", "nlu_fallback"),
                  _action("action_default_fallback"), _bot("Het lukt me niet goed om u te begrijpen."),
                  _action("action_listen"), _user("/human_handoff", "human_handoff")]


def run_action(sender: str, events: List[Dict[str, Any]], slots: Optional[Dict[str, Any]] = None) -> str:
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionHumanHandoff().run(dispatcher, tracker(sender, events, slots), {}))
    return "\n".join(m["text"] for m in dispatcher.messages)


def _store_call(url: str, method: str, *args: Any) -> Any:
    async def go() -> Any:
        store = HandoffStore(url)
        try:
            return await getattr(store, method)(*args)
        finally:
            await store.close()

    return asyncio.run(go())


@pytest.fixture
def live(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("REDIS_URL", redis_url)
    _store_call(redis_url, "set_availability", "open")
    return redis_url


def test_reasons() -> None:
    assert handoff_reason(tracker("telegram:1", EXPLICIT)) == "explicit"
    assert handoff_reason(tracker("telegram:1", AFTER_FALLBACK)) == "misunderstood"
    topic = EXPLICIT[:2] + [_action("action_answer_product"), _bot("Overlijden aangeven ...")]
    topic[1] = _user("mijn vader is overleden", "ask_product_info")
    assert handoff_reason(tracker("telegram:1", topic, {"product": "overlijden"})) == "topic"
    assert handoff_reason(tracker("telegram:1", EXPLICIT, {"product": "overlijden"})) == "explicit"
    assert topic_followup("overlijden") == [{"event": "followup", "name": "action_human_handoff", "timestamp": None}]
    assert topic_followup("reispas") == [] and topic_followup(None) == []


def test_context_has_last_messages_and_slots() -> None:
    config = handoff.get_config()
    context = conversation_context(tracker("telegram:1", AFTER_FALLBACK, {"product": "reispas", "reference": "KAFKA-2026-000001"}), config)
    assert [(m["from"], m["text"]) for m in context["messages"]] == [
        ("citizen", "blabla"), ("assistant", "Sorry, dat begreep ik niet goed."), ("citizen", "qwerty"),
        ("assistant", "Het lukt me niet goed om u te begrijpen."), ("citizen", "[knop: human_handoff]"),
    ]
    assert context["slots"] == {"product": "reispas", "reference": "KAFKA-2026-000001"}
    assert context["product_name"] == "Reispas"
    long = EXPLICIT + [_bot(f"antwoord {n}") for n in range(20)]
    assert len(conversation_context(tracker("telegram:1", long), config)["messages"]) == config.context_messages


def test_escalation_in_hours_gives_position_wait_and_stop(live: str) -> None:
    first = run_action("whatsapp:+32470000001", EXPLICIT, {"product": "reispas"})
    assert "nummer 1 in de wachtrij" in first and "ongeveer 4 minuten" in first and "'stop'" in first
    second = run_action("telegram:2", AFTER_FALLBACK)
    assert "nummer 2 in de wachtrij" in second and "ongeveer 8 minuten" in second
    again = run_action("whatsapp:+32470000001", EXPLICIT)
    assert "U staat al in de wachtrij" in again and "nummer 1" in again

    waiting = _store_call(live, "waiting")
    assert [(h.conversation, h.channel, h.reason) for h in waiting] == [
        ("whatsapp:+32470000001", "whatsapp", "explicit"), ("telegram:2", "telegram", "misunderstood")]
    assert waiting[0].context["slots"] == {"product": "reispas"}
    assert waiting[0].context["messages"][-1] == {"from": "citizen", "text": "ik wil een medewerker spreken",
                                                  "at": 1700000000.0}


def test_always_human_topic(live: str) -> None:
    events = [_action("action_listen"), _user("mijn vader is overleden", "ask_product_info"),
              _action("action_answer_product"), _bot("Een overlijden aangeven ...")]
    text = run_action("web:abc123", events, {"product": "overlijden"})
    assert text.startswith("Voor vragen over overlijden helpt een medewerker van Gentinfo u persoonlijk verder.")
    assert _store_call(live, "waiting")[0].reason == "topic"


def test_outside_hours_offers_to_leave_a_message(live: str) -> None:
    _store_call(live, "set_availability", "closed")
    text = run_action("telegram:3", EXPLICIT)
    assert "Nu is er helaas niemand beschikbaar" in text
    assert "09 210 10 10" in text and "maandag tot vrijdag van 8 tot 18 uur" in text
    assert "laat hier een bericht achter" in text and "'stop'" in text
    assert _store_call(live, "waiting") == []
    pending = _store_call(live, "active_for", "telegram:3")
    assert pending.status == "message"


def test_without_redis_live_chat_is_clearly_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    text = run_action("whatsapp:+32470000001", EXPLICIT)
    assert "niet beschikbaar" in text and "09 210 10 10" in text


def test_channels_without_live_chat_get_the_phone_line(live: str) -> None:
    text = run_action("rest-user-1", EXPLICIT)
    assert "niet via dit kanaal" in text and "09 210 10 10" in text
    assert _store_call(live, "waiting") == []


def test_redis_down_is_not_a_crash(wiring: Callable[..., None]) -> None:
    wiring(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    text = run_action("telegram:4", EXPLICIT)
    assert "lukt nu even niet" in text and "09 210 10 10" in text


def test_fallback_offers_the_handoff_button_after_two_misses() -> None:
    dispatcher = CollectingDispatcher()
    events = AFTER_FALLBACK[:-1] + [_user("nog iets onbegrijpelijks", "nlu_fallback")]
    asyncio.run(ActionDefaultFallback().run(dispatcher, tracker("telegram:1", events), {}))
    assert {"title": "Met een medewerker praten", "payload": "/human_handoff"} in dispatcher.messages[0]["buttons"]
