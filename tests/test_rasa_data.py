"""Training data, domain and config agree, and the held-out Dutch test set is really held out."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rasa.shared.nlu.training_data.loading import load_data

ROOT = Path(__file__).resolve().parents[1]


def test_rasa_data_validate_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rasa", "data", "validate", "--data", "bot/data", "--domain", "domain.yml",
         "--config", "config.yml", "--fail-on-warnings"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_held_out_messages_never_appear_in_the_training_data() -> None:
    training = {m.get("text").lower() for m in load_data(str(ROOT / "bot" / "data" / "nlu")).intent_examples}
    held_out = {m.get("text").lower() for m in load_data(str(ROOT / "tests" / "nlu_test.yml")).intent_examples}
    assert len(held_out) >= 150
    assert not held_out & training
