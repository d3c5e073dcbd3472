"""The long-tail search: one answer for a clear winner, three buttons when close, "which one?" for
two subjects, nothing for nonsense; typos, long messages, and new synonyms without retraining.

Most cases use the shipped knowledge (catalogue + burgerzaken.yml); the reload and report cases use
a small knowledge directory written by the test, so they do not depend on other content files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from bot.core import knowledge, search
from bot.core.knowledge import load
from bot.core.knowledge_answers import decision_answer, topic_answer, topic_aspect
from bot.core.search import SearchIndex


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    return SearchIndex(load())


def decided(index: SearchIndex, text: str) -> tuple:
    decision = index.decide(text)
    return decision.kind, [hit.entry.id for hit in decision.hits]


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("mijn paspoort is gestolen", "reispas_verloren"),
        ("mijn portefeuille is gestolen met mijn id kaart erin", "verlies_identiteitskaart"),
        ("ik wil een zaak starten in gent", "startende_ondernemer"),
        ("bewijs van nationaliteit", "attest_nationaliteit"),
        ("ik wil mijn voornaam veranderen", "voornaam_wijzigen"),
        ("hoeveel kost een paspoort", "reispas"),
    ],
)
def test_a_clear_winner_gets_one_answer(index: SearchIndex, text: str, topic: str) -> None:
    assert decided(index, text) == ("answer", [topic])


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("identitijtskaart vernieuwen", "identiteitskaart"),
        ("mijn paspoord is gestoolen", "reispas_verloren"),
        ("voornaamswijzging", "voornaam_wijzigen"),
    ],
)
def test_typos_are_corrected_to_the_index_vocabulary(index: SearchIndex, text: str, topic: str) -> None:
    assert decided(index, text) == ("answer", [topic])


def test_a_vague_word_offers_the_three_best_as_buttons(index: SearchIndex) -> None:
    kind, ids = decided(index, "attest")
    assert kind == "choose" and len(ids) == 3
    assert {"attest_woonst", "attest_nationaliteit"} <= set(ids) | {"attest_gezinssamenstelling"}


@pytest.mark.parametrize(
    "text", ["qwerty asdf", "wat is de hoofdstad van Peru", "hoe laat is het", "en hoeveel kost dat?", "", "???"]
)
def test_nonsense_and_foreign_questions_get_no_topic(index: SearchIndex, text: str) -> None:
    assert decided(index, text) == ("none", [])


def test_two_subjects_in_one_question_ask_which(index: SearchIndex) -> None:
    kind, ids = decided(index, "ik wil verhuizen en ook een nieuwe reispas")
    assert kind == "mixed" and set(ids) == {"adreswijziging", "reispas"}


def test_a_long_rambling_message_is_answered_on_its_main_topic(index: SearchIndex) -> None:
    text = (
        "Goeiedag, ik ben vorige week verhuisd naar Gent en gisteren is op de tram mijn portefeuille gestolen "
        "met mijn identiteitskaart en bankkaart erin. Ik moet volgende week op reis voor mijn werk en ik weet "
        "echt niet wat ik nu allemaal moet doen, kunt u mij helpen?"
    )
    assert decided(index, text) == ("answer", ["verlies_identiteitskaart"])


# -- a knowledge directory written by the test ----------------------------------------------------
def topic(id: str, title: str, synonyms: List[str], **extra: Any) -> Dict[str, Any]:
    return {"id": id, "title": title, "synonyms": synonyms, "answer": f"Uitleg over {title.lower()}.",
            "url": f"https://stad.gent/nl/{id}", "owner": "Stad Gent", "checked": "2026-12-02", **extra}


def write(directory: Path, domain: str, topics: List[Dict[str, Any]]) -> None:
    (directory / f"{domain}.yml").write_text(
        yaml.safe_dump({"domain": domain, "title": domain, "topics": topics}, allow_unicode=True), encoding="utf-8")


@pytest.fixture
def knowledge_dir(tmp_path: Path, monkeypatch) -> Path:
    write(tmp_path, "meldingen", [
        topic("melding_straatlamp", "Kapotte straatlamp", ["straatlamp kapot", "straatverlichting", "lantaarnpaal"],
              kind="report", bring=["het adres of het nummer van de paal"]),
        topic("kafka_voorstel", "Idee om iets eenvoudiger te maken", ["vereenvoudiging", "kafka"], kind="suggestion"),
    ])
    write(tmp_path, "huisdieren", [topic("kat_kwijt", "Kat kwijt of gevonden", ["kat verloren", "zwerfkat"])])
    write(tmp_path, "elsewhere", [
        topic("pensioen", "Pensioen", ["wanneer krijg ik mijn pensioen"], kind="elsewhere",
              elsewhere="de Federale Pensioendienst"),
    ])
    monkeypatch.setattr(knowledge, "KNOWLEDGE_DIR", tmp_path)
    search.reload()
    yield tmp_path
    monkeypatch.undo()
    search.reload()


def test_a_new_synonym_works_after_reload_without_retraining(knowledge_dir: Path) -> None:
    assert search.search("mijn poes is weggelopen").kind == "none"
    write(knowledge_dir, "huisdieren", [topic("kat_kwijt", "Kat kwijt of gevonden", ["kat verloren", "poes weggelopen"])])
    search.reload()
    decision = search.search("mijn poes is weggelopen")
    assert (decision.kind, decision.best.entry.id) == ("answer", "kat_kwijt")


def test_a_changed_file_is_picked_up_by_the_next_search(knowledge_dir: Path) -> None:
    import os

    search.get_index()
    path = knowledge_dir / "huisdieren.yml"
    write(knowledge_dir, "huisdieren", [topic("kat_kwijt", "Kat kwijt of gevonden", ["cavia ontsnapt"])])
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))
    assert search.search("mijn cavia is ontsnapt").best.entry.id == "kat_kwijt"


def test_a_report_answer_says_what_to_include_and_where(knowledge_dir: Path) -> None:
    index = search.get_index()
    decision = index.decide("de straatlamp voor mijn deur is kapot")
    assert decision.best.entry.id == "melding_straatlamp"
    answer = decision_answer(index.knowledge, decision)
    assert "Vermeld in uw melding:" in answer.text and "nummer van de paal" in answer.text
    assert "https://stad.gent/nl/melding_straatlamp" in answer.text


def test_a_suggestion_answer_offers_the_kafka_form(knowledge_dir: Path) -> None:
    index = search.get_index()
    answer = topic_answer(index.knowledge, index.knowledge.entry("kafka_voorstel").topic)
    assert answer.buttons[0]["payload"] == "/kafka_suggestion"


def test_a_topic_the_city_does_not_handle_says_who_does(knowledge_dir: Path) -> None:
    index = search.get_index()
    decision = index.decide("wanneer krijg ik mijn pensioen")
    answer = decision_answer(index.knowledge, decision)
    assert "niet zelf" in answer.text and "Federale Pensioendienst" in answer.text


def test_choice_buttons_lead_to_the_topic_or_the_product(index: SearchIndex) -> None:
    answer = decision_answer(index.knowledge, index.decide("attest"))
    payloads = [button["payload"] for button in answer.buttons]
    assert '/ask_product_info{"product": "attest_woonst"}' in payloads or any(
        p.startswith('/ask_city{"topic": ') for p in payloads)
    assert all(p.startswith(("/ask_product_info{", "/ask_city{")) for p in payloads)


def test_a_price_follow_up_without_a_price_says_so_and_links(index: SearchIndex) -> None:
    topic_ = index.knowledge.entry("stemmen_volmacht").topic
    assert "Gratis" in topic_aspect(index.knowledge, topic_, "price").text
    no_price = topic_.copy(update={"price": None})
    text = topic_aspect(index.knowledge, no_price, "price").text
    assert "geen prijs" in text and str(topic_.url) in text
