"""The web chat widget in a real browser (Debian's Chromium through Playwright).

The server is the real connector in its own process (so a test can kill it: "server down") with a
scripted stand-in for Rasa's agent. One test talks to the real assistant through the lead's
``assistant`` fixture and is skipped while that fixture does not exist.
"""
from __future__ import annotations

import asyncio
import gzip
import json
import multiprocessing
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

ROOT = Path(__file__).resolve().parent.parent
WIDGET = ROOT / "channels" / "webchat" / "widget.js"
ARTIFACTS = ROOT / "tests" / "artifacts"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
GREETING = "Dag! Ik ben de digitale assistent van Stad Gent. Waarmee kan ik u helpen?"
OFFLINE = "Geen verbinding. We proberen opnieuw…"
STORE = "gentinfo-webchat"


def _missing(what: str) -> None:
    """Locally a missing browser or tool skips; in CI it is an error in the set-up."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must install it)")
    pytest.skip(what)


# --- the widget file itself -------------------------------------------------------------------


def test_bundle_is_under_50_kb_gzipped() -> None:
    size = len(gzip.compress(WIDGET.read_bytes(), compresslevel=9))
    print(f"widget.js: {WIDGET.stat().st_size} bytes, {size} bytes gzipped")
    assert size <= 50 * 1024


def test_widget_never_turns_strings_into_html_or_code() -> None:
    source = WIDGET.read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "srcdoc"):
        assert sink not in source, sink
    # and it loads nothing from elsewhere: every request goes to the chat server (`api`)
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", source)


# --- a server with a scripted assistant, in its own process -----------------------------------


def _png(width: int, height: int, rgb: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + rgb * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _serve(port: int) -> None:
    """Child process: Sanic with the webchat channel, wired as Rasa does, and a scripted agent."""
    os.environ.pop("REDIS_URL", None)
    from rasa.core.channels.channel import UserMessage, register
    from rasa.core.tracker_store import InMemoryTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import BotUttered, UserUttered
    from sanic import Sanic, response
    from sanic.request import Request

    from connectors import outbound
    from connectors.webchat import WebChatInput

    base = f"http://127.0.0.1:{port}"

    class ScriptedAssistant:
        """Stands in for Rasa's agent: fixed answers, turns kept in Rasa's tracker store."""

        def __init__(self) -> None:
            self.tracker_store = InMemoryTrackerStore(Domain.empty())

        async def handle_message(self, message: UserMessage) -> None:
            text = message.text or ""
            tracker = await self.tracker_store.get_or_create_tracker(message.sender_id)
            tracker.update(UserUttered(text, metadata=message.metadata, input_channel=message.input_channel))
            if "traag" in text:
                await asyncio.sleep(1.5)
            for answer in self.answers(text):
                await message.output_channel.send_response(message.sender_id, dict(answer))
                data = {key: value for key, value in answer.items() if key != "text"}
                tracker.update(BotUttered(answer.get("text"), data=data))
            await self.tracker_store.save(tracker)

        @staticmethod
        def answers(text: str) -> List[Dict[str, Any]]:
            if text == "/greet":
                return [
                    {
                        "text": GREETING,
                        "buttons": [
                            {"title": "Openingsuren", "payload": "/ask_opening_hours"},
                            {"title": "Afspraak maken", "payload": "/book_appointment"},
                        ],
                    }
                ]
            if text == "/ask_opening_hours":
                return [{"text": "Het Stadskantoor is open van 8.30 tot 16.30 uur. Meer info: https://stad.gent/nl/stadskantoor."}]
            if text == "/book_appointment":
                return [{"text": "U kunt een afspraak maken op https://stad.gent/afspraak."}]
            if "agenda" in text:
                ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
                return [{"text": "Uw afspraak is bevestigd."},
                        {"custom": {"type": "ics", "filename": "afspraak-GNT-7K3Q9.ics", "content": ics}}]
            if "foto" in text:
                return [{"text": "Zo ziet het Stadskantoor eruit:", "image": f"{base}/test/stadskantoor.png"}]
            if "<" in text or ":" in text:
                return [{"text": f"U schreef: {text}"}]
            return [{"text": f"U vroeg: {text}\n\nMeer info op https://stad.gent/nl."}]

    app = Sanic("webchat-browser-test", configure_logging=False)
    register([WebChatInput(["*"])], app, route="/webhooks/")
    app.ctx.agent = ScriptedAssistant()

    @app.post("/test/push")
    async def push(request: Request) -> response.HTTPResponse:
        """What the human-handoff console does: send to a conversation from outside a request."""
        await outbound.send(f"web:{request.json['sender']}", {"text": request.json["text"]})
        return response.json({"ok": True})

    @app.get("/test/stadskantoor.png")
    async def image(request: Request) -> response.HTTPResponse:
        return response.raw(_png(160, 90, b"\x00\x5a\x85"), content_type="image/png")

    @app.get("/test/host.html")
    async def host_page(request: Request) -> response.HTTPResponse:
        """A page on another origin embedding the widget, like gent.be will."""
        return response.html(
            '<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>Stad Gent</title></head>'
            "<body><main><h1>Afval</h1><p>Een pagina van gent.be.</p></main>"
            f'<script src="{base}/webhooks/webchat/widget.js" data-server="{base}" data-title="Stad Gent" '
            'data-color="#ffd500" data-open="true" defer></script></body></html>'
        )

    app.run(host="127.0.0.1", port=port, access_log=False, motd=False)


class ChatServer:
    """The scripted chat server; ``stop``/``start`` make a real outage (the process is killed)."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Any = None

    def start(self) -> None:
        self.process = multiprocessing.get_context("spawn").Process(target=_serve, args=(self.port,), daemon=True)
        self.process.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/webhooks/webchat/", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        raise RuntimeError("the test chat server did not start")

    def stop(self) -> None:
        self.process.kill()
        self.process.join(10)

    def push(self, sender: str, text: str) -> None:
        body = json.dumps({"sender": sender, "text": text}).encode()
        request = urllib.request.Request(f"{self.url}/test/push", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200


@pytest.fixture(scope="module")
def server() -> Iterator[ChatServer]:
    chat = ChatServer()
    chat.start()
    yield chat
    chat.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        _missing(f"{CHROMIUM} not found (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _context(browser: Any, **options: Any) -> Any:
    options.setdefault("viewport", {"width": 1280, "height": 800})
    return browser.new_context(locale="nl-BE", **options)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = _context(browser)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def _open_demo(page: Any, server: ChatServer) -> Any:
    """The demo page with the chat opened and greeted; returns the log."""
    from playwright.sync_api import expect

    page.goto(f"{server.url}/webhooks/webchat/demo")
    page.get_by_role("button", name="Chat met Gentinfo").click()
    log = page.get_by_role("log")
    expect(log).to_contain_text(GREETING)
    return log


def _texts(page: Any) -> List[str]:
    return page.locator(".msg .bubble").all_text_contents()


def _session(page: Any) -> str:
    return page.evaluate(f"JSON.parse(localStorage.getItem('{STORE}')).session")


# --- conversations ----------------------------------------------------------------------------


def test_conversation_quick_reply_history_after_reload(page: Any, server: ChatServer) -> None:
    from playwright.sync_api import expect

    problems: List[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{server.url}/webhooks/webchat/demo")
    launcher = page.get_by_role("button", name="Chat met Gentinfo")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    launcher.click()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    dialog = page.get_by_role("dialog", name="Gentinfo")
    expect(dialog).to_be_visible()
    log = dialog.get_by_role("log", name="Gesprek")
    expect(log).to_have_attribute("aria-live", "polite")
    expect(log).to_contain_text(GREETING)
    question = dialog.get_by_role("textbox", name="Stel uw vraag")
    expect(question).to_be_focused()

    dialog.get_by_role("group", name="Kies een antwoord").get_by_role("button", name="Openingsuren").click()
    expect(log).to_contain_text("Het Stadskantoor is open van 8.30 tot 16.30 uur.")
    expect(dialog.get_by_role("button", name="Afspraak maken")).to_have_count(0)  # answered: gone

    question.fill("Hoe vraag ik een parkeerkaart aan?")
    dialog.get_by_role("button", name="Verstuur").click()
    expect(log).to_contain_text("U vroeg: Hoe vraag ik een parkeerkaart aan?")
    expect(question).to_have_value("")
    link = log.get_by_role("link", name=re.compile(r"^https:\/\/stad\.gent\/nl "))
    expect(link).to_have_attribute("href", "https://stad.gent/nl")  # the final "." is not part of it
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    times = log.locator("time")
    expect(times.first).to_have_text(re.compile(r"^\d\d:\d\d$"))

    conversation = [
        GREETING,
        "Openingsuren",
        "Het Stadskantoor is open van 8.30 tot 16.30 uur. Meer info: https://stad.gent/nl/stadskantoor (opent in een nieuw venster).",
        "Hoe vraag ik een parkeerkaart aan?",
        "U vroeg: Hoe vraag ik een parkeerkaart aan?",  # one message per paragraph, as Rasa sends them
        "Meer info op https://stad.gent/nl (opent in een nieuw venster).",
    ]
    assert _texts(page) == conversation
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "webchat-open.png"))

    session = _session(page)
    page.reload()
    expect(page.get_by_role("dialog", name="Gentinfo")).to_be_visible()  # open state remembered
    expect(page.get_by_role("log")).to_contain_text("U vroeg: Hoe vraag ik een parkeerkaart aan?")
    assert _texts(page) == conversation
    assert _session(page) == session
    assert problems == []  # nothing blocked by the demo's strict Content-Security-Policy


def test_keyboard_only(page: Any, server: ChatServer) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server.url}/webhooks/webchat/demo")
    launcher = page.get_by_role("button", name="Chat met Gentinfo")
    for _ in range(12):
        page.keyboard.press("Tab")
        if launcher.evaluate("el => el.getRootNode().activeElement === el"):
            break
    expect(launcher).to_be_focused()
    outline = launcher.evaluate("el => getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth")
    assert outline == "solid 3px"  # visible focus

    page.keyboard.press("Enter")
    question = page.get_by_role("textbox", name="Stel uw vraag")
    expect(question).to_be_focused()
    expect(page.get_by_role("log")).to_contain_text(GREETING)

    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Afspraak maken")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Openingsuren")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("log")).to_contain_text("Het Stadskantoor is open")
    expect(question).to_be_focused()

    page.keyboard.type("Waar kan ik parkeren?")
    page.keyboard.press("Enter")
    expect(page.get_by_role("log")).to_contain_text("U vroeg: Waar kan ik parkeren?")

    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")


