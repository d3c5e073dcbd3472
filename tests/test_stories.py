"""The Rasa test conversations in tests/stories/ pass against the trained model and action server."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STORIES = ROOT / "tests" / "stories"


def test_there_are_at_least_25_test_conversations() -> None:
    count = sum(len(yaml.safe_load(path.read_text())["stories"]) for path in STORIES.glob("*.yml"))
    assert count >= 25


def test_all_test_conversations_pass(assistant, trained_model: Path, tmp_path: Path) -> None:
    env = {**os.environ, **assistant.env}
    result = subprocess.run(
        [sys.executable, "-m", "rasa", "test", "core", "--stories", str(STORIES), "--model", str(trained_model),
         "--endpoints", "endpoints.yml", "--out", str(tmp_path), "--no-plot"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    failed = tmp_path / "failed_test_stories.yml"
    failures = failed.read_text() if failed.exists() else ""
    assert "story:" not in failures, failures
