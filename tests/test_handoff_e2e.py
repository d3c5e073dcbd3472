"""Human handoff end to end: the real assistant (Rasa + action server, ``assistant`` fixture), the
channel fakes (signed Twilio webhooks, Telegram updates) and the agent console app with real Redis.

Each test makes its own conversation (a fresh phone number or chat id) and opens live chat with the
console's switch, so the result does not depend on the hour the tests run at.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
import uuid
from typing import Any, Dict, List

import aiohttp
import pytest
import requests

from bot.core.texts import say
from tests.fakes.telegram_api import FakeTelegram, parse_html
from tests.fakes.twilio_api import FakeTwilio
from tests.test_console_api import Console, LiveFeed, console  # noqa: F401 - fixture

#: One real turn (NLU, policies, action server) on a 2-core machine.
TURN_SECONDS = 60.0
#: How long the assistant gets to (wrongly) answer a message that should only reach the agent.
QUIET_SECONDS = 3.0


@pytest.fixture
def rasa(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("assistant")


def _bodies(fake: FakeTwilio, sender: str) -> List[str]:
    return [call.params["Body"] for call in fake.calls if call.params.get("To") == sender]


def _telegram_texts(fake: FakeTelegram, chat_id: int) -> List[str]:
    return [parse_html(call.params["text"]) for call in fake.sent() if call.params.get("chat_id") == str(chat_id)]


def _wait_until(check, timeout: float = TURN_SECONDS, what: str = "") -> Any:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_whatsapp_escalation_agent_reply_silence_and_handback(rasa, console: Console, fake_twilio: FakeTwilio) -> None:  # noqa: F811
    sender = f"whatsapp:+32470{secrets.randbelow(10**6):06d}"
    an = console.agent("an")
    assert an.post("/api/availability", {"value": "open"}).status_code == 200
    feed = LiveFeed(an).start()
    try:
        # warm-up turn, so the agent sees what the assistant already knows
        assert fake_twilio.deliver(rasa.url, fake_twilio.incoming("hoeveel kost een reispas?", sender=sender)).status_code == 200
        _wait_until(lambda: _bodies(fake_twilio, sender), what="the answer about the reispas")
        assert fake_twilio.deliver(rasa.url, fake_twilio.incoming("ik wil een medewerker spreken", sender=sender)).status_code == 200
        answer = _wait_until(lambda: [b for b in _bodies(fake_twilio, sender) if "wachtrij" in b], what="handoff answer")[0]
        assert "nummer 1" in answer and "'stop'" in answer and "minuten" in answer

        queued = feed.wait_for(lambda e: e["type"] == "queued")
        item = an.find(sender)
        assert item["id"] == queued["id"]
        assert (item["channel"], item["reason"], item["status"]) == ("whatsapp", "explicit", "waiting")
        citizen_lines = [m["text"] for m in item["context"]["messages"] if m["from"] == "citizen"]
        assert citizen_lines == ["hoeveel kost een reispas?", "ik wil een medewerker spreken"]
        assert item["context"]["slots"].get("product") == "reispas" and item["context"]["product_name"] == "Reispas"

        before = len(_bodies(fake_twilio, sender))
        assert an.act(item["id"], "claim").status_code == 200
        _wait_until(lambda: len(_bodies(fake_twilio, sender)) > before, 5, "claim notice")
        assert _bodies(fake_twilio, sender)[-1] == say("channels.agent_claimed")

        started = time.monotonic()
        assert an.act(item["id"], "reply", "Dag, ik ben An van Gentinfo. Wat is er met uw reispas?").status_code == 200
        _wait_until(lambda: _bodies(fake_twilio, sender)[-1].startswith("Dag, ik ben An"), 5, "agent reply")
        print(f"agent reply reached the fake Twilio after {time.monotonic() - started:.3f} s")
        assert time.monotonic() - started < 1.0

        count = len(_bodies(fake_twilio, sender))
        assert fake_twilio.deliver(rasa.url, fake_twilio.incoming("Hij is gestolen, wat moet ik doen?", sender=sender)).status_code == 200
        event = feed.wait_for(lambda e: e.get("entry", {}).get("type") == "citizen")
        assert event["id"] == item["id"] and event["entry"]["text"] == "Hij is gestolen, wat moet ik doen?"
        time.sleep(QUIET_SECONDS)
        assert len(_bodies(fake_twilio, sender)) == count, "the assistant answered a held conversation"
        transcript = [(e["type"], e["text"]) for e in an.conversation(item["id"])["transcript"] if e["type"] != "system"]
        assert transcript == [("agent", "Dag, ik ben An van Gentinfo. Wat is er met uw reispas?"),
                              ("citizen", "Hij is gestolen, wat moet ik doen?")]

        assert an.act(item["id"], "handback").status_code == 200
        _wait_until(lambda: _bodies(fake_twilio, sender)[-1] == say("channels.agent_handed_back"), 5, "hand-back notice")
        count = len(_bodies(fake_twilio, sender))
        fake_twilio.deliver(rasa.url, fake_twilio.incoming("hallo", sender=sender))
        greeting = _wait_until(lambda: _bodies(fake_twilio, sender)[count:], what="the assistant's answer")[0]
        assert "digitale assistent" in greeting
        assert an.queue()["waiting"] == [] and an.queue()["held"] == []
    finally:
        feed.stop()


def test_telegram_fallback_button_escalates_and_stop_returns_to_the_assistant(rasa, console: Console,  # noqa: F811
                                                                              fake_telegram: FakeTelegram) -> None:
    chat = 500000000 + secrets.randbelow(10**6)
    an = console.agent("an")
    an.post("/api/availability", {"value": "open"})
    feed = LiveFeed(an).start()
    try:
        for _ in range(2):
            count = len(_telegram_texts(fake_telegram, chat))
            fake_telegram.deliver(rasa.url, fake_telegram.message_update("/nlu_fallback", chat_id=chat))
            _wait_until(lambda: len(_telegram_texts(fake_telegram, chat)) > count, what="fallback answer")
        offer = [c for c in fake_telegram.sent() if c.params.get("chat_id") == str(chat)][-1]
        buttons = [b["callback_data"] for row in offer.params["reply_markup"]["inline_keyboard"] for b in row]
        assert "/human_handoff" in buttons  # offered, not forced

        fake_telegram.deliver(rasa.url, fake_telegram.callback_update("/human_handoff", chat_id=chat))
        answer = _wait_until(lambda: [t for t in _telegram_texts(fake_telegram, chat) if "wachtrij" in t], what="handoff")[0]
        assert "nummer 1" in answer and "'stop'" in answer

        item = an.find(f"telegram:{chat}")
        assert (item["channel"], item["reason"]) == ("telegram", "misunderstood")
        assert an.act(item["id"], "claim").status_code == 200
        assert an.act(item["id"], "reply", "Goedemiddag, waarmee kan ik u helpen?").status_code == 200
        _wait_until(lambda: _telegram_texts(fake_telegram, chat)[-1] == "Goedemiddag, waarmee kan ik u helpen?", 5, "reply")

        count = len(_telegram_texts(fake_telegram, chat))
        fake_telegram.deliver(rasa.url, fake_telegram.message_update("Ik wil mijn adres wijzigen", chat_id=chat))
        feed.wait_for(lambda e: e.get("entry", {}).get("text") == "Ik wil mijn adres wijzigen")
        time.sleep(QUIET_SECONDS)
        assert len(_telegram_texts(fake_telegram, chat)) == count

        fake_telegram.deliver(rasa.url, fake_telegram.message_update("stop", chat_id=chat))
        after = _wait_until(lambda: _telegram_texts(fake_telegram, chat)[count + 1:], what="the assistant after stop")
        assert _telegram_texts(fake_telegram, chat)[count] == say("channels.handoff_stopped")
        assert after[0]  # the assistant's own answer to "stop"
        closed = feed.wait_for(lambda e: e["type"] == "closed" and e["id"] == item["id"])
        assert closed["outcome"] == "citizen_stop"
        assert an.conversation(item["id"])["handoff"]["status"] == "closed"
        # and the assistant answers again
        count = len(_telegram_texts(fake_telegram, chat))
        fake_telegram.deliver(rasa.url, fake_telegram.message_update("wat zijn de openingsuren van het stadskantoor?", chat_id=chat))
        _wait_until(lambda: len(_telegram_texts(fake_telegram, chat)) > count, what="opening hours")
    finally:
        feed.stop()


def test_out_of_hours_message_is_left_for_the_agents(rasa, console: Console, fake_telegram: FakeTelegram) -> None:  # noqa: F811
    chat = 600000000 + secrets.randbelow(10**6)
    an = console.agent("an")
    an.post("/api/availability", {"value": "closed"})

    fake_telegram.deliver(rasa.url, fake_telegram.message_update("mens aub", chat_id=chat))
    answer = _wait_until(lambda: _telegram_texts(fake_telegram, chat), what="out-of-hours answer")[0]
    assert "niemand beschikbaar" in answer and "09 210 10 10" in answer and "bericht achter" in answer
    assert an.queue()["waiting"] == []

    fake_telegram.deliver(rasa.url, fake_telegram.message_update("Kan iemand mij bellen over mijn huwelijk?", chat_id=chat))
    confirmation = _wait_until(lambda: _telegram_texts(fake_telegram, chat)[1:], what="confirmation")[0]
    assert confirmation.startswith("Bedankt, uw bericht is bewaard.")
    item = an.find(f"telegram:{chat}")
    assert item["offline"] is True and item["recent"][-1]["text"] == "Kan iemand mij bellen over mijn huwelijk?"

    # meanwhile the assistant keeps answering other questions
    count = len(_telegram_texts(fake_telegram, chat))
    fake_telegram.deliver(rasa.url, fake_telegram.message_update("hallo", chat_id=chat))
    assert "digitale assistent" in _wait_until(lambda: _telegram_texts(fake_telegram, chat)[count:], what="greeting")[0]

    # next morning an agent answers the message on the citizen's own channel
    an.post("/api/availability", {"value": "auto"})
    assert an.act(item["id"], "claim").status_code == 200
    assert an.act(item["id"], "reply", "Goedemorgen, ik bel u vandaag nog.").status_code == 200
    _wait_until(lambda: _telegram_texts(fake_telegram, chat)[-1] == "Goedemorgen, ik bel u vandaag nog.", 5, "reply")


class WebChatStream:
    """The widget's server-sent event stream, read by aiohttp in a background thread (cancellable)."""

    def __init__(self, base_url: str, session: str) -> None:
        self.messages: List[Dict[str, Any]] = []
        self._changed = threading.Condition()
        self._opened = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._task = asyncio.run_coroutine_threadsafe(self._read(f"{base_url}/webhooks/webchat/stream", session),
                                                      self._loop)
        assert self._opened.wait(10), "web chat stream did not open"

    async def _read(self, url: str, session: str) -> None:
        async with aiohttp.ClientSession() as http:
            async with http.get(url, params={"sender": session}, timeout=aiohttp.ClientTimeout(total=None)) as response:
                assert response.status == 200
                self._opened.set()
                async for raw in response.content:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    if line.startswith("data: "):
                        with self._changed:
                            self.messages.append(json.loads(line[len("data: "):]))
                            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 10) -> float:
        """Seconds until a pushed message with ``text`` arrived."""
        started = time.monotonic()
        deadline = started + timeout
        with self._changed:
            while not any(m.get("text") == text for m in self.messages):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{text!r} not pushed: {self.messages}")
                self._changed.wait(remaining)
        return time.monotonic() - started

    def close(self) -> None:
        """Cancel the reader and let it close its connection before the loop stops (a stream left
        open would hold up the Rasa server's graceful shutdown)."""
        asyncio.run_coroutine_threadsafe(_cancel_others(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


async def _cancel_others() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _webchat(base_url: str, session: str, text: str) -> List[str]:
    body = json.dumps({"sender": session, "message": text, "message_id": uuid.uuid4().hex})
    response = requests.post(f"{base_url}/webhooks/webchat/webhook", data=body,
                             headers={"Content-Type": "text/plain"}, timeout=TURN_SECONDS)
    assert response.status_code == 200, response.text
    return [m.get("text", "") for m in response.json()]


def test_web_chat_escalation_reply_by_push_and_handback(rasa, console: Console) -> None:  # noqa: F811
    session = str(uuid.uuid4())
    an = console.agent("an")
    an.post("/api/availability", {"value": "open"})
    stream = WebChatStream(rasa.url, session)
    feed = LiveFeed(an).start()
    try:
        answer = "\n".join(_webchat(rasa.url, session, "ik wil een medewerker spreken"))
        assert "nummer 1 in de wachtrij" in answer and "'stop'" in answer
        item = an.find(f"web:{session}")
        assert (item["channel"], item["channel_name"], item["reason"]) == ("web", "webchat", "explicit")

        assert an.act(item["id"], "claim").status_code == 200
        stream.wait_for(say("channels.agent_claimed"))
        started = time.monotonic()
        assert an.act(item["id"], "reply", "Dag! Waarmee kan ik u helpen?").status_code == 200
        stream.wait_for("Dag! Waarmee kan ik u helpen?", timeout=5)
        print(f"agent reply pushed to the web chat after {time.monotonic() - started:.3f} s")
        assert time.monotonic() - started < 1.0

        assert _webchat(rasa.url, session, "Mag mijn buurvrouw mijn pakket ophalen?") == []  # no bot answer
        event = feed.wait_for(lambda e: e.get("entry", {}).get("type") == "citizen")
        assert event["entry"]["text"] == "Mag mijn buurvrouw mijn pakket ophalen?"

        assert an.act(item["id"], "handback").status_code == 200
        stream.wait_for(say("channels.agent_handed_back"))
        assert "digitale assistent" in "\n".join(_webchat(rasa.url, session, "hallo"))
    finally:
        feed.stop()
        stream.close()
