"""The KAFKA form actions against a real SQLite register (GENTINFO_DATABASE_URL, set per test)."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import kafka as actions
from bot.actions import kafka_status
from bot.core import db
from bot.core.kafka import MAX_PROBLEM_CHARS, KafkaRegister, Status
from tests.trackers import DOMAIN, form_tracker, run_form, validate_slot

PROBLEM = "Ik moet voor mijn verhuis drie keer hetzelfde formulier invullen, ook online."


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'gentinfo.db'}"
    monkeypatch.setenv("GENTINFO_DATABASE_URL", url)
    monkeypatch.delenv("GENTINFO_DB_SCHEMA", raising=False)
    return url


def register() -> KafkaRegister:
    engine = db.make_engine()
    db.create_schema(engine)
    return KafkaRegister(engine)


def make_tracker(slots: Optional[Dict[str, Any]] = None, *, form: Optional[str] = "kafka_form",
                 sender: str = "telegram:4242", **message: Any) -> Tracker:
    return form_tracker(slots, form=form, sender=sender, **message)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def validate(slot: str, value: Any, tracker: Optional[Tracker] = None,
             form: Any = None) -> Tuple[Dict[str, Any], List[str]]:
    return validate_slot(form or actions.ValidateKafkaForm(), slot, value, tracker or make_tracker())


def form_run(tracker: Tracker, form: Any = None) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    return run_form(form or actions.ValidateKafkaForm(), tracker)


def filled(**overrides: Any) -> Dict[str, Any]:
    values = {"kafka_problem": PROBLEM, "kafka_product": "adreswijziging", "kafka_proposal": "Vraag het één keer.",
              "kafka_anonymous": True}
    values.update(overrides)
    return values


def test_the_problem_is_kept_verbatim_and_must_be_long_enough_but_not_too_long():
    text = "  Waarom <b>moet</b> ik\n3 keer   hetzelfde papier brengen?? "
    assert validate("kafka_problem", text)[0]["kafka_problem"] == text
    result, said = validate("kafka_problem", "te moeilijk")
    assert result["kafka_problem"] is None and "minstens 3 woorden" in said[0]
    result, said = validate("kafka_problem", "woord " * (MAX_PROBLEM_CHARS // 5 + 1))
    assert result["kafka_problem"] is None and f"maximaal {MAX_PROBLEM_CHARS} tekens" in said[0]


def test_product_from_button_word_or_free_topic():
    assert validate("kafka_product", "reispas")[0] == {"kafka_product": "reispas", "kafka_product_other": None}
    assert validate("kafka_product", "mijn paspoort")[0]["kafka_product"] == "reispas"
    assert validate("kafka_product", "anders")[0] == {"kafka_product": "anders", "kafka_product_other": None}
    assert validate("kafka_product", "de bibliotheek")[0] == {"kafka_product": "anders",
                                                                 "kafka_product_other": "de bibliotheek"}


def test_no_proposal_and_a_verbatim_proposal():
    assert validate("kafka_proposal", "geen")[0]["kafka_proposal"] == actions.NONE
    assert validate("kafka_proposal", "nee", make_tracker(intent="deny"))[0]["kafka_proposal"] == actions.NONE
    assert validate("kafka_proposal", "Eén formulier voor alles!")[0]["kafka_proposal"] == "Eén formulier voor alles!"


def test_anonymity_and_consent():
    assert validate("kafka_anonymous", "anoniem")[0]["kafka_anonymous"] is True
    assert validate("kafka_anonymous", "contact")[0] == {"kafka_anonymous": False}
    assert validate("kafka_anonymous", True)[0]["kafka_anonymous"] is True
    result, said = validate("kafka_consent", False)
    assert result["kafka_anonymous"] is True and result["kafka_consent"] is None and "anoniem" in said[0]
    result, said = validate("kafka_contact", "0470 12")
    assert result["kafka_contact"] is None and "telefoonnummer klopt niet" in said[0]


def test_required_slots_ask_contact_details_only_with_consent():
    form = actions.ValidateKafkaForm()
    required = lambda slots: run(form.required_slots(list(DOMAIN["forms"]["kafka_form"]["required_slots"]),  # noqa: E731
                                                     CollectingDispatcher(), make_tracker(slots), DOMAIN))
    assert "kafka_consent" not in required(filled())
    assert required(filled(kafka_anonymous=False))[-2:] == ["kafka_consent", "kafka_confirmed"]
    assert required(filled(kafka_anonymous=False, kafka_consent=True))[-4:] == [
        "kafka_consent", "kafka_name", "kafka_contact", "kafka_confirmed"]
    assert "kafka_product_other" in required(filled(kafka_product="anders"))


def test_an_anonymous_suggestion_is_filed_without_channel_ids():
    result, said = validate("kafka_confirmed", True, make_tracker(filled()))
    assert result["kafka_confirmed"] is True and not said
    stored = register().get(result["kafka_reference"])
    assert stored.problem == PROBLEM and stored.product_id == "adreswijziging" and stored.anonymous
    assert stored.channel is None and stored.conversation_id is None and stored.contact_email is None


def test_a_named_suggestion_with_consent_keeps_contact_and_channel():
    slots = filled(kafka_anonymous=False, kafka_consent=True, kafka_name="An De Smet",
                   kafka_contact="an.desmet@example.be", kafka_product="anders", kafka_product_other="de bibliotheek",
                   kafka_proposal=actions.NONE)
    result, _ = validate("kafka_confirmed", True, make_tracker(slots, sender="whatsapp:+32470123456"))
    stored = register().get(result["kafka_reference"])
    assert (stored.contact_name, stored.contact_email, stored.consent) == ("An De Smet", "an.desmet@example.be", True)
    assert (stored.channel, stored.conversation_id) == ("whatsapp", "whatsapp:+32470123456")
    assert stored.product_id is None and stored.product_other == "de bibliotheek" and stored.proposal is None


def test_a_database_failure_is_an_apology_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("GENTINFO_DATABASE_URL", f"sqlite:///{blocker / 'gentinfo.db'}")
    result, said = validate("kafka_confirmed", True, make_tracker(filled()))
    assert result == {"kafka_confirmed": None} and "09 210 10 10" in said[0] and "niet verstuurd" in said[0]


def test_the_filed_action_gives_the_reference_and_what_happens_next():
    result, _ = validate("kafka_confirmed", True, make_tracker(filled()))
    dispatcher = CollectingDispatcher()
    events = run(actions.ActionKafkaFiled().run(dispatcher, make_tracker({**filled(), **result}, form=None), DOMAIN))
    text = dispatcher.messages[0]["text"]
    assert result["kafka_reference"] in text and "Wat gebeurt er nu?" in text and "anoniem" in text
    assert {e["name"] for e in events if e["value"] is None} >= {"kafka_problem", "kafka_reference"}


def test_a_whole_turn_stop_is_not_an_answer_and_a_change_clears_the_text():
    stop = make_tracker(filled(kafka_problem=None), text="stop", intent="stop", requested="kafka_problem")
    assert form_run(stop) == ({}, [])
    change = make_tracker(filled(), text='/change_detail{"detail": "problem"}', intent="change_detail",
                          entities=[("detail", "problem")], requested="kafka_confirmed")
    values, _ = form_run(change)
    assert values["kafka_problem"] is None and values["kafka_confirmed"] is None
    menu = make_tracker(filled(), text="nee", intent="deny", requested="kafka_confirmed")
    assert form_run(menu)[0]["kafka_menu"] is True


def test_yes_and_no_answers_read_the_words_first():
    contact = make_tracker(filled(kafka_anonymous=None), text="ja, contacteer mij maar", intent="affirm",
                           requested="kafka_anonymous")
    assert form_run(contact)[0]["kafka_anonymous"] is False
    send = make_tracker(filled(), text="ja verstuur maar", intent="stop", requested="kafka_confirmed")
    values, _ = form_run(send)
    assert values["kafka_confirmed"] is True and values["kafka_reference"].startswith("KAFKA-")


def test_status_by_sloppy_reference_and_unknown_reference():
    suggestion = register().file_suggestion(PROBLEM, anonymous=True)
    register().update_status(suggestion.reference, Status.in_behandeling)
    form = kafka_status.ValidateKafkaStatusForm()
    number = int(suggestion.reference.rsplit("-", 1)[1])
    sloppy = f"kafka {suggestion.reference.split('-')[1]} {number}"
    result, _ = validate("kafka_status_reference", sloppy, make_tracker(form="kafka_status_form"), form)
    assert result["kafka_status_reference"] == suggestion.reference
    dispatcher = CollectingDispatcher()
    run(kafka_status.ActionKafkaStatus().run(dispatcher, make_tracker(result, form=None), DOMAIN))
    assert "In behandeling" in dispatcher.messages[0]["text"] and suggestion.reference in dispatcher.messages[0]["text"]
    dispatcher = CollectingDispatcher()
    run(kafka_status.ActionKafkaStatus().run(dispatcher, make_tracker({"kafka_status_reference": "KAFKA-2026-999999"},
                                                                 form=None), DOMAIN))
    assert "geen melding" in dispatcher.messages[0]["text"]
    result, said = validate("kafka_status_reference", "ik weet het niet", make_tracker(form="kafka_status_form"), form)
    assert result["kafka_status_reference"] == actions.NONE


def test_status_question_with_the_reference_completes_at_activation():
    tracker = make_tracker(text="wat is de status van KAFKA-2026-000123?", intent="kafka_status",
                           entities=[("reference", "KAFKA-2026-000123")], form="kafka_status_form")
    values, _ = form_run(tracker, kafka_status.ValidateKafkaStatusForm())
    assert values["kafka_status_reference"] == "KAFKA-2026-000123"


def test_a_product_name_answers_the_service_question_even_when_nlu_saw_a_product_question():
    """Typing 'bewonerskaart' at "over welke dienst?" must not be taken for an interruption."""
    tracker = make_tracker({"kafka_problem": PROBLEM}, text="bewonerskaart", intent="ask_product_info",
                           requested="kafka_product")
    slots, _ = form_run(tracker)
    assert slots["kafka_product"] == "bewonerskaart"
    question = make_tracker({"kafka_problem": PROBLEM}, text="wat kost een bewonerskaart?", intent="ask_price",
                            requested="kafka_product")
    assert "kafka_product" not in form_run(question)[0] or form_run(question)[0]["kafka_product"] is None
