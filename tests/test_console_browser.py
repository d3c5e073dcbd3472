"""The agent console in a real browser (Debian's Chromium through Playwright): log in, see the
escalated conversation in the queue, claim it, reply, see the citizen's answer arrive live, hand back.

Saves ``tests/artifacts/console.png``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator, List

import pytest

from bot.core.handoff import HandoffStore
from bot.core.texts import say
from tests.fakes.telegram_api import FakeTelegram, parse_html
from tests.fakes.twilio_api import FakeTwilio
from tests.test_console_api import PASSWORDS, USERS, Console, citizen_says, enqueue  # noqa: F401
from tests.test_console_api import console  # noqa: F401 - fixture

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
XSS = '<img src=x onerror="window.__xss = 1"> Mijn reispas is verlopen, <b>dringend</b>!'


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} not found (CI must install Debian's chromium)")
        pytest.skip(f"{CHROMIUM} not found (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def secure_console(redis_url: str, fake_telegram: FakeTelegram, fake_twilio: FakeTwilio,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    """As in production: Secure, __Host- cookies (Chromium takes them from http://127.0.0.1)."""
    from connectors import outbound

    for name, value in {**fake_telegram.env(), **fake_twilio.env(), "REDIS_URL": redis_url}.items():
        monkeypatch.setenv(name, value)
    outbound.load_channels()
    fake_telegram.clear()
    running = Console(redis_url, secure_cookie=True).start()
    yield running
    running.stop()


def _texts(fake: FakeTelegram, chat: str) -> List[str]:
    return [parse_html(c.params["text"]) for c in fake.sent() if c.params.get("chat_id") == chat]


def test_login_claim_reply_live_message_and_hand_back(browser, secure_console: Console, redis_url: str,
                                                      fake_telegram: FakeTelegram) -> None:
    from playwright.sync_api import expect

    context = {
        "messages": [
            {"from": "citizen", "text": "hoeveel kost een reispas?", "at": None},
            {"from": "assistant", "text": "Prijs reispas: 70 euro voor een volwassene (indicatief).", "at": None},
            {"from": "citizen", "text": XSS, "at": None},
            {"from": "citizen", "text": "ik wil een medewerker spreken", "at": None},
        ],
        "slots": {"product": "reispas", "location": "stadskantoor"},
        "product_name": "Reispas", "location_name": "Stadskantoor",
    }
    handoff_id = enqueue(redis_url, "telegram:424242", context=context)
    enqueue(redis_url, "whatsapp:+32470555123", reason="misunderstood",
            context={"messages": [{"from": "citizen", "text": "formulier kapot??", "at": None}], "slots": {}})

    page = browser.new_page(viewport={"width": 1360, "height": 900})
    problems: List[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(secure_console.url + "/")
        expect(page).to_have_url(secure_console.url + "/login")
        page.get_by_label("Gebruikersnaam").fill("an")
        page.get_by_label("Wachtwoord").fill(PASSWORDS["an"])
        page.keyboard.press("Enter")
        expect(page).to_have_url(secure_console.url + "/")
        expect(page.locator("#verbinding")).to_have_text("Live verbonden")

        queue = page.locator("#wachtrij button")
        expect(queue).to_have_count(2)
        expect(queue.first).to_contain_text("Telegram")
        expect(queue.first).to_contain_text("vroeg zelf naar een medewerker")
        expect(queue.first).to_contain_text("Reispas")
        expect(page.locator("#aantal")).to_have_text("2")

        page.keyboard.press("Alt+1")  # keyboard: first in the queue
        expect(page.locator("#gesprek-titel")).to_have_text("Telegram telegram:…242")
        expect(page.locator("#slots")).to_contain_text("Reispas (reispas)")
        expect(page.locator("#context")).to_contain_text(XSS)  # shown as text ...
        assert page.locator("#context img, #context b").count() == 0  # ... never as HTML
        assert page.evaluate("window.__xss") is None

        page.get_by_role("button", name="Gesprek overnemen").click()
        reply = page.get_by_label("Antwoord aan de burger")
        expect(reply).to_be_focused()
        fake_telegram.wait_for(1)
        assert _texts(fake_telegram, "424242") == [say("channels.agent_claimed")]
        expect(page.locator("#wachtrij button")).to_have_count(1)
        expect(page.locator("#behandeling button")).to_contain_text("bij an")

        reply.fill("Dag, ik ben An van Gentinfo. Uw reispas kunt u aanvragen aan de snelbalie.")
        reply.press("Control+Enter")
        expect(page.locator("#transcript")).to_contain_text("Uw reispas kunt u aanvragen aan de snelbalie.")
        fake_telegram.wait_for(2)
        assert _texts(fake_telegram, "424242")[-1].startswith("Dag, ik ben An van Gentinfo.")
        expect(reply).to_have_value("")

        page.get_by_label("Interne notitie (de burger ziet dit niet)").fill("Burger heeft haast: vertrekt vrijdag.")
        page.get_by_role("button", name="Notitie bewaren").click()
        expect(page.locator("#transcript .bericht-note")).to_contain_text("vertrekt vrijdag")

        # the citizen answers on Telegram: the message reaches the agent live, not the assistant
        assert citizen_says(redis_url, "telegram:424242", "Dank u! Moet ik een foto meebrengen?") == "held"
        expect(page.locator("#transcript .bericht-citizen")).to_contain_text("Moet ik een foto meebrengen?")

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)

        page.get_by_role("button", name="Terug naar de assistent").click()
        expect(page.locator("#melding")).to_have_text("Dit gesprek is terug bij de digitale assistent.")
        fake_telegram.wait_for(3)
        assert _texts(fake_telegram, "424242")[-1] == say("channels.agent_handed_back")
        expect(page.locator("#behandeling button")).to_have_count(0)
        assert citizen_says(redis_url, "telegram:424242", "hallo") == "pass"
        page.screenshot(path=str(ARTIFACTS / "console-handback.png"), full_page=True)

        page.get_by_role("button", name="Afmelden").click()
        expect(page).to_have_url(secure_console.url + "/login")
        assert [c["name"] for c in page.context.cookies()] == ["__Host-gentinfo_console_login"]
        assert problems == [], problems
    finally:
        page.close()
