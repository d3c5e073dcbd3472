"""Reading the citizen's answers (bot/core/choices.py) and the slot-search policy (bot/core/slot_search.py),
without a Rasa tracker; and the table-driven form base (bot/actions/forms.py)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import List

import pytest
from rasa_sdk.executor import ActionExecutor

from bot.actions.forms import TableForm
from bot.actions.kafka_status import ValidateKafkaStatusForm
from bot.core import choices, slot_search
from bot.core.appointments import Slot, appointment_book_from_env
from bot.core.dates import BRUSSELS, DateRequest
from bot.core.kafka import MAX_PROBLEM_CHARS
from tests.trackers import DOMAIN


def offered() -> List[Slot]:
    """Tuesday 2 and Wednesday 3 December 2025, 9.00 / 9.30 / 10.30 / 14.00 / 9.00."""
    moments = [(2, 9, 0), (2, 9, 30), (2, 10, 30), (2, 14, 0), (3, 9, 0)]
    return [Slot(product_id="reispas", location_id="stadskantoor",
                 starts_at=datetime(2025, 12, day, h, m, tzinfo=BRUSSELS),
                 ends_at=datetime(2025, 12, day, h, m, tzinfo=BRUSSELS) + timedelta(minutes=15))
            for day, h, m in moments]


@pytest.mark.parametrize("answer, index", [
    ("2", 1), ("nummer 3", 2), ("optie 1.", 0), ("de tweede", 1), ("de 2de graag", 1), ("de laatste", 4),
    ("10u30", 2), ("om 14 uur", 3), ("14:00", 3), ("9.30", 1), ("woensdag om 9 uur", 4), ("dinsdag 9u", 0),
])
def test_a_pick_is_read_by_number_ordinal_or_time(answer: str, index: int):
    assert choices.match_choice(answer, offered()) == offered()[index]


def test_a_button_picks_its_own_moment_and_an_old_button_is_recognised_as_stale():
    slots = offered()
    assert choices.match_choice(slots[2].starts_at.isoformat(), slots) == slots[2]
    old = (slots[0].starts_at - timedelta(days=7)).isoformat()
    assert choices.match_choice(old, slots) is None and choices.is_stale_button(old)
    assert not choices.is_stale_button("de tweede")


@pytest.mark.parametrize("answer", ["7", "de zesde", "11u", "blauw", "", "volgende week"])
def test_anything_else_is_no_pick(answer: str):
    assert choices.match_choice(answer, offered()) is None


def test_a_number_out_of_range_is_still_a_pick_by_number():
    assert choices.is_number_choice("7") and choices.is_number_choice("nr. 7") and not choices.is_number_choice("7 mei")


@pytest.mark.parametrize("text, reference", [
    ("GNT-7K3Q9", "GNT-7K3Q9"), ("gnt 7k3q9", "GNT-7K3Q9"), ("7K3Q9", "GNT-7K3Q9"),
    ("mijn nummer is GNT-7K3Q9, dank u", "GNT-7K3Q9"), ("GNT-7K3Q1", None), ("hallo", None),
])
def test_an_appointment_reference_is_found_in_what_was_typed(text: str, reference: str):
    assert choices.find_reference(text) == reference


def test_a_kafka_reference_is_found_in_a_sentence():
    assert choices.find_kafka_reference("status van kafka 2026 123?") == "KAFKA-2026-000123"
    assert choices.find_kafka_reference("GNT-7K3Q9") is None


def test_yes_and_no_are_read_from_the_first_words():
    assert choices.starts_with_yes("ja, annuleer maar") and not choices.starts_with_yes("nee")
    assert choices.yes_no_text("Oké") is True and choices.yes_no_text("neen dank u") is False
    assert choices.yes_no_text("/affirm") is None and choices.yes_no_text("misschien") is None


def test_a_name_is_tidied_and_a_question_is_not_a_name():
    assert choices.clean_name("  jan   Peeters. ") == "jan Peeters"
    assert choices.clean_name("R2D2") is None and choices.clean_name("a") is None
    assert choices.looks_like_name("Jan Peeters") and not choices.looks_like_name("wat moet ik meebrengen")


def test_the_contact_inside_a_sentence_is_taken():
    assert choices.contact_candidate("mijn nummer is 0470 12 34 56 hoor") == "0470 12 34 56"
    assert choices.contact_candidate("mail naar Jan@Example.be.") == "Jan@Example.be"
    assert choices.is_contact_text("0470 12 34 56") and not choices.is_contact_text("0470 12")


def test_a_typed_change_request_names_the_field():
    assert choices.changed_field("Ander uur graag", choices.BOOKING_CHANGES) == "time"
    assert choices.changed_field("een andere dag", choices.BOOKING_CHANGES) == "day"
    assert choices.changed_field("ander voorstel", choices.KAFKA_CHANGES) == "proposal"
    assert choices.changed_field("iets anders", choices.BOOKING_CHANGES) is None
    assert choices.is_change(choices.CHANGE + "day") and choices.change_field(choices.CHANGE + "day") == "day"


def test_a_kafka_description_needs_some_words_and_a_limit():
    assert choices.problem_error("te veel formulieren voor een parkeerkaart") is None
    assert "minstens" in (choices.problem_error("te moeilijk") or "")
    assert "te lang" in (choices.problem_error("woord " * MAX_PROBLEM_CHARS) or "")


# -- slot search ------------------------------------------------------------------------------------------
def test_a_time_alone_keeps_the_day_already_chosen():
    tuesday = date(2025, 12, 2)
    merged = slot_search.merge_request(DateRequest(after=time(14)), DateRequest(day=tuesday))
    assert merged == DateRequest(day=tuesday, after=time(14))
    friday = DateRequest(day=date(2025, 12, 5))
    assert slot_search.merge_request(friday, DateRequest(day=tuesday)) == friday


def test_another_hour_keeps_the_day_of_the_chosen_moment():
    assert slot_search.same_day(offered()[3], None) == DateRequest(day=date(2025, 12, 2))
    wish = DateRequest(from_day=date(2025, 12, 1), after=time(14))
    assert slot_search.same_day(None, wish) == DateRequest(from_day=date(2025, 12, 1))
    assert slot_search.same_day(None, None) is None


def test_a_wish_is_described_in_dutch():
    wish = DateRequest(day=date(2025, 12, 2), after=time(14))
    assert slot_search.describe_request(wish) == "op dinsdag 2 december vanaf 14 uur"
    assert slot_search.describe_request(DateRequest(asap=True)) == ""


def test_no_free_moment_at_the_wished_hour_offers_the_first_ones_after_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GENTINFO_DATABASE_URL", f"sqlite:///{tmp_path / 'gentinfo.db'}")
    book = appointment_book_from_env()
    late = DateRequest(asap=True, after=time(23))
    found = slot_search.search_slots(book, "reispas", "stadskantoor", late)
    assert found.slots and found.used == DateRequest(asap=True) and "Dit zijn de eerste vrije momenten" in (found.note or "")
    nearest = slot_search.search_slots(book, "reispas", "stadskantoor", DateRequest(asap=True))
    assert len(nearest.slots) == slot_search.OFFER_LIMIT and nearest.note is None


def test_an_unreadable_remembered_slot_is_none():
    assert slot_search.slot_or_none({"starts_at": "gisteren"}) is None and slot_search.slot_or_none(None) is None
    assert slot_search.slot_or_none(offered()[0].to_dict()) == offered()[0]


# -- the form base ------------------------------------------------------------------------------------------
def test_the_form_base_answers_for_the_slots_of_its_table_only():
    form = ValidateKafkaStatusForm()
    assert callable(form.extract_kafka_status_reference) and callable(form.validate_kafka_status_reference)
    with pytest.raises(AttributeError):
        form.validate_appointment_name  # noqa: B018 - the look-up itself is what is tested
    assert form.name() == "validate_kafka_status_form"


def test_every_form_and_question_of_the_domain_is_registered_once_and_the_base_is_not():
    executor = ActionExecutor()
    executor.register_package("bot.actions")
    wanted = {name for name in DOMAIN["actions"] if name.startswith(("action_", "validate_"))}
    assert set(executor.actions) == wanted
    assert "action_ask_appointment_slot" in executor.actions and TableForm.__abstractmethods__
