"""Intent accuracy of the trained model on the held-out Dutch test file (tests/nlu_test.yml)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Raise towards 0.95 as the training data grows (README, "NLU accuracy").
MIN_ACCURACY = 0.90


def test_held_out_intent_accuracy_meets_the_target(trained_model: Path, tmp_path: Path, capsys) -> None:
    subprocess.run(
        [sys.executable, "-m", "rasa", "test", "nlu", "--nlu", "tests/nlu_test.yml", "--model", str(trained_model),
         "--out", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True,
    )
    report = json.loads((tmp_path / "intent_report.json").read_text())
    errors = json.loads((tmp_path / "intent_errors.json").read_text())
    accuracy, macro_f1 = report["accuracy"], report["macro avg"]["f1-score"]
    with capsys.disabled():
        print(f"\nNLU held-out: accuracy {accuracy:.3f}, macro-F1 {macro_f1:.3f}, {len(errors)} errors")
        for error in errors:
            print(f"  {error['intent']} -> {error['intent_prediction']['name']}: {error['text']!r}")
    assert accuracy >= MIN_ACCURACY
