"""Train the assistant's model when the training data, domain or config changed.

Rasa fingerprints its inputs: when the newest model in ``models/`` matches, ``rasa train`` keeps
it and returns within seconds, so the run and test commands can always call this.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"


class TrainingFailed(RuntimeError):
    """``rasa train`` failed; the message carries the end of its log."""


def latest_model(directory: Path = MODELS) -> Optional[Path]:
    models = sorted(directory.glob("*.tar.gz"), key=lambda path: path.stat().st_mtime)
    return models[-1] if models else None


def ensure_model(directory: Path = MODELS) -> Path:
    """Path of an up-to-date trained model, training one if needed (log: ``<directory>/train.log``)."""
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "train.log"
    with log_path.open("w") as log:
        result = subprocess.run(
            [
                sys.executable, "-m", "rasa", "train",
                "--data", str(ROOT / "bot" / "data"),
                "--domain", str(ROOT / "domain.yml"),
                "--config", str(ROOT / "config.yml"),
                "--out", str(directory),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
        raise TrainingFailed(f"rasa train failed (full log: {log_path}):\n{tail}")
    model = latest_model(directory)
    if model is None:
        raise TrainingFailed(f"rasa train wrote no model to {directory}")
    return model


def main() -> int:
    print(f"Checking the model (training when the data changed; log: {MODELS / 'train.log'})", file=sys.stderr)
    try:
        print(ensure_model())
    except TrainingFailed as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