@pytest.mark.parametrize(
    "viewport, scale",
    [({"width": 360, "height": 740}, 1), ({"width": 320, "height": 256}, 4)],  # phone; 1280×1024 at 400 %
    ids=["360px", "400pct-zoom"],
)
def test_small_screens_get_a_full_screen_panel(browser: Any, server: ChatServer, viewport: Dict[str, int], scale: int) -> None:
    from playwright.sync_api import expect

    context = _context(browser, viewport=viewport, device_scale_factor=scale)
    page = context.new_page()
    try:
        _open_demo(page, server)
        box = page.get_by_role("dialog").bounding_box()
        assert box == {"x": 0, "y": 0, "width": viewport["width"], "height": viewport["height"]}
        expect(page.get_by_role("button", name="Chat met Gentinfo")).to_be_hidden()  # not behind the panel
        for control in (
            page.get_by_role("textbox", name="Stel uw vraag"),
            page.get_by_role("button", name="Verstuur"),
            page.get_by_role("button", name="Sluiten"),
        ):
            expect(control).to_be_in_viewport()
        assert page.get_by_role("log").bounding_box()["height"] >= 60
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        page.get_by_role("button", name="Sluiten").click()
        expect(page.get_by_role("button", name="Chat met Gentinfo")).to_be_visible()
    finally:
        context.close()


