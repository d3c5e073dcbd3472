"""The copy file: structure, channel variants and placeholders (bot/core/texts.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.core import texts
from bot.core.catalogue import get_catalogue


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "texts.yml"
    path.write_text(body, encoding="utf-8")
    return path


def test_the_project_texts_file_validates() -> None:
    assert texts.main(["validate"]) == 0


def test_a_channel_variant_wins_and_other_channels_get_the_default(tmp_path: Path) -> None:
    loaded = texts.load(write(tmp_path, "a:\n  pick:\n    default: Tik op een knop.\n    whatsapp: Stuur het nummer.\n"), {})
    assert loaded.say("a.pick", "whatsapp") == "Stuur het nummer."
    assert loaded.say("a.pick", "telegram") == "Tik op een knop."
    assert loaded.say("a.pick") == "Tik op een knop."


def test_gentinfo_contact_details_come_from_the_catalogue(tmp_path: Path) -> None:
    loaded = texts.load(write(tmp_path, "bel: Bel {gentinfo_phone}.\n"))
    assert loaded.say("bel") == f"Bel {get_catalogue().contact.phone}."


def test_an_unknown_key_or_a_missing_value_is_reported_by_name(tmp_path: Path) -> None:
    loaded = texts.load(write(tmp_path, "hallo: Dag {naam}.\n"), {})
    with pytest.raises(texts.MissingText, match="nergens"):
        loaded.say("nergens")
    with pytest.raises(texts.MissingText, match="naam"):
        loaded.say("hallo")
    assert loaded.say("hallo", naam="Ann") == "Dag Ann."


@pytest.mark.parametrize(
    "body",
    [
        "a:\n  default: x\n  sms: y\n",  # unknown channel
        "a: [1, 2]\n",  # not a text
        "a: 'kapot {'\n",  # unbalanced placeholder
    ],
)
def test_a_broken_texts_file_fails_validation(tmp_path: Path, body: str) -> None:
    assert texts.main(["validate", str(write(tmp_path, body))]) == 1
