"""The KAFKA register on real SQLite and PostgreSQL: references, validation, privacy, retention, exports."""
from __future__ import annotations

import csv
import io
import json
import re
import threading
from datetime import date, datetime, timedelta, timezone
from typing import Any, List

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.core import kafka
from bot.core.kafka import Filters, KafkaRegister, Status
from tests.clock import Clock

PROBLEM = "Ik moet drie keer hetzelfde attest indienen."
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc))


@pytest.fixture
def register(db_engine: Engine, clock: Clock) -> KafkaRegister:
    return KafkaRegister(db_engine, clock=clock)


# -- references --------------------------------------------------------------------------------------
def test_concurrent_filings_get_unique_consecutive_references(db_engine: Engine) -> None:
    register = KafkaRegister(db_engine)
    threads_count = 100
    start = threading.Barrier(threads_count)
    references: List[str] = []
    errors: List[BaseException] = []

    def file_one(index: int) -> None:
        try:
            start.wait()
            references.append(register.file_suggestion(f"{PROBLEM} Melding {index}").reference)
        except BaseException as error:  # noqa: BLE001 - collected and reported below
            errors.append(error)

    threads = [threading.Thread(target=file_one, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    year = datetime.now(kafka.CITY_TZ).year
    assert all(re.fullmatch(rf"KAFKA-{year}-\d{{6}}", ref) for ref in references)
    assert sorted(int(ref.rsplit("-", 1)[1]) for ref in references) == list(range(1, threads_count + 1))
    assert register.count() == threads_count


def test_reference_year_follows_the_ghent_calendar_and_numbering_restarts_per_year(
    register: KafkaRegister, clock: Clock
) -> None:
    clock.now = datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc)  # already 1 January 2027 in Ghent
    assert register.file_suggestion(PROBLEM).reference == "KAFKA-2027-000001"
    clock.now = datetime(2026, 12, 31, 22, 30, tzinfo=timezone.utc)  # still 2026 in Ghent
    assert register.file_suggestion(PROBLEM).reference == "KAFKA-2026-000001"
    clock.now = datetime(2027, 6, 1, tzinfo=timezone.utc)
    assert register.file_suggestion(PROBLEM).reference == "KAFKA-2027-000002"


def test_parse_reference_accepts_what_citizens_type() -> None:
    assert kafka.parse_reference("kafka 2026 123") == "KAFKA-2026-000123"
    assert kafka.parse_reference("Wat is de status van KAFKA-2026-000123?") == "KAFKA-2026-000123"
    for text in ("", "hallo", "KAFKA-26-1", "NOKAFKA-2026-1"):
        with pytest.raises(kafka.InvalidReference):
            kafka.parse_reference(text)


# -- validation --------------------------------------------------------------------------------------
def test_text_of_4000_characters_with_emoji_and_html_is_stored_verbatim(register: KafkaRegister) -> None:
    unit = "  <script>alert('x')</script> Wachten 😀 & \"aanhalingstekens\"\r\n"
    problem = (unit * 100)[: kafka.MAX_PROBLEM_CHARS]
    proposal = ("Schaf dit af 👍🏽 <b>nu</b>\n" * 200)[: kafka.MAX_PROPOSAL_CHARS]
    assert len(problem) == len(proposal) == 4000

    filed = register.file_suggestion(problem, proposal=proposal)

    stored = register.get(filed.reference)
    assert stored.problem == problem
    assert stored.proposal == proposal
    assert register.list()[0].problem == problem


def test_text_over_the_limit_is_refused_and_nothing_is_stored(register: KafkaRegister) -> None:
    with pytest.raises(kafka.TooLong) as problem_error:
        register.file_suggestion(("woord " * 800)[: kafka.MAX_PROBLEM_CHARS] + "x")
    assert (problem_error.value.field, problem_error.value.limit) == ("problem", kafka.MAX_PROBLEM_CHARS)
    with pytest.raises(kafka.TooLong) as proposal_error:
        register.file_suggestion(PROBLEM, proposal="x" * (kafka.MAX_PROPOSAL_CHARS + 1))
    assert proposal_error.value.field == "proposal"
    assert register.count() == 0


def test_problem_with_fewer_than_three_words_is_refused(register: KafkaRegister) -> None:
    for problem in (None, "", "   ", "te kort", "🙄 🙄 🙄", "!!! ??? ..."):
        with pytest.raises(kafka.TooShort) as error:
            register.file_suggestion(problem)
        assert error.value.min_words == kafka.MIN_PROBLEM_WORDS
        assert "3 woorden" in error.value.citizen_message
    assert register.count() == 0
    assert register.file_suggestion("drie woorden volstaan").problem == "drie woorden volstaan"


def test_text_a_database_cannot_store_is_refused(register: KafkaRegister) -> None:
    for problem in (f"{PROBLEM}\x00", f"{PROBLEM} \ud800"):
        with pytest.raises(kafka.UnstorableText):
            register.file_suggestion(problem)
    assert register.count() == 0


def test_unknown_product_is_refused_and_iets_anders_keeps_the_free_text(register: KafkaRegister) -> None:
    with pytest.raises(kafka.UnknownProduct):
        register.file_suggestion(PROBLEM, product_id="vliegtuig")
    other = register.file_suggestion(PROBLEM, product_other="parkeerkaart voor zorgverleners")
    assert (other.product_id, register.get(other.reference).product_other) == (None, "parkeerkaart voor zorgverleners")
    assert register.file_suggestion(PROBLEM, product_id="reispas").product_id == "reispas"


# -- consent and anonymity ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "contact", [{"contact_name": "An Peeters"}, {"contact_email": "an@example.be"}, {"contact_phone": "0470123456"}]
)
def test_contact_details_without_consent_are_refused(register: KafkaRegister, contact: dict) -> None:
    with pytest.raises(kafka.ContactNotAllowed) as error:
        register.file_suggestion(PROBLEM, consent=False, **contact)
    assert error.value.reason == "no_consent"
    assert register.count() == 0


