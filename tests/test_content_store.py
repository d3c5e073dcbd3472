"""The content store on SQLite and PostgreSQL: drafts are validated with the CLI's validators, a
publish is a release with who/when, every version is kept, diffs name the change, a rollback
restores an old version, and the loaders (``get_catalogue``, ``get_texts``) serve the newest
release once the polled version number grows, without a restart."""
from __future__ import annotations

import copy
from typing import Iterator

import pytest
import yaml
from sqlalchemy.engine import Engine

from bot.core import catalogue as catalogue_module
from bot.core import content_checks, content_store
from bot.core import texts as texts_module
from bot.core.content_store import ContentError, ContentSource, ContentStore


@pytest.fixture
def store(db_engine: Engine) -> ContentStore:
    return ContentStore(db_engine)


@pytest.fixture
def live_store(db_engine: Engine) -> Iterator[ContentStore]:
    """This process reads published content from the test database (polling every time)."""
    content_store.configure(db_engine, poll_seconds=0)
    yield ContentStore(db_engine)
    content_store.configure(None)


def _with_price(data: dict, product_id: str, price: str) -> dict:
    data = copy.deepcopy(data)
    next(p for p in data["products"] if p["id"] == product_id)["price"] = price
    return data


def _changed(diff: str) -> list:
    return [(line[0], line[1:].strip()) for line in diff.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_nothing_published_means_the_files_count(store: ContentStore) -> None:
    assert store.version() == 0
    assert store.published("catalogue") == content_checks.file_document("catalogue")
    assert "catalogue" in store.names() and "texts" in store.names()


def test_a_valid_draft_publishes_as_a_release_with_author_and_note(store: ContentStore) -> None:
    data = _with_price(store.working("catalogue"), "reispas", "€ 75 (indicatief)")
    assert store.save_draft("catalogue", data, "an") == []
    release = store.publish("an", "reispas duurder")
    assert release.id == store.version() == 1
    assert release.author == "an" and release.note == "reispas duurder" and release.documents == ("catalogue",)
    assert store.drafts() == []
    assert store.published("catalogue") == data
    assert store.releases()[0].id == 1


def test_an_invalid_draft_is_kept_but_cannot_be_published(store: ContentStore) -> None:
    data = _with_price(store.working("catalogue"), "reispas", "75 euro")  # not marked indicatief
    problems = store.save_draft("catalogue", data, "an")
    index = next(i for i, p in enumerate(data["products"]) if p["id"] == "reispas")
    assert [(p.document, p.path) for p in problems] == [("catalogue", ("products", index))]
    assert "indicatief" in problems[0].message
    assert store.draft("catalogue") is not None  # nothing the editor typed is lost
    with pytest.raises(ContentError) as error:
        store.publish("an")
    assert error.value.problems == problems
    assert store.version() == 0


def test_a_broken_field_is_reported_at_its_path(store: ContentStore) -> None:
    data = copy.deepcopy(store.working("catalogue"))
    data["locations"][0]["opening_hours"]["maandag"] = ["17:00-09:00"]
    problems = store.save_draft("catalogue", data, "an")
    assert problems[0].path == ("locations", 0, "opening_hours")
    assert "ends before it starts" in problems[0].message


def _texts_with(store: ContentStore, key: str, text: str) -> dict:
    tree = copy.deepcopy(store.working("texts"))
    section, name = key.split(".", 1)
    tree[section] = {**(tree.get(section) or {}), name: text}
    return tree


@pytest.fixture
def texts_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """A texts file with keys the code 'uses' (the repository's sections may still be empty)."""
    tree = {"common": {"opening": "Bel {gentinfo_phone} om {hour}.", "bye": {"default": "Dag!", "whatsapp": "Dag"}}}
    path = tmp_path / "texts.yml"
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    monkeypatch.setattr(texts_module, "TEXTS_PATH", path)
    texts_module.file_texts.cache_clear()
    yield tree
    texts_module.file_texts.cache_clear()


def test_a_text_may_not_use_a_placeholder_the_code_does_not_fill(store: ContentStore, texts_file: dict) -> None:
    assert store.save_draft("texts", _texts_with(store, "common.opening", "Om {hour}: {gentinfo_email}."), "an") == []
    problems = store.save_draft("texts", _texts_with(store, "common.opening", "Hallo {voornaam}, om {hour}."), "an")
    assert [(p.path, p.message) for p in problems] == [(("common.opening", "default"),
                                                        "onbekende invulplaats {voornaam}")]


def test_a_text_the_assistant_uses_cannot_be_removed_or_emptied(store: ContentStore, texts_file: dict) -> None:
    problems = store.save_draft("texts", {"common": {"opening": "Om {hour}."}}, "an")
    assert [p.path for p in problems] == [("common.bye",)]
    problems = store.save_draft("texts", _texts_with(store, "common.bye", " "), "an")
    assert [(p.path, p.message) for p in problems] == [(("common.bye", "default"), "de tekst is leeg")]


def test_publishing_nothing_is_refused(store: ContentStore) -> None:
    with pytest.raises(ContentError, match="geen wijzigingen"):
        store.publish("an")


def test_every_version_is_kept_diffed_and_rolled_back(store: ContentStore) -> None:
    original = store.working("catalogue")
    store.save_draft("catalogue", _with_price(original, "reispas", "€ 80 (indicatief)"), "an")
    first = store.publish("an", "een")
    store.save_draft("catalogue", _with_price(original, "reispas", "€ 90 (indicatief)"), "bert")
    second = store.publish("bert", "twee")
    diff = store.diff(second.id)
    assert list(diff) == ["catalogue"]
    assert _changed(diff["catalogue"]) == [("-", "price: € 80 (indicatief)"), ("+", "price: € 90 (indicatief)")]

    back = store.rollback(first.id, "admin")
    assert back.rollback_of == first.id and back.id == 3 and back.author == "admin"
    assert store.published("catalogue") == _with_price(original, "reispas", "€ 80 (indicatief)")
    assert [r.id for r in store.releases()] == [3, 2, 1]
    to_files = store.rollback(0, "admin")
    assert store.published("catalogue") == original and to_files.rollback_of == 0
    with pytest.raises(ContentError, match="al de gepubliceerde"):
        store.rollback(0, "admin")
    with pytest.raises(ContentError, match="bestaat niet"):
        store.rollback(99, "admin")


def test_the_draft_diff_shows_the_unpublished_change(store: ContentStore) -> None:
    store.save_draft("catalogue", _with_price(store.working("catalogue"), "rijbewijs", "€ 30 (indicatief)"), "an")
    assert ("+", "price: € 30 (indicatief)") in _changed(store.draft_diff()["catalogue"])
    store.discard_draft("catalogue")
    assert store.draft_diff() == {}


def test_get_catalogue_serves_the_newest_release_without_restart(live_store: ContentStore) -> None:
    before = catalogue_module.get_catalogue()
    assert before.product("reispas").price == catalogue_module.file_catalogue().product("reispas").price
    live_store.save_draft("catalogue", _with_price(live_store.working("catalogue"), "reispas", "€ 99 (indicatief)"), "an")
    live_store.publish("an")
    assert catalogue_module.get_catalogue().product("reispas").price == "€ 99 (indicatief)"
    live_store.rollback(0, "an")
    assert catalogue_module.get_catalogue().product("reispas").price == before.product("reispas").price


def test_get_texts_serves_a_published_text_and_the_published_phone(live_store: ContentStore, texts_file: dict) -> None:
    catalogue = copy.deepcopy(live_store.working("catalogue"))
    catalogue["contact"]["phone"] = "09 123 45 67"
    assert texts_module.say("common.opening", hour="9 uur").startswith("Bel 09 210 10 10")
    live_store.save_draft("texts", _texts_with(live_store, "common.opening", "Om {hour}: bel {gentinfo_phone}."), "an")
    live_store.save_draft("catalogue", catalogue, "an")
    live_store.publish("an")
    assert texts_module.say("common.opening", hour="9 uur") == "Om 9 uur: bel 09 123 45 67."
    live_store.rollback(0, "an")
    assert texts_module.say("common.opening", hour="9 uur") == "Bel 09 210 10 10 om 9 uur."


def test_a_process_sees_a_publish_only_after_its_poll_interval(store: ContentStore) -> None:
    source = ContentSource(store, poll_seconds=3600)
    assert source.get("catalogue", catalogue_module.file_catalogue) is catalogue_module.file_catalogue()
    store.save_draft("catalogue", _with_price(store.working("catalogue"), "reispas", "€ 77 (indicatief)"), "an")
    store.publish("an")
    assert source.version() == 0  # the cheap check waits for the interval ...
    source.poll_seconds = 0
    assert source.get("catalogue", catalogue_module.file_catalogue).product("reispas").price == "€ 77 (indicatief)"


def test_a_broken_database_keeps_the_last_good_content(tmp_path) -> None:
    from bot.core import db

    engine = db.make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    db.create_schema(engine)
    store = ContentStore(engine)
    store.save_draft("catalogue", _with_price(store.working("catalogue"), "reispas", "€ 66 (indicatief)"), "an")
    store.publish("an")
    source = ContentSource(store, poll_seconds=0)
    assert source.get("catalogue", catalogue_module.file_catalogue).product("reispas").price == "€ 66 (indicatief)"
    with engine.begin() as connection:
        connection.exec_driver_sql("drop table content_documents")
        connection.exec_driver_sql("drop table content_releases")
    assert source.get("catalogue", catalogue_module.file_catalogue).product("reispas").price == "€ 66 (indicatief)"


def test_topic_refs_find_products_and_knowledge_topics(store: ContentStore) -> None:
    refs = content_checks.topic_refs(store.working_set())
    assert refs["reispas"].document == "catalogue" and refs["reispas"].list_key == "products"
    knowledge = [r for r in refs.values() if r.document.startswith("knowledge/")]
    assert knowledge and all(r.list_key == "topics" for r in knowledge)
