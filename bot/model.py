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


def latest_model(directory: Path = MODELS) -> Optional[Path]:
    models = sorted(directory.glob("*.tar.gz"), key=lambda path: path.stat().st_mtime)
    return models[-1] if models else None


def ensure_model(directory: Path = MODELS, quiet: bool = False) -> Path:
    """Path of an up-to-date trained model, training one if needed (``quiet``: log to models/train.log)."""
    directory.mkdir(parents=True, exist_ok=True)
    log = (directory / "train.log").open("w") if quiet else None
    subprocess.run(
        [
            sys.executable, "-m", "rasa", "train",
            "--data", str(ROOT / "bot" / "data"),
            "--domain", str(ROOT / "domain.yml"),
            "--config", str(ROOT / "config.yml"),
            "--out", str(directory),
        ],
        cwd=ROOT,
        check=True,
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
    )
    model = latest_model(directory)
    if model is None:
        raise RuntimeError(f"rasa train wrote no model to {directory}")
    return model


if __name__ == "__main__":
    print(ensure_model())