def test_contact_details_with_consent_are_stored_normalised(register: KafkaRegister, clock: Clock) -> None:
    filed = register.file_suggestion(
        PROBLEM, consent=True, contact_name=" An Peeters ", contact_email=" An@Example.BE ", contact_phone="0470 12 34 56"
    )
    stored = register.get(filed.reference)
    assert (stored.contact_name, stored.contact_email, stored.contact_phone) == ("An Peeters", "an@example.be", "+32470123456")
    assert stored.consent is True
    assert stored.consent_at == stored.created_at == clock.now


def test_invalid_email_or_phone_is_refused(register: KafkaRegister) -> None:
    for email in ("an@", "an peeters@example.be", "an@example", "@example.be", "an@@example.be"):
        with pytest.raises(kafka.InvalidEmail):
            register.file_suggestion(PROBLEM, consent=True, contact_email=email)
    for phone in ("12", "0470 12 34", "bel me maar", "+32 470 12 34 56 78 90"):
        with pytest.raises(kafka.InvalidPhone):
            register.file_suggestion(PROBLEM, consent=True, contact_phone=phone)
    assert register.count() == 0


def test_anonymous_suggestion_keeps_no_channel_ids_and_refuses_contact(register: KafkaRegister) -> None:
    filed = register.file_suggestion(PROBLEM, anonymous=True, channel="whatsapp", conversation_id="whatsapp:+32470123456")
    stored = register.get(filed.reference)
    assert (stored.anonymous, stored.channel, stored.conversation_id) == (True, None, None)

    named = register.file_suggestion(PROBLEM, channel="telegram", conversation_id="telegram:42")
    assert (register.get(named.reference).channel, register.get(named.reference).conversation_id) == ("telegram", "telegram:42")

    for extra in ({"consent": True}, {"consent": True, "contact_email": "an@example.be"}):
        with pytest.raises(kafka.ContactNotAllowed) as error:
            register.file_suggestion(PROBLEM, anonymous=True, **extra)
        assert error.value.reason == "anonymous"
    assert register.count() == 2


def _raw_row(**overrides: Any) -> dict:
    now = datetime(2026, 3, 2, tzinfo=timezone.utc)
    row = dict(
        reference="KAFKA-2026-999999", year=2026, number=999999, created_at=now, updated_at=now, status="nieuw",
        problem=PROBLEM, anonymous=False, consent=False,
    )
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    "overrides",
    [
        {"contact_email": "an@example.be"},
        {"anonymous": True, "conversation_id": "web:abc"},
        {"anonymous": True, "consent": True},
        {"status": "klaar"},
    ],
)
def test_database_refuses_rows_that_break_the_privacy_or_status_rules(db_engine: Engine, overrides: dict) -> None:
    with pytest.raises(IntegrityError):
        with db_engine.begin() as connection:
            connection.execute(kafka.suggestions.insert().values(**_raw_row(**overrides)))


