"""The catalogue file is valid, and the validation command catches broken entries."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.core import catalogue as cat

NLU_DIR = Path(__file__).resolve().parents[1] / "bot" / "data" / "nlu"


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "catalogue.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load(cat.CATALOGUE_PATH.read_text(encoding="utf-8"))


def test_shipped_catalogue_validates_with_at_least_20_products() -> None:
    assert cat.main(["validate"]) == 0
    catalogue = cat.load()
    assert len(catalogue.products) >= 20
    assert {"stadskantoor", "rabot", "oostakker", "gentbrugge"} <= {loc.id for loc in catalogue.locations}
    assert catalogue.contact.phone == "09 210 10 10"


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["products"][0].update(locations=["atlantis"]),
        lambda d: d["products"][0].pop("slot_minutes"),
        lambda d: d["products"][0].update(price="€ 75"),
        lambda d: d["products"][0].update(url="not a url"),
        lambda d: d["locations"][0]["opening_hours"].update(maandag=["17:00-08:00"]),
        lambda d: d["locations"][0]["opening_hours"].update(maandagg=["08:00-12:00"]),
        lambda d: d["products"][1].update(synonyms=["paspoort"]),
        lambda d: d["products"].append(dict(d["products"][0])),
        lambda d: d["closing_days"].append({"date": "2026-13-01", "reason": "x"}),
    ],
    ids=["unknown-location", "no-slot-length", "price-not-indicative", "bad-url", "hours-reversed",
         "unknown-weekday", "synonym-on-two-products", "duplicate-id", "impossible-date"],
)
def test_validation_command_fails_on_a_broken_entry(raw: dict, tmp_path: Path, breakage, capsys) -> None:
    breakage(raw)
    assert cat.main(["validate", str(_write(tmp_path, raw))]) == 1
    assert "broken" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, product_id",
    [
        ("ik wil een nieuw paspoort", "reispas"),
        ("Kids-ID voor mijn dochter", "kids_id"),
        ("IDENTITEITSKAART", "identiteitskaart"),
        ("internationaal rijbewijs voor de VS", "internationaal_rijbewijs"),
        ("ik ga verhuizen", "adreswijziging"),
        ("bewijs van goed gedrag", "uittreksel_strafregister"),
        ("mijn eid verloren", "verlies_identiteitskaart"),
        ("mijn oude zetel", "grofvuil"),
    ],
)
def test_find_product_matches_synonyms_case_and_longest_term(text: str, product_id: str) -> None:
    assert cat.get_catalogue().find_product(text).id == product_id


def test_find_product_returns_none_without_a_product_word() -> None:
    assert cat.get_catalogue().find_product("wat is het weer morgen") is None


def test_every_product_in_the_training_data_resolves_to_a_catalogue_entry() -> None:
    """An annotated product the catalogue cannot resolve would give an answer about nothing."""
    from rasa.shared.nlu.training_data.loading import load_data

    catalogue = cat.get_catalogue()
    unresolved = {
        entity["value"]
        for message in load_data(str(NLU_DIR)).training_examples
        for entity in message.get("entities") or []
        if entity["entity"] == "product" and catalogue.find_product(entity["value"]) is None
    }
    assert not unresolved


def test_bookable_products_name_slot_length_and_locations() -> None:
    for product in cat.get_catalogue().bookable_products():
        assert product.slot_minutes and product.locations