def test_server_down_keeps_the_message_and_sends_it_when_back(page: Any, server: ChatServer) -> None:
    from playwright.sync_api import expect

    log = _open_demo(page, server)
    server.stop()
    try:
        page.get_by_role("textbox", name="Stel uw vraag").fill("Is de bibliotheek open?")
        page.get_by_role("button", name="Verstuur").click()
        notice = page.get_by_role("alert")
        expect(notice).to_contain_text(OFFLINE)
        expect(notice).to_contain_text("Uw bericht wordt verstuurd zodra er weer verbinding is.")
        expect(log.locator(".msg", has_text="Is de bibliotheek open?")).to_contain_text("Nog niet verstuurd")
        outbox = page.evaluate(f"JSON.parse(localStorage.getItem('{STORE}')).outbox.map(i => i.message)")
        assert outbox == ["Is de bibliotheek open?"]  # survives a reload too
    finally:
        server.start()
    expect(log).to_contain_text("U vroeg: Is de bibliotheek open?", timeout=20_000)
    expect(page.get_by_role("alert")).to_be_hidden()
    expect(log).not_to_contain_text("Nog niet verstuurd")
    assert _texts(page).count("Is de bibliotheek open?") == 1


def test_agent_reply_is_pushed_to_the_widget(page: Any, server: ChatServer) -> None:
    from playwright.sync_api import expect

    log = _open_demo(page, server)
    launcher = page.get_by_role("button", name="Chat met Gentinfo")
    page.get_by_role("button", name="Sluiten").click()
    server.push(_session(page), "Dag, ik ben Els van Gentinfo. Ik help u verder.")
    expect(page.get_by_role("button", name="Chat met Gentinfo (nieuw bericht)")).to_be_visible()
    launcher.click()
    expect(log).to_contain_text("Dag, ik ben Els van Gentinfo.")
    expect(page.get_by_role("button", name="Chat met Gentinfo", exact=True)).to_be_visible()