# -- status ------------------------------------------------------------------------------------------
def test_status_of_gives_status_label_and_dates_but_nothing_personal(register: KafkaRegister, clock: Clock) -> None:
    filed = register.file_suggestion(PROBLEM, consent=True, contact_email="an@example.be", channel="web", conversation_id="web:1")
    info = register.status_of("kafka 2026 1")
    assert info == kafka.StatusInfo(filed.reference, Status.nieuw, "Ontvangen", clock.now, clock.now)
    assert set(vars(info)) == {"reference", "status", "label", "created_at", "updated_at"}
    with pytest.raises(kafka.UnknownReference):
        register.status_of("KAFKA-2026-000002")
    with pytest.raises(kafka.InvalidReference):
        register.status_of("mijn nummer kwijt")


def test_status_updates_are_kept_in_the_history(register: KafkaRegister, clock: Clock) -> None:
    filed = register.file_suggestion(PROBLEM)
    clock.now += timedelta(days=3)
    register.update_status(filed.reference, Status.in_behandeling, "Dienst Burgerzaken bekijkt dit.")
    clock.now += timedelta(days=10)
    updated = register.update_status(filed.reference, "uitgevoerd")

    assert [(c.status, c.note) for c in updated.history] == [
        (Status.nieuw, None),
        (Status.in_behandeling, "Dienst Burgerzaken bekijkt dit."),
        (Status.uitgevoerd, None),
    ]
    assert updated.internal_note == "Dienst Burgerzaken bekijkt dit."
    assert updated.updated_at == clock.now and updated.created_at == clock.now - timedelta(days=13)
    assert register.status_of(filed.reference).label == "Uitgevoerd"


def test_status_update_refuses_unknown_status_and_reference(register: KafkaRegister) -> None:
    filed = register.file_suggestion(PROBLEM)
    with pytest.raises(kafka.UnknownStatus):
        register.update_status(filed.reference, "klaar")
    with pytest.raises(kafka.UnknownReference):
        register.update_status("KAFKA-2026-000099", Status.afgewezen)
    assert [c.status for c in register.get(filed.reference).history] == [Status.nieuw]


# -- listing -----------------------------------------------------------------------------------------
def test_list_filters_on_ghent_dates_product_and_status(register: KafkaRegister, clock: Clock) -> None:
    clock.now = datetime(2026, 3, 1, 22, 30, tzinfo=timezone.utc)  # 23:30 on 1 March in Ghent
    late = register.file_suggestion(PROBLEM, product_id="reispas").reference
    clock.now = datetime(2026, 3, 1, 23, 30, tzinfo=timezone.utc)  # 00:30 on 2 March in Ghent
    after_midnight = register.file_suggestion(PROBLEM).reference
    clock.now = datetime(2026, 3, 5, 10, 0, tzinfo=timezone.utc)
    done = register.file_suggestion(PROBLEM, product_id="rijbewijs").reference
    register.update_status(done, Status.uitgevoerd)

    def refs(filters: Filters = Filters(), **paging: Any) -> List[str]:
        return [s.reference for s in register.list(filters, **paging)]

    assert refs() == [done, after_midnight, late]
    assert refs(Filters(date_from=date(2026, 3, 2), date_to=date(2026, 3, 2))) == [after_midnight]
    assert refs(Filters(date_to=date(2026, 3, 1))) == [late]
    assert refs(Filters(date_from=date(2026, 3, 2))) == [done, after_midnight]
    assert refs(Filters(product_id="reispas")) == [late]
    assert refs(Filters(product_id=kafka.PRODUCT_OTHER)) == [after_midnight]
    assert refs(Filters(status=Status.uitgevoerd)) == [done]
    assert refs(Filters(status="nieuw")) == [after_midnight, late]
    assert refs(limit=1, offset=1) == [after_midnight]
    assert register.count(Filters(status=Status.nieuw)) == 2


def test_nonsensical_filters_are_refused(register: KafkaRegister) -> None:
    with pytest.raises(kafka.InvalidFilter):
        Filters(date_from=date(2026, 3, 2), date_to=date(2026, 3, 1))
    with pytest.raises(kafka.InvalidFilter):
        Filters(date_from=date(1, 1, 1))
    with pytest.raises(kafka.UnknownStatus):
        Filters(status="klaar")
    for paging in ({"limit": 0}, {"limit": kafka.MAX_PAGE_SIZE + 1}, {"offset": -1}):
        with pytest.raises(kafka.InvalidFilter):
            register.list(**paging)


