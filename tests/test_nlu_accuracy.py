"""Intent accuracy of the trained model on the held-out Dutch test set (tests/nlu_test.yml).

The set is truly unseen: fresh phrasings, never trained on, never used for a choice (choices use
tests/nlu_dev.yml, see bench/nlu_compare.py), and tests/test_eval_sets.py fails when a message in it is a
near-copy of a training example. The figure printed here is the one to quote. The misclassified texts are
not printed (nobody should tune on them); set ``GENTINFO_EVAL_SHOW_MISSES=1`` to see them when debugging.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Measured 2026-12-02 on the fresh set (201 messages): accuracy 0.771, macro-F1 0.764 (46 errors), with the
#: seeded config.yml. The old set scored 0.957 because 17 of its messages were near-copies of training
#: examples. The threshold is the measured figure minus two messages: the set must not get worse (issue 12).
MIN_ACCURACY = 0.76


def test_held_out_intent_accuracy_meets_the_target(trained_model: Path, tmp_path: Path, capsys) -> None:
    subprocess.run(
        [sys.executable, "-m", "rasa", "test", "nlu", "--nlu", "tests/nlu_test.yml", "--model", str(trained_model),
         "--out", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True,
    )
    report = json.loads((tmp_path / "intent_report.json").read_text())
    errors = json.loads((tmp_path / "intent_errors.json").read_text())
    accuracy, macro_f1 = report["accuracy"], report["macro avg"]["f1-score"]
    confusions = Counter(f"{e['intent']} -> {e['intent_prediction']['name']}" for e in errors)
    with capsys.disabled():
        print(f"\nNLU held-out: accuracy {accuracy:.3f}, macro-F1 {macro_f1:.3f}, {len(errors)} errors "
              f"of {int(report['macro avg']['support'])}")
        for confusion, count in confusions.most_common():
            print(f"  {count} x {confusion}")
        if os.environ.get("GENTINFO_EVAL_SHOW_MISSES"):
            for error in errors:
                print(f"  MISS {error['intent']} -> {error['intent_prediction']['name']}: {error['text']!r}")
    assert accuracy >= MIN_ACCURACY
