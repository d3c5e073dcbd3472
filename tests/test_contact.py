"""Phone numbers and e-mail addresses as citizens type them."""
from __future__ import annotations

import pytest

from bot.core.contact import (ContactDetail, ContactKind, InvalidContact, mask, normalise_contact, normalise_email,
                              normalise_phone)


@pytest.mark.parametrize("text, expected", [
    ("0470 12 34 56", "+32470123456"),
    ("0470123456", "+32470123456"),
    ("0470/12.34.56", "+32470123456"),
    ("0485-12-34-56", "+32485123456"),
    ("+32470123456", "+32470123456"),
    ("+32 (0)470 12 34 56", "+32470123456"),
    ("0032 470 12 34 56", "+32470123456"),
    ("09 210 10 10", "+3292101010"),
    ("+32 9 210 10 10", "+3292101010"),
    ("02 279 22 11", "+3222792211"),
])
def test_belgian_mobile_and_fixed_numbers_become_e164(text: str, expected: str) -> None:
    assert normalise_phone(text) == expected


@pytest.mark.parametrize("text", [
    "12345", "0470 12 34 5", "0470 12 34 567", "abc", "", "0900 12 345", "0800 12 345", "+31 6 12345678",
])
def test_short_premium_toll_free_and_foreign_numbers_are_refused(text: str) -> None:
    with pytest.raises(InvalidContact) as error:
        normalise_phone(text)
    assert error.value.kind is ContactKind.phone
    assert "telefoonnummer" in error.value.message_nl


@pytest.mark.parametrize("text, expected", [
    ("jan.peeters@stad.gent", "jan.peeters@stad.gent"),
    ("  Jan.Peeters@Stad.Gent ", "jan.peeters@stad.gent"),
    ("<an+afspraak@example.be>", "an+afspraak@example.be"),
    ("mailto:info@gent.be", "info@gent.be"),
    ("els@sub.domein.co.uk", "els@sub.domein.co.uk"),
    ("jan@ström.se", "jan@xn--strm-7qa.se"),
])
def test_email_addresses_are_normalised(text: str, expected: str) -> None:
    assert normalise_email(text) == expected


@pytest.mark.parametrize("text", [
    "jan", "jan@", "@stad.gent", "jan@gent", "jan@@stad.gent", "jan @stad.gent", "jan..p@stad.gent",
    ".jan@stad.gent", "jan.@stad.gent", "jan@-stad.gent", "jan@stad.g", "jan@stad,gent", "jan@stad..gent",
    "x" * 65 + "@stad.gent", "jan@" + "a" * 250 + ".be",
])
def test_malformed_email_addresses_are_refused(text: str) -> None:
    with pytest.raises(InvalidContact) as error:
        normalise_email(text)
    assert error.value.kind is ContactKind.email
    assert "e-mailadres" in error.value.message_nl


def test_contact_kind_is_told_apart_by_the_at_sign() -> None:
    assert normalise_contact("0470 12 34 56") == ContactDetail(ContactKind.phone, "+32470123456")
    assert normalise_contact("Jan@Stad.Gent") == ContactDetail(ContactKind.email, "jan@stad.gent")
    with pytest.raises(InvalidContact):
        normalise_contact("jan@stad")


@pytest.mark.parametrize("value, masked", [
    ("+32470123456", "+32 4\u2022\u2022 \u2022\u2022 \u2022\u2022 56"),
    ("0470 12 34 56", "+32 4\u2022\u2022 \u2022\u2022 \u2022\u2022 56"),
    ("+3292101010", "+32 9 \u2022\u2022\u2022 \u2022\u2022 10"),
    ("jan.peeters@stad.gent", "j\u2022\u2022\u2022@stad.gent"),
    ("j@stad.gent", "j\u2022\u2022\u2022@stad.gent"),
    ("rubbish", "\u2022\u2022\u2022"),
])
def test_mask_hides_all_but_a_hint_for_logs(value: str, masked: str) -> None:
    assert mask(value) == masked


def test_mask_never_shows_the_middle_digits() -> None:
    assert not any(part in mask("+32470987654") for part in ("098", "987", "876", "765"))