# -- retention ---------------------------------------------------------------------------------------
def test_purge_erases_contact_details_after_retention_but_keeps_the_suggestion(
    register: KafkaRegister, clock: Clock
) -> None:
    contact = dict(consent=True, contact_name="An", contact_email="an@example.be", contact_phone="0470123456")
    old = register.file_suggestion(PROBLEM, proposal="Eén formulier.", channel="whatsapp", conversation_id="whatsapp:+32470123456", **contact)
    clock.now += timedelta(days=300)
    recent = register.file_suggestion(PROBLEM, channel="web", conversation_id="web:abc", **contact)
    clock.now += timedelta(days=100)

    assert register.purge_contact_details(365) == 1

    purged = register.get(old.reference)
    assert (purged.contact_name, purged.contact_email, purged.contact_phone, purged.conversation_id) == (None,) * 4
    assert (purged.problem, purged.proposal, purged.channel, purged.consent) == (PROBLEM, "Eén formulier.", "whatsapp", True)
    assert purged.contact_purged_at == clock.now
    kept = register.get(recent.reference)
    assert (kept.contact_email, kept.conversation_id, kept.contact_purged_at) == ("an@example.be", "web:abc", None)
    assert register.purge_contact_details(365) == 0


def test_retention_days_come_from_the_environment() -> None:
    assert kafka.retention_days_from_env({}) == kafka.DEFAULT_RETENTION_DAYS == 365
    assert kafka.retention_days_from_env({kafka.RETENTION_ENV: " 30 "}) == 30
    for raw in ("0", "-5", "een jaar", "1.5", "٣"):
        with pytest.raises(ValueError, match=kafka.RETENTION_ENV):
            kafka.retention_days_from_env({kafka.RETENTION_ENV: raw})


# -- exports -----------------------------------------------------------------------------------------
def _read_csv(text: str) -> List[dict]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_csv_export_neutralises_formulas_and_keeps_html_as_text(register: KafkaRegister) -> None:
    formula = register.file_suggestion(
        '=HYPERLINK("http://evil.example","klik") om te winnen',
        proposal="+SUM(1;2)",
        product_other="@cmd",
        consent=True,
        contact_name="-2+3",
    )
    register.update_status(formula.reference, Status.in_behandeling, "\tnotitie met tab")
    html = '<b>vet</b> "aanhalingstekens", komma\nen een nieuwe regel <script>x</script>'
    plain = register.file_suggestion(html, product_id="reispas")

    out = kafka.export_csv(register.list(), catalogue=register.catalogue)

    assert out.splitlines()[0].split(",") == list(kafka.CSV_COLUMNS)
    rows = {row["reference"]: row for row in _read_csv(out)}
    row = rows[formula.reference]
    assert row["problem"] == "'" + '=HYPERLINK("http://evil.example","klik") om te winnen'
    assert (row["proposal"], row["product_other"], row["contact_name"]) == ("'+SUM(1;2)", "'@cmd", "'-2+3")
    assert row["internal_note"] == "'\tnotitie met tab"
    assert (row["status"], row["status_label"], row["consent"]) == ("in_behandeling", "In behandeling", "true")
    assert rows[plain.reference]["problem"] == html
    assert rows[plain.reference]["product_name"] == "Reispas"


def test_json_export_can_be_embedded_in_html(register: KafkaRegister) -> None:
    problem = "</script><script>alert('x')</script> & nog meer tekst"
    register.file_suggestion(problem)

    out = kafka.export_json(register.list())

    assert not set("<>&") & set(out)
    assert "\\u003c/script\\u003e" in out
    data = json.loads(out)
    assert data["count"] == 1 and data["suggestions"][0]["problem"] == problem


def _suggestion(problem: str) -> kafka.Suggestion:
    now = datetime(2026, 3, 2, tzinfo=timezone.utc)
    return kafka.Suggestion(
        reference="KAFKA-2026-000001", created_at=now, updated_at=now, status=Status.nieuw, problem=problem,
        product_id=None, product_other=None, proposal=None, anonymous=False, consent=False, consent_at=None,
        contact_name=None, contact_email=None, contact_phone=None, channel=None, conversation_id=None,
        internal_note=None, contact_purged_at=None,
    )


@given(st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))))
def test_any_text_survives_the_csv_export_and_never_starts_a_formula(value: str) -> None:
    cell = _read_csv(kafka.export_csv([_suggestion(value)]))[0]["problem"]
    assert not cell.startswith(FORMULA_START)
    assert cell == ("'" + value if value.startswith(FORMULA_START) else value)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))
def test_safe_json_round_trips_and_never_contains_html_specials(value: Any) -> None:
    dumped = kafka.safe_json_dumps(value)
    assert not set("<>&\u2028\u2029") & set(dumped)
    assert json.loads(dumped) == value
