"""City questions through the real assistant (Rasa server + action server over REST): questions
that merely contain a form's trigger word start no form, the search answers the long tail, and
follow-ups keep the subject of the conversation.

"No form started" is proven by the next message: "stop" outside a task answers "we stoppen
hiermee"; inside the booking, manage or KAFKA form it says what that form did not do.
"""
from __future__ import annotations

import uuid

import pytest

from tests.assistant import text_of

FORM_QUESTIONS = ("afspraaknummer", "Waar wilt u naartoe", "Wat loopt er", "probleem", "voorstel", "Welke dienst")
OUTSIDE_A_TASK = "we stoppen hiermee"


def sender() -> str:
    return f"test:{uuid.uuid4()}"


@pytest.mark.parametrize(
    "question",
    [
        "ik wil een terras plaatsen voor mijn café",
        "een put in het voetpad melden",
        "wat is de belasting op tweede verblijven",
        "mag ik een container voor mijn deur zetten tijdens de verbouwing",
        "de straatlamp in onze straat is al een week kapot",
        "ik wil mijn auto verplaatsen want hij staat in een parkeerverbod",
        "kan ik de sporthal reserveren voor zaterdag",
        "ik heb een klacht over de ophaling van het afval",
    ],
)
def test_a_question_with_a_trigger_word_starts_no_form(assistant, question: str) -> None:
    conversation = sender()
    reply = assistant.texts(conversation, question)
    assert "misschien al afgelopen" not in reply
    assert not any(marker in reply for marker in FORM_QUESTIONS), reply
    assert OUTSIDE_A_TASK in assistant.texts(conversation, "stop")


def test_theft_of_a_wallet_with_the_id_card_gets_what_to_do_after_theft(assistant) -> None:
    reply = assistant.texts(sender(), "mijn portefeuille is gestolen met mijn id kaart erin")
    assert "00800 2123 2123" in reply and "politie" in reply


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("identitijtskaart vernieuwen", "Identiteitskaart (eID)"),
        ("ik wil een zaak starten in gent", "Ondernemerscentrum"),
        ("ik wil mijn voornaam veranderen", "Voornaam wijzigen"),
        ("bewijs van nationaliteit", "Belg"),
    ],
)
def test_paraphrases_and_typos_get_the_topic_not_the_product_menu(assistant, question: str, expected: str) -> None:
    reply = assistant.texts(sender(), question)
    assert expected in reply and "Over welk document" not in reply


def test_nonsense_gets_the_fallback_not_a_random_topic(assistant) -> None:
    messages = assistant.rest(sender(), "qwerty asdf zxcv")
    assert "anders zeggen" in text_of(messages) and "Meer info" not in text_of(messages)


def test_two_subjects_in_one_question_ask_which_with_buttons(assistant) -> None:
    messages = assistant.rest(sender(), "ik ga verhuizen en heb ook een nieuwe reispas nodig")
    titles = {b["title"] for m in messages for b in m.get("buttons") or []}
    assert "twee dingen" in text_of(messages) and {"Reispas", "Adreswijziging (verhuizen)"} <= titles


def test_a_topic_button_answers_that_topic(assistant) -> None:
    reply = assistant.texts(sender(), '/ask_city{"topic": "tijdelijke_afwezigheid"}')
    assert "verhuizen@stad.gent" in reply


def test_price_follow_up_after_a_topic_answers_for_that_topic(assistant) -> None:
    conversation = sender()
    assert "voornaam" in assistant.texts(conversation, "ik wil mijn voornaam veranderen")
    price = assistant.texts(conversation, "en hoeveel kost dat?")
    assert "Voornaam wijzigen" in price and "Gratis" in price


def test_office_follow_up_answers_for_that_office_only(assistant) -> None:
    conversation = sender()
    assistant.texts(conversation, "ik heb een nieuw rijbewijs nodig")
    reply = assistant.texts(conversation, "kan dat ook in Oostakker?")
    # the Rijbewijzen desk is not in Oostakker: say so and list where it is, not every office
    assert "niet terecht in Wijkkantoor Oostakker" in reply and "Rabot" in reply
    assert "Wondelgem" not in reply


def test_office_follow_up_yes_for_a_product_of_that_office(assistant) -> None:
    conversation = sender()
    assistant.texts(conversation, "ik heb een nieuwe reispas nodig")
    reply = assistant.texts(conversation, "kan dat ook in Oostakker?")
    assert "Ja, voor reispas kunt u ook terecht in Wijkkantoor Oostakker" in reply and "Drongen" not in reply


def test_existing_product_questions_answer_as_before(assistant) -> None:
    conversation = sender()
    assert "Prijs reispas" in assistant.texts(conversation, "hoeveel kost een reispas")
    assert "Wat brengt u mee voor identiteitskaart" in assistant.texts(conversation, "wat moet ik meebrengen voor mijn identiteitskaart")