def test_bot_text_is_shown_as_text_never_as_html(page: Any, server: ChatServer) -> None:
    from playwright.sync_api import expect

    log = _open_demo(page, server)
    probe = '<img src=x onerror="window.pwned=1"> javascript:alert(1)'
    page.get_by_role("textbox", name="Stel uw vraag").fill(probe)
    page.keyboard.press("Enter")
    expect(log).to_contain_text(f"U schreef: {probe}")
    assert page.locator("#gentinfo-webchat img").count() == 0
    assert log.get_by_role("link").count() == 0
    assert page.evaluate("window.pwned") is None

    page.get_by_role("textbox", name="Stel uw vraag").fill("Hebt u een foto van het Stadskantoor?")
    page.keyboard.press("Enter")
    image = log.get_by_role("img", name="Afbeelding")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.naturalWidth") == 160


def test_calendar_file_is_offered_as_a_download(page: Any, server: ChatServer) -> None:
    _open_demo(page, server)
    page.get_by_label("Stel uw vraag").fill("zet in mijn agenda")
    page.keyboard.press("Enter")
    link = page.get_by_role("link", name="Zet de afspraak in uw agenda (.ics)")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "afspraak-GNT-7K3Q9.ics"
    assert Path(download.value.path()).read_text().startswith("BEGIN:VCALENDAR")


def test_typing_indicator_while_waiting_and_reduced_motion(page: Any, server: ChatServer) -> None:
    from playwright.sync_api import expect

    log = _open_demo(page, server)
    dots = page.locator(".typing")
    page.get_by_role("textbox", name="Stel uw vraag").fill("Een traag antwoord graag")
    page.keyboard.press("Enter")
    expect(dots).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Gentinfo is aan het typen…")
    assert dots.locator("span").first.evaluate("el => getComputedStyle(el).animationName") == "gw-blink"
    page.emulate_media(reduced_motion="reduce")
    assert dots.locator("span").first.evaluate("el => getComputedStyle(el).animationName") == "none"
    expect(log).to_contain_text("U vroeg: Een traag antwoord graag")
    expect(dots).to_be_hidden()


