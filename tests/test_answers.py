"""Answers built from the catalogue: short, Dutch, with the link and useful next steps."""
from __future__ import annotations

from datetime import datetime

import pytest

from bot.core import answers
from bot.core.catalogue import get_catalogue

CATALOGUE = get_catalogue()


@pytest.mark.parametrize("aspect", answers.ASPECTS)
def test_every_aspect_of_every_product_has_an_answer_with_its_link(aspect: str) -> None:
    for product in CATALOGUE.products:
        answer = answers.product_answer(CATALOGUE, product, aspect)
        assert str(product.url) in answer.text
        assert len(answer.text) < 1000, f"{product.id}/{aspect} is too long for a chat message"


def test_price_answer_says_prices_are_indicative() -> None:
    answer = answers.product_answer(CATALOGUE, CATALOGUE.product("reispas"), "price")
    assert "indicatief" in answer.text.lower()


def test_bookable_product_offers_booking_with_the_product_in_the_payload() -> None:
    answer = answers.product_answer(CATALOGUE, CATALOGUE.product("reispas"), "info")
    assert answer.buttons[0] == {"title": "Afspraak maken", "payload": '/book_appointment{"product": "reispas"}'}


def test_online_only_product_offers_no_booking_and_says_no_appointment_needed() -> None:
    answer = answers.product_answer(CATALOGUE, CATALOGUE.product("bewonerskaart"), "appointment")
    assert "geen afspraak nodig" in answer.text
    assert all("book_appointment" not in button["payload"] for button in answer.buttons)


def test_follow_up_buttons_do_not_repeat_the_question_just_answered() -> None:
    answer = answers.product_answer(CATALOGUE, CATALOGUE.product("rijbewijs"), "price")
    assert all(not button["payload"].startswith("/ask_price") for button in answer.buttons)


def test_unknown_product_question_offers_popular_products_keeping_the_question() -> None:
    answer = answers.which_product(CATALOGUE, "ask_price")
    assert answer.buttons and all(b["payload"].startswith('/ask_price{"product": ') for b in answer.buttons)


def test_opening_hours_tell_today_and_closing_days() -> None:
    stadskantoor = CATALOGUE.location("stadskantoor")
    thursday = answers.opening_hours_answer(CATALOGUE, stadskantoor, datetime(2026, 12, 17, 10))
    assert "Vandaag (donderdag)" in thursday.text and "08:30 tot 19:00" in thursday.text
    assert "24/12: gesloten" in thursday.text
    christmas_eve = answers.opening_hours_answer(CATALOGUE, stadskantoor, datetime(2026, 12, 24, 9))
    assert "Vandaag is Stadskantoor gesloten (kerstavond" in christmas_eve.text
    sunday = answers.opening_hours_answer(CATALOGUE, CATALOGUE.location("rabot"), datetime(2026, 11, 29, 9))
    assert "Vandaag (zondag) is Wijkkantoor Rabot gesloten" in sunday.text


def test_contact_text_gives_phone_mail_and_desk_without_appointment() -> None:
    text = answers.contact_text(CATALOGUE)
    assert "09 210 10 10" in text and "gentinfo@stad.gent" in text and "zonder afspraak" in text


def test_product_names_keep_their_abbreviations_inside_a_sentence() -> None:
    documents = answers.product_answer(CATALOGUE, CATALOGUE.product("identiteitskaart"), "documents")
    assert "voor identiteitskaart (eID)?" in documents.text
    assert CATALOGUE.product("pincode").in_sentence == "PIN- en PUK-code"
