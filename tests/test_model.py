"""Start-up reuses the model when nothing it is trained from changed, and keeps only the model in use.

On a small copy of the project's layout; ``rasa train`` itself is replaced by a stand-in that
writes the archive (the real training runs in the ``trained_model`` fixture of the suite).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import List

import pytest

from bot import model as model_module
from bot.model import ensure_model, fingerprint, training_inputs


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name, text in {
        "bot/data/nlu/faq.yml": "nlu: []\n",
        "bot/data/rules/rules.yml": "rules: []\n",
        "bot/data/content/texts.yml": "common:\n",
        "bot/nlp/input_guard.py": "# component\n",
        "domain.yml": "intents: []\n",
        "config.yml": "pipeline: []\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.fixture
def trainings(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """Stands in for ``rasa train``: records the call, writes the archive (slowly, like Rasa)."""
    calls: List[str] = []

    def train(directory: Path, name: str, root: Path) -> None:
        calls.append(name)
        time.sleep(0.2)  # long enough for a second start to come in while the first one trains
        (directory / f"{name}.tar.gz").write_bytes(b"model")

    monkeypatch.setattr(model_module, "_train", train)
    return calls


def test_content_edits_do_not_change_the_fingerprint_but_training_data_and_config_do(project: Path) -> None:
    def current() -> str:
        return fingerprint(training_inputs(project), project)

    first = current()
    (project / "bot/data/content/texts.yml").write_text("common:\n  hello: Dag!\n")
    assert current() == first
    (project / "bot/data/nlu/faq.yml").write_text("nlu: [x]\n")
    second = current()
    assert second != first
    (project / "config.yml").write_text("pipeline: [y]\n")
    assert current() not in (first, second)


def test_an_unchanged_project_reuses_its_model_without_training(project: Path, trainings: List[str]) -> None:
    models = project / "models"
    first = ensure_model(models, project)
    again = ensure_model(models, project)
    assert again == first and trainings == [first.name.removesuffix(".tar.gz")]


def test_after_training_only_the_model_in_use_is_kept(project: Path, trainings: List[str]) -> None:
    models = project / "models"
    old = ensure_model(models, project)
    (models / "20261201-120000-old-rasa-name.tar.gz").write_bytes(b"older")
    (project / "bot/data/nlu/faq.yml").write_text("nlu: [changed]\n")
    new = ensure_model(models, project)
    assert new != old and sorted(models.glob("*.tar.gz")) == [new]


def test_two_starts_at_once_train_once(project: Path, trainings: List[str]) -> None:
    models = project / "models"
    results: List[Path] = []
    starts = [threading.Thread(target=lambda: results.append(ensure_model(models, project))) for _ in range(2)]
    for start in starts:
        start.start()
    for start in starts:
        start.join()
    assert len(trainings) == 1 and results[0] == results[1]
