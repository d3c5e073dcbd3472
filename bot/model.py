"""The assistant's trained model: reused when nothing it is trained from changed, trained otherwise.

Rasa 3.6's ``rasa train`` writes a new ~32 MB archive on every call even when its fingerprint says
nothing changed (nine starts left 279 MB in ``models/``), and takes ~30 s to find that out. Here:

- the inputs of training (training data under ``bot/data`` except ``content/``, which is read at
  run time, ``domain.yml``, ``config.yml``, the custom NLU code in ``bot/nlp/`` and the Rasa
  version) are hashed into a fingerprint, and the model is ``models/gentinfo-<fingerprint>.tar.gz``:
  when that file exists it is the answer, without starting Rasa at all (milliseconds);
- otherwise ``rasa train`` runs (log: ``models/train.log``) under an exclusive lock, so two starts at
  the same time never train twice nor write the same log; the second one finds the first one's model;
- after training, the other ``*.tar.gz`` archives in ``models/`` are deleted: only the model in use
  is kept (a running Rasa server has its model in memory, the file is not needed after start).
"""
from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Iterable, List, Optional

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
PREFIX = "gentinfo-"


class TrainingFailed(RuntimeError):
    """``rasa train`` failed; the message carries the end of its log."""


def training_inputs(root: Path = ROOT) -> List[Path]:
    """Every file the model is trained from, in a fixed order."""
    data = root / "bot" / "data"
    files = [path for path in data.rglob("*") if path.is_file() and "content" not in path.relative_to(data).parts]
    files += [root / "domain.yml", root / "config.yml"]
    files += list((root / "bot" / "nlp").glob("*.py"))
    return sorted(files)


def fingerprint(files: Iterable[Path], root: Path = ROOT) -> str:
    """Hash of the files' names and contents and of the Rasa version (16 hex digits)."""
    import rasa

    digest = hashlib.sha256(f"rasa {rasa.__version__}\n".encode())
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def latest_model(directory: Path = MODELS) -> Optional[Path]:
    models = sorted(directory.glob("*.tar.gz"), key=lambda path: path.stat().st_mtime)
    return models[-1] if models else None


def _remove_others(directory: Path, keep: Path) -> None:
    for path in directory.glob("*.tar.gz"):
        if path != keep:
            path.unlink(missing_ok=True)


def ensure_model(directory: Path = MODELS, root: Path = ROOT) -> Path:
    """Path of the model for the current data and config, training it only when there is none."""
    directory.mkdir(parents=True, exist_ok=True)
    name = PREFIX + fingerprint(training_inputs(root), root)
    model = directory / f"{name}.tar.gz"
    if model.exists():
        return model
    with (directory / ".train.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another start may be training this very model
        if not model.exists():
            _train(directory, name, root)
        _remove_others(directory, model)
    return model


def _train(directory: Path, name: str, root: Path) -> None:
    log_path = directory / "train.log"
    with log_path.open("w") as log:
        result = subprocess.run(
            [
                sys.executable, "-m", "rasa", "train",
                "--data", str(root / "bot" / "data"),
                "--domain", str(root / "domain.yml"),
                "--config", str(root / "config.yml"),
                "--out", str(directory),
                "--fixed-model-name", name,
            ],
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
        raise TrainingFailed(f"rasa train failed (full log: {log_path}):\n{tail}")
    if not (directory / f"{name}.tar.gz").exists():
        raise TrainingFailed(f"rasa train wrote no model {name}.tar.gz to {directory}")


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