def test_start_over_gives_a_new_conversation(page: Any, server: ChatServer) -> None:
    from playwright.sync_api import expect

    log = _open_demo(page, server)
    page.get_by_role("textbox", name="Stel uw vraag").fill("Afval")
    page.keyboard.press("Enter")
    expect(log).to_contain_text("U vroeg: Afval")
    old = _session(page)
    page.get_by_role("button", name="Opnieuw beginnen").click()
    expect(page.get_by_role("textbox", name="Stel uw vraag")).to_be_focused()
    expect(log).to_contain_text(GREETING)
    assert _texts(page) == [GREETING]
    assert _session(page) != old
    page.reload()
    expect(page.get_by_role("log")).to_contain_text(GREETING)
    assert _texts(page) == [GREETING]


def test_embedded_on_another_site_with_its_own_colour(browser: Any, server: ChatServer) -> None:
    """gent.be loads the widget cross-origin, opened at once, in its yellow: the text turns dark."""
    from playwright.sync_api import expect

    context = _context(browser)
    page = context.new_page()
    hosts: List[str] = []
    page.on("request", lambda request: hosts.append(request.url.split("/")[2]))
    try:
        page.goto(f"http://localhost:{server.port}/test/host.html")
        dialog = page.get_by_role("dialog", name="Stad Gent")
        expect(dialog).to_be_visible()  # data-open="true"
        log = dialog.get_by_role("log")
        expect(log).to_contain_text(GREETING)
        reply = dialog.get_by_role("button", name="Openingsuren")
        assert reply.evaluate("el => getComputedStyle(el).borderTopColor") == "rgb(89, 95, 102)"  # 3:1 on white
        page.get_by_role("textbox", name="Stel uw vraag").fill("Ophaling grofvuil")
        page.keyboard.press("Enter")
        expect(log).to_contain_text("U vroeg: Ophaling grofvuil")
        header = dialog.locator(".head")
        colours = header.evaluate("el => [getComputedStyle(el).backgroundColor, getComputedStyle(el).color]")
        assert colours == ["rgb(255, 213, 0)", "rgb(0, 0, 0)"]
        assert set(hosts) == {f"localhost:{server.port}", f"127.0.0.1:{server.port}"}  # nobody else
    finally:
        context.close()


def _axe_installed() -> Path:
    if not AXE.exists() and shutil.which("npm"):
        # package-lock.json pins axe-core; node_modules/ is git-ignored, so a fresh clone installs.
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=False, timeout=300)
    if not AXE.exists():
        _missing("axe-core not installed (run: npm ci)")
    return AXE


def test_no_serious_accessibility_violations(browser: Any, server: ChatServer) -> None:
    from playwright.sync_api import expect

    axe = _axe_installed()
    context = _context(browser, bypass_csp=True)  # the demo's policy would refuse the injected axe
    page = context.new_page()
    try:
        log = _open_demo(page, server)
        page.get_by_role("textbox", name="Stel uw vraag").fill("Wanneer is het containerpark open?")
        page.keyboard.press("Enter")
        expect(log).to_contain_text("U vroeg: Wanneer")
        page.get_by_role("textbox", name="Stel uw vraag").fill("Gaat dit ook offline?")  # placeholder gone
        page.add_script_tag(path=str(axe))
        result = page.evaluate(
            "async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}))"
            ".violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
        )
        serious = [violation for violation in result if violation["impact"] in ("serious", "critical")]
        assert serious == []
        assert not [violation for violation in result if violation["id"] == "color-contrast"]
    finally:
        context.close()


def test_widget_talks_to_real_assistant(request: pytest.FixtureRequest, browser: Any) -> None:
    from playwright.sync_api import expect

    try:
        assistant = request.getfixturevalue("assistant")
    except pytest.FixtureLookupError:
        pytest.skip("the `assistant` fixture (real Rasa server) is not in tests/conftest.py yet")
    context = _context(browser)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{assistant.url}/webhooks/webchat/demo")
        page.get_by_role("button", name="Chat met Gentinfo").click()
        bot = page.locator(".msg.from-bot")
        expect(bot.first).to_be_visible()  # the greeting on first open
        before = bot.count()
        page.get_by_role("textbox", name="Stel uw vraag").fill("hallo")
        page.keyboard.press("Enter")
        expect(bot).to_have_count(before + 1)
        expect(bot.last).to_contain_text(re.compile(r"\b(dag|hallo|goeiedag|goedendag|welkom)\b", re.I))
    finally:
        context.close()
