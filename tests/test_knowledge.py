"""The knowledge files load and validate; every broken file is refused with a message that names it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from bot.core import knowledge
from bot.core.knowledge import Kind, KnowledgeError, load, main, sentence_count


def topic(**overrides: Any) -> Dict[str, Any]:
    base: Dict[str, Any] = {
        "id": "testtopic", "title": "Testonderwerp", "synonyms": ["proefje"],
        "answer": "Een kort antwoord. Nog een zin.", "url": "https://stad.gent/nl/test",
        "owner": "Dienst Test", "checked": "2026-12-02",
    }
    base.update(overrides)
    return base


def write(directory: Path, name: str, topics: List[Dict[str, Any]], domain: str = "") -> Path:
    path = directory / f"{name}.yml"
    path.write_text(yaml.safe_dump({"domain": domain or name, "title": "Test", "topics": topics}),
                    encoding="utf-8")
    return path


def test_the_shipped_knowledge_validates(capsys) -> None:
    assert main(["validate"]) == 0
    assert "knowledge OK" in capsys.readouterr().out


def test_catalogue_products_and_topics_are_one_list_of_entries() -> None:
    loaded = load()
    assert loaded.entry("reispas").product is not None  # from the catalogue, not copied
    assert loaded.entry("reispas_verloren").topic is not None
    assert loaded.entry("reispas_verloren").domain == "burgerzaken"
    assert len(loaded.entries) == len(loaded.catalogue.products) + len(loaded.topics())


def test_a_valid_directory_loads_with_defaults(tmp_path: Path) -> None:
    write(tmp_path, "afval", [topic(related=["reispas"])])
    loaded = load(tmp_path)
    only = loaded.entry("testtopic").topic
    assert only.kind is Kind.info and only.related == ["reispas"]


@pytest.mark.parametrize(
    ("topics", "domain", "problem"),
    [
        ([topic(), topic(title="Ander")], "afval", "also in"),
        ([topic(id="reispas")], "afval", "also in catalogue"),
        ([topic(related=["bestaat_niet"])], "afval", "unknown related"),
        ([topic(answer="Een. Twee. Drie. Vier.")], "afval", "4 sentences"),
        ([topic(answer="")], "afval", "empty"),
        ([topic(answer="Kijk op https://stad.gent.")], "afval", "link"),
        ([topic(url="http://stad.gent/nl/test")], "afval", "https"),
        ([topic(kind="elsewhere")], "elsewhere", "who handles it"),
        ([topic(kind="rumour")], "afval", "kind"),
        ([topic(id="Met Spaties")], "afval", "snake_case"),
        ([topic(title="Een titel die veel te lang is voor een knop op het scherm")], "afval", "title"),
        ([topic(synonym=["typfout in de sleutel"])], "afval", "extra fields"),
        ([topic(appointment="misschien")], "afval", "appointment"),
    ],
)
def test_a_broken_file_is_refused(tmp_path: Path, topics, domain: str, problem: str, capsys) -> None:
    write(tmp_path, domain, topics)
    if problem == "also in":  # a duplicate across two files
        write(tmp_path, "wonen", [topic()])
        write(tmp_path, domain, [topic(id="iets_anders")] + topics[1:])
    assert main(["validate", str(tmp_path)]) == 1
    assert problem in capsys.readouterr().err


def test_the_domain_must_equal_the_file_name(tmp_path: Path) -> None:
    write(tmp_path, "afval", [topic()], domain="wonen")
    with pytest.raises(KnowledgeError, match="must equal the file name"):
        load(tmp_path)


def test_an_unknown_domain_file_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "sport", [topic()])
    with pytest.raises(KnowledgeError, match="unknown domain"):
        load(tmp_path)


def test_a_yaml_syntax_error_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "afval.yml").write_text("domain: afval\ntopics: [\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match="afval.yml"):
        load(tmp_path)


def test_a_shared_synonym_is_a_warning_not_an_error(tmp_path: Path, capsys) -> None:
    write(tmp_path, "afval", [topic(synonyms=["paspoort"])])  # also a synonym of the catalogue's reispas
    assert main(["validate", str(tmp_path)]) == 0
    assert "'paspoort' is a term of both reispas and testtopic" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Een zin.", 1),
        ("Een zin. Nog een zin! En een vraag?", 3),
        ("Breng bv. een foto mee. Dat is alles.", 2),
        ("Prijs: € 2,20 per rol. Zo.", 2),
        ("Zonder punt op het einde", 1),
    ],
)
def test_sentences_are_counted_without_abbreviations(text: str, count: int) -> None:
    assert sentence_count(text) == count


def test_reload_reads_the_files_again(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path, "afval", [topic()])
    monkeypatch.setattr(knowledge, "load", lambda: load(tmp_path))
    assert knowledge.reload().entry("testtopic") is not None
    write(tmp_path, "afval", [topic(id="tweede")])
    assert knowledge.reload().entry("tweede") is not None
    knowledge.get_knowledge.cache_clear()
