"""Unanswered questions: personal data is gone before the row is written, rows expire, similar
questions cluster together (largest first), and a cluster becomes synonyms or a new topic as a
draft in the content store (on SQLite and PostgreSQL)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.core import unanswered
from bot.core.content_store import ContentError, ContentStore
from bot.core.db import unanswered_questions
from bot.core.unanswered import scrub

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, expected", [
    ("Mijn nummer is 0470 12 34 56, bel me", "Mijn nummer is [telefoonnummer], bel me"),
    ("bel +32 9 210 10 10 of 0032470123456", "bel [telefoonnummer] of [telefoonnummer]"),
    ("mail naar jan.peeters@telenet.be aub", "mail naar [e-mail] aub"),
    ("mijn rijksregisternummer 85.07.30-033.28 klopt niet", "mijn rijksregisternummer [rijksregisternummer] klopt niet"),
    ("rrn 85073003328?", "rrn [rijksregisternummer]?"),
    ("geboren in 2000: 00.01.01-001.05", "geboren in 2000: [rijksregisternummer]"),
    ("stort op BE68 5390 0754 7034 en dan?", "stort op [iban] en dan?"),
    ("NL91ABNA0417164300 is mijn rekening", "[iban] is mijn rekening"),
    ("Ik ben Jan Van den Bossche en ik wil een reispas", "Ik ben [naam] en ik wil een reispas"),
    ("mijn naam is sofie peeters en ik woon in gent", "mijn naam is [naam] en ik woon in gent"),
    ("Ik heet Fatima. Waar is het stadskantoor?", "Ik heet [naam]. Waar is het stadskantoor?"),
    ("kaartnummer 1234 5678 9012 3456", "kaartnummer [nummer]"),
])
def test_personal_data_is_removed(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize("text", [
    "ik ben mijn paspoort kwijt",
    "hoeveel kost een reispas in 2026?",
    "is het stadskantoor open op 24/12?",
    "ik woon in de Sint-Pietersnieuwstraat 25, 9000 Gent",
    "BE68 5390 0754 7035 is geen geldig nummer",  # wrong IBAN checksum: only the long digit run goes
])
def test_ordinary_questions_stay_readable(text: str) -> None:
    cleaned = scrub(text)
    if "7035" in text:
        assert cleaned == "BE[nummer] is geen geldig nummer"
    else:
        assert cleaned == text


def test_the_stored_row_never_holds_the_raw_personal_data(db_engine: Engine) -> None:
    question_id = unanswered.record(db_engine, "Ik ben Jan, mijn gsm is 0470 12 34 56, mail jan@x.be",
                                    channel="whatsapp", reason="fallback", now=NOW)
    with db_engine.connect() as connection:
        row = connection.execute(select(unanswered_questions).where(unanswered_questions.c.id == question_id)).one()
    assert row.text == "Ik ben [naam], mijn gsm is [telefoonnummer], mail [e-mail]"
    assert row.channel == "whatsapp" and row.reason == "fallback" and row.status == "open"


def test_button_payloads_empty_texts_and_unknown_reasons_are_not_stored(db_engine: Engine) -> None:
    assert unanswered.record(db_engine, "/greet", channel="telegram", reason="fallback") is None
    assert unanswered.record(db_engine, "   ", channel="telegram", reason="fallback") is None
    with pytest.raises(ValueError):
        unanswered.record(db_engine, "iets", channel="telegram", reason="verzonnen")


def test_questions_expire_after_the_retention_period(db_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(unanswered.RETENTION_ENV, "30")
    unanswered.record(db_engine, "oude vraag over de markt", channel="webchat", reason="fallback", now=NOW - timedelta(days=31))
    unanswered.record(db_engine, "nieuwe vraag over de markt", channel="webchat", reason="fallback", now=NOW - timedelta(days=29))
    assert unanswered.purge(db_engine, now=NOW) == 1
    assert [p for c in unanswered.clusters(db_engine, now=NOW) for p, _ in c.phrasings] == ["nieuwe vraag over de markt"]


GROFVUIL = ["wanneer wordt grofvuil opgehaald", "grofvuil ophalen wanneer", "Wanneer halen ze grofvuil op?",
            "grof vuil laten ophalen", "grofvuil ophaling aanvragen"]
HONDEN = ["hondenbelasting betalen", "moet ik belasting betalen voor mijn hond", "hondenbelasting gent"]
OTHER = ["waar kan ik schaatsen in de winter"]


def _seed(engine: Engine) -> None:
    for text in [*GROFVUIL, *HONDEN, *OTHER, GROFVUIL[0]]:
        unanswered.record(engine, text, channel="webchat", reason="no_clear_winner", now=NOW)


def test_similar_questions_cluster_together_largest_first(db_engine: Engine) -> None:
    _seed(db_engine)
    found = unanswered.clusters(db_engine, now=NOW)
    assert [c.size for c in found] == [6, 3, 1]
    assert {p for p, _ in found[0].phrasings} == set(GROFVUIL)
    assert found[0].phrasings[0] == (GROFVUIL[0], 2)  # the most asked phrasing first
    assert {p for p, _ in found[1].phrasings} == set(HONDEN)
    assert dict(found[0].reasons) == {"no_clear_winner": 6}


def test_a_cluster_becomes_synonyms_of_a_topic_in_a_draft(db_engine: Engine) -> None:
    store = ContentStore(db_engine)
    _seed(db_engine)
    unanswered.record(db_engine, "reispas bel 0470 12 34 56", channel="webchat", reason="fallback", now=NOW)
    cluster = unanswered.clusters(db_engine, now=NOW)[1]
    document, added, problems = unanswered.add_as_synonyms(db_engine, store, cluster.question_ids, "reispas", "an")
    assert document == "catalogue" and problems == []
    assert sorted(added) == sorted(HONDEN)  # none of them is a known term yet
    draft = store.draft("catalogue")
    assert draft is not None and draft.author == "an"
    synonyms = next(p for p in draft.data["products"] if p["id"] == "reispas")["synonyms"]
    assert synonyms[-3:] == added
    assert store.version() == 0  # nothing reaches citizens before a publish
    remaining = unanswered.clusters(db_engine, now=NOW)
    assert all(set(c.question_ids).isdisjoint(cluster.question_ids) for c in remaining)
    rows = unanswered.questions(db_engine, cluster.question_ids)
    assert {(r["status"], r["resolved_topic"], r["resolved_by"]) for r in rows} == {("used", "reispas", "an")}


def test_scrubbed_phrasings_and_known_synonyms_are_not_added(db_engine: Engine) -> None:
    store = ContentStore(db_engine)
    ids = [unanswered.record(db_engine, text, channel="webchat", reason="fallback", now=NOW)
           for text in ("reispas bel 0470 12 34 56", "paspoort", "Paspoort?")]
    _, added, _ = unanswered.add_as_synonyms(db_engine, store, [i for i in ids if i], "reispas", "an")
    assert added == []  # "paspoort" is already a synonym of reispas; the phone one is scrubbed


def test_an_unknown_topic_is_refused(db_engine: Engine) -> None:
    with pytest.raises(ContentError):
        unanswered.add_as_synonyms(db_engine, ContentStore(db_engine), [1], "bestaat_niet", "an")


def test_a_cluster_starts_a_new_topic_that_needs_an_answer_before_publishing(db_engine: Engine) -> None:
    store = ContentStore(db_engine)
    _seed(db_engine)
    cluster = unanswered.clusters(db_engine, now=NOW)[0]
    document, topic_id, problems = unanswered.new_topic(db_engine, store, cluster.question_ids, "afval", "an")
    assert document == "knowledge/afval" and topic_id == "wanneer_wordt_grofvuil_opgehaald"
    topic = next(t for t in store.draft(document).data["topics"] if t["id"] == topic_id)
    assert topic["title"] == "Wanneer wordt grofvuil opgehaald" and set(topic["synonyms"]) == {t.rstrip("?") for t in GROFVUIL}
    assert topic["answer"] == ""
    if problems:  # with the knowledge loader merged, the empty answer and url are reported
        assert {p.document for p in problems} == {"knowledge/afval"}
    with pytest.raises(ContentError):
        unanswered.new_topic(db_engine, store, cluster.question_ids, "verzonnen", "an")
