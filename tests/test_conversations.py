"""Talk to the real assistant (Rasa server + action server) over Rasa's standard REST channel."""
from __future__ import annotations

import uuid

import pytest


def sender() -> str:
    return f"test:{uuid.uuid4()}"


def test_greeting_says_what_the_assistant_can_do_with_buttons(assistant) -> None:
    messages = assistant.rest(sender(), "hallo")
    assert "digitale assistent" in messages[0]["text"]
    titles = {button["title"] for button in messages[0]["buttons"]}
    assert {"Afspraak maken", "Met een medewerker praten"} <= titles


def test_follow_up_question_keeps_the_product_in_context(assistant) -> None:
    conversation = sender()
    first = assistant.texts(conversation, "ik heb een nieuwe reispas nodig")
    assert "Reispas" in first and "stad.gent" in first
    price = assistant.texts(conversation, "en hoeveel kost dat?")
    assert "Prijs reispas" in price and "indicatief" in price
    appointment = assistant.texts(conversation, "moet ik een afspraak maken?")
    assert "afspraak" in appointment and "reispas" in appointment


def test_one_word_question_gets_an_answer_with_the_link(assistant) -> None:
    assert "https://stad.gent/nl/burgerzaken/kids-id" in assistant.texts(sender(), "kids-id?")


def test_opening_hours_of_a_named_district_office(assistant) -> None:
    text = assistant.texts(sender(), "wanneer is het wijkkantoor oostakker open")
    assert "Wijkkantoor Oostakker" in text and "donderdag" in text


@pytest.mark.parametrize(
    "message, expected",
    [
        ("", "leeg bericht"),
        ("   ", "leeg bericht"),
        ("😀🙈👍", "geen emoji"),
        ("reispas " * 700, "erg lang"),
        ("hello, can you help me with a passport", "alleen Nederlands"),
        ("bonjour, je voudrais une carte d'identité", "alleen Nederlands"),
    ],
    ids=["empty", "whitespace", "emoji", "5000-chars", "english", "french"],
)
def test_bad_input_gets_a_friendly_dutch_answer(assistant, message: str, expected: str) -> None:
    assert expected in assistant.texts(sender(), message)


def test_html_and_script_are_treated_as_plain_text(assistant) -> None:
    messages = assistant.rest(sender(), "<script>alert('x')</script><b>reispas</b>")
    assert messages and all("<script>" not in (m.get("text") or "") for m in messages)


def test_second_misunderstanding_in_a_row_offers_a_human_way_out(assistant) -> None:
    conversation = sender()
    first = assistant.rest(conversation, "/nlu_fallback")
    assert "anders zeggen" in first[0]["text"]
    second = assistant.rest(conversation, "/nlu_fallback")
    assert "09 210 10 10" in second[0]["text"]
    assert any(button["payload"] == "/human_handoff" for button in second[0]["buttons"])
