"""The content studio in a real browser (Debian's Chromium through Playwright): an editor edits a
topic, sees the error next to the field, previews the draft, publishes, and this process's
``get_catalogue()`` serves the new text; an admin rolls back; an agent can only read; script typed
into every editable field (and into a citizen's question) stays text everywhere it is shown.

Saves ``tests/artifacts/studio-*.png``.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Iterator, List

import pytest
import yaml

from bot.core import catalogue as catalogue_module
from bot.core import content_store, db, insights, unanswered
from bot.core import texts as texts_module
from bot.core.content_store import ContentStore
from tests.test_console_api import PASSWORDS
from tests.test_console_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.test_studio_api import Studio

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
LINK_XSS = 'https://stad.gent/"><img/src=x/onerror=window.__xss=3>'


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} not found (CI must install Debian's chromium)")
        pytest.skip(f"{CHROMIUM} not found (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def studio(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Studio]:
    """Production cookies (Secure, __Host-), SQLite, and a texts file with keys to edit."""
    tree = {"common": {"greeting": {"default": "Dag! Hoe kan ik helpen?", "whatsapp": "Dag!"}}}
    path = tmp_path / "texts.yml"
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    monkeypatch.setattr(texts_module, "TEXTS_PATH", path)
    texts_module.file_texts.cache_clear()
    engine = db.make_engine(f"sqlite:///{tmp_path / 'studio.db'}")
    db.create_schema(engine)
    content_store.configure(engine, poll_seconds=0)
    running = Studio(engine, redis_url, secure_cookie=True).start()
    yield running
    running.stop()
    content_store.configure(None)
    texts_module.file_texts.cache_clear()
    engine.dispose()


def _page(browser, studio: Studio, user: str):  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
    problems: List[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(studio.url + "/")
    expect(page).to_have_url(studio.url + "/login")
    page.get_by_label("Gebruikersnaam").fill(user)
    page.get_by_label("Wachtwoord").fill(PASSWORDS[user])
    page.keyboard.press("Enter")
    expect(page).to_have_url(studio.url + "/")
    page.problems = problems  # type: ignore[attr-defined]
    return page


def _open_topic(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("button", name="Onderwerpen").click()
    page.get_by_label("Zoek een onderwerp").fill(name)
    page.locator("#onderwerpen button", has_text=name).first.click()


def _no_script_ran(page) -> None:  # type: ignore[no-untyped-def]
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img, main script").count() == 0


def test_edit_preview_publish_serve_and_roll_back(chromium, studio: Studio) -> None:
    from playwright.sync_api import expect

    page = _page(chromium, studio, "an")
    _open_topic(page, "Reispas")
    expect(page.locator("#onderwerp-titel")).to_have_text("Reispas")
    page.get_by_label("Prijs").fill("88 euro")
    page.get_by_role("button", name="Concept bewaren").click()
    expect(page.locator("#onderwerp-price-fout")).to_contain_text("indicatief")  # next to the field
    expect(page.locator("#melding")).to_contain_text("nog fouten")
    page.get_by_label("Prijs").fill("€ 88 (indicatief)")
    page.get_by_label("Antwoord").fill("Een reispas vraagt u aan in het Stadskantoor, met afspraak.")
    page.get_by_role("button", name="Concept bewaren").click()
    expect(page.locator("#melding")).to_have_text("Concept bewaard. Klaar om te publiceren.")
    expect(page.locator("#onderwerp-price-fout")).to_have_text("")
    expect(page.locator("#concepten")).to_have_text("(1)")

    page.get_by_role("button", name="Voorbeeld").click()
    page.get_by_label("Vraag aan de assistent (met het concept)").fill("hoeveel kost een reispas?")
    page.get_by_role("button", name="Vraag", exact=True).click()
    expect(page.locator("#antwoord")).to_contain_text("€ 88 (indicatief)")
    assert catalogue_module.get_catalogue().product("reispas").price != "€ 88 (indicatief)"  # still a draft

    page.get_by_role("button", name="Publiceren").first.click()
    expect(page.locator("#wijzigingen")).to_contain_text("€ 88 (indicatief)")
    page.get_by_label("Wat is er veranderd?").fill("Nieuwe prijs reispas")
    page.locator("#publiceer").click()
    expect(page.locator("#melding")).to_contain_text("Versie 1 is gepubliceerd")
    expect(page.locator("#versie")).to_have_text("Gepubliceerde versie 1")
    assert catalogue_module.get_catalogue().product("reispas").price == "€ 88 (indicatief)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "studio-publish.png"), full_page=True)

    page.get_by_role("button", name="Versies").click()
    expect(page.locator("#versies tr")).to_have_count(2)  # version 1 and the files (0)
    expect(page.locator("#versies")).to_contain_text("Nieuwe prijs reispas")
    assert page.get_by_role("button", name="Terugzetten naar versie 0").count() == 0  # editors do not roll back
    admin = _page(chromium, studio, "bert")
    admin.get_by_role("button", name="Versies").click()
    admin.get_by_role("button", name="Wijzigingen van versie 1").click()
    expect(admin.locator("#versie-diff")).to_contain_text("€ 88 (indicatief)")
    assert admin.get_by_role("button", name="Terugzetten naar versie 1").count() == 0  # it is online
    admin.get_by_role("button", name="Terugzetten naar versie 0").click()
    expect(admin.locator("#melding")).to_contain_text("Versie 0 staat terug online (als versie 2)")
    expect(admin.locator("#versies tr")).to_have_count(3)
    assert catalogue_module.get_catalogue().product("reispas").price == catalogue_module.file_catalogue().product("reispas").price
    admin.get_by_role("button", name="Terugzetten naar versie 1").click()  # and forward again, one click
    expect(admin.locator("#melding")).to_contain_text("Versie 1 staat terug online (als versie 3)")
    assert catalogue_module.get_catalogue().product("reispas").price == "€ 88 (indicatief)"
    assert page.problems == [] and admin.problems == [], (page.problems, admin.problems)  # type: ignore[attr-defined]


def test_an_agent_can_read_but_not_change(chromium, studio: Studio) -> None:
    from playwright.sync_api import expect

    page = _page(chromium, studio, "agent01")
    expect(page.locator("#rol")).to_have_text("agent")
    _open_topic(page, "Reispas")
    expect(page.get_by_label("Prijs")).to_have_attribute("readonly", "")
    expect(page.get_by_role("button", name="Concept bewaren")).to_be_hidden()
    page.get_by_role("button", name="Publiceren").first.click()
    expect(page.locator("#publiceer")).to_be_hidden()
    refused = page.evaluate("""async () => (await fetch('/api/topics/reispas', {method: 'PUT',
        headers: {'Content-Type': 'application/json',
                  'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content},
        body: JSON.stringify({fields: {price: '€ 1 (indicatief)'}})})).status""")
    assert refused == 403
    assert [p for p in page.problems if "403" not in p] == []  # type: ignore[attr-defined]


def test_script_in_every_editable_field_stays_text(chromium, studio: Studio) -> None:
    from playwright.sync_api import expect

    unanswered.record(studio.engine, f"{XSS} waar is het zwembad", channel="webchat", reason="fallback")
    insights.record(studio.engine, "topic", key=XSS)
    insights.record(studio.engine, "kafka_report", key=XSS)
    page = _page(chromium, studio, "bert")

    _open_topic(page, "Reispas")
    form = page.locator("#onderwerp-form")
    for label in ("Titel", "Antwoord", "Synoniemen (één per regel)", "Prijs", "Mee te brengen documenten (één per regel)",
                  "Voor wie", "Levering"):
        form.get_by_label(label, exact=True).fill(f"{XSS} {label}" + (" (indicatief)" if label == "Prijs" else ""))
    form.get_by_label("Link", exact=True).fill(f"https://stad.gent/{XSS}")
    form.get_by_role("button", name="Concept bewaren").click()
    expect(page.locator("#onderwerp-url-fout")).to_contain_text('onerror="window.__xss=1"')  # the validator echoes it
    form.get_by_label("Link", exact=True).fill(LINK_XSS)  # a valid URL that still carries markup
    form.get_by_role("button", name="Concept bewaren").click()
    expect(page.locator("#melding")).to_have_text("Concept bewaard. Klaar om te publiceren.")
    _open_topic(page, "<img")
    expect(page.locator("#onderwerp-titel")).to_have_text(f"{XSS} Titel")
    _no_script_ran(page)

    page.get_by_role("button", name="Locaties en sluitingsdagen").click()
    page.locator("#locaties button", has_text="Wijkkantoor Rabot").click()
    for label in ("Naam", "Adres", "Zonder afspraak"):
        page.locator("#locatie-form").get_by_label(label, exact=True).fill(f"{XSS} {label}")
    page.locator("#locatie-form button[type=submit]").click()
    expect(page.locator("#melding")).to_have_text("Concept bewaard. Klaar om te publiceren.")
    page.get_by_role("button", name="Dag toevoegen").click()
    new_row = page.locator("#sluitingsdagen tr").last
    new_row.locator('[name="date"]').fill("2026-12-25")
    new_row.locator('[name="reason"]').fill(XSS)
    number = page.locator("#sluitingsdagen tr").count()
    page.locator("#sluitingsdagen-form button[type=submit]").click()
    expect(page.locator("#melding")).to_have_text("Concept bewaard. Klaar om te publiceren.")
    page.get_by_role("button", name="Locaties en sluitingsdagen").click()
    expect(page.get_by_label(f"Reden {number}", exact=True)).to_have_value(XSS)
    _no_script_ran(page)

    page.get_by_role("button", name="Teksten").click()
    page.get_by_label("common.greeting – Alle kanalen").fill(f"{XSS} dag")
    page.locator("#teksten form button[type=submit]").click()
    expect(page.locator("#melding")).to_have_text("Concept bewaard. Klaar om te publiceren.")

    page.get_by_role("button", name="Voorbeeld").click()
    page.get_by_label("Vraag aan de assistent (met het concept)").fill("wanneer is wijkkantoor rabot open")
    page.get_by_role("button", name="Vraag", exact=True).click()
    expect(page.locator("#antwoord")).to_contain_text(f"{XSS} Naam")
    page.get_by_label("Vraag aan de assistent (met het concept)").fill("wat kost een reispas")
    page.get_by_role("button", name="Vraag", exact=True).click()
    expect(page.locator("#antwoord")).to_contain_text(LINK_XSS)

    page.get_by_role("button", name="Publiceren").first.click()
    expect(page.locator("#wijzigingen")).to_contain_text("onerror")
    page.get_by_label("Wat is er veranderd?").fill(XSS)
    page.locator("#publiceer").click()
    expect(page.locator("#melding")).to_contain_text("gepubliceerd")
    page.get_by_role("button", name="Versies").click()
    expect(page.locator("#versies")).to_contain_text(XSS)

    page.get_by_role("button", name="Onbeantwoorde vragen").click()
    expect(page.locator("#clusters")).to_contain_text("waar is het zwembad")
    page.get_by_role("button", name="Inzichten").click()
    expect(page.locator("#grafiek-onderwerpen")).to_contain_text("<img")
    expect(page.locator("#grafiek-kafka")).to_contain_text("<img")
    page.screenshot(path=str(ARTIFACTS / "studio-insights.png"), full_page=True)
    _no_script_ran(page)
    assert catalogue_module.get_catalogue().product("reispas").name == f"{XSS} Titel"  # stored as typed, shown as text
    assert page.problems == [], page.problems  # type: ignore[attr-defined]


def test_unanswered_question_to_synonym_answers_after_publish(chromium, studio: Studio) -> None:
    from playwright.sync_api import expect

    for text in ("callcenter van de stad", "het callcenter van de stad?", "mijn naam is Jan, callcenter van stad gent"):
        unanswered.record(studio.engine, text, channel="webchat", reason="fallback")
    page = _page(chromium, studio, "an")
    page.get_by_role("button", name="Onbeantwoorde vragen").click()
    cluster = page.locator("#clusters li.cluster").first
    expect(cluster).to_contain_text("3 vragen")
    expect(cluster).to_contain_text("mijn naam is [naam], callcenter van stad gent")  # scrubbed before storage
    cluster.get_by_label("Als synoniemen toevoegen aan onderwerp (id)").fill("gentinfo")
    cluster.get_by_role("button", name="Synoniemen toevoegen").click()
    expect(page.locator("#melding")).to_contain_text("toegevoegd aan gentinfo")
    page.get_by_role("button", name="Publiceren").first.click()
    page.locator("#publiceer").click()
    expect(page.locator("#melding")).to_contain_text("gepubliceerd")
    assert catalogue_module.get_catalogue().find_product("het callcenter van de stad").id == "gentinfo"
    assert page.problems == []  # type: ignore[attr-defined]


def test_a_published_price_reaches_the_assistant_on_the_rest_channel(chromium, studio: Studio, trained_model) -> None:
    """The real action server and Rasa server read the studio's database (GENTINFO_CONTENT_STORE=1):
    a publish changes their answer without restart or retraining; a rollback changes it back."""
    from playwright.sync_api import expect

    from tests.assistant import start_assistant

    env = {"GENTINFO_DATABASE_URL": str(studio.engine.url), "GENTINFO_CONTENT_STORE": "1",
           "GENTINFO_CONTENT_POLL_SECONDS": "0.5"}
    running = start_assistant(trained_model, env)
    try:
        original = catalogue_module.file_catalogue().product("reispas").price
        assert original in running.texts("studio-e2e-1", "hoeveel kost een reispas?")

        page = _page(chromium, studio, "an")
        _open_topic(page, "Reispas")
        page.locator("#onderwerp-form").get_by_label("Prijs", exact=True).fill("€ 77 (indicatief, studio)")
        page.get_by_role("button", name="Concept bewaren").click()
        expect(page.locator("#melding")).to_have_text("Concept bewaard. Klaar om te publiceren.")
        assert original in running.texts("studio-e2e-2", "hoeveel kost een reispas?")  # a draft is not served
        page.get_by_role("button", name="Publiceren").first.click()
        page.locator("#publiceer").click()
        expect(page.locator("#melding")).to_contain_text("Versie 1 is gepubliceerd")

        def answer_contains(text: str, sender: str) -> bool:
            deadline = time.monotonic() + 15  # the processes poll the version every 0.5 s
            while time.monotonic() < deadline:
                if text in running.texts(sender, "hoeveel kost een reispas?"):
                    return True
                time.sleep(0.3)
            return False

        assert answer_contains("€ 77 (indicatief, studio)", "studio-e2e-3")
        ContentStore(studio.engine).rollback(0, "bert")  # (the API's rollback is tested above)
        assert answer_contains(original, "studio-e2e-4")
        assert page.problems == []  # type: ignore[attr-defined]
    finally:
        running.stop()
