#!/usr/bin/env python
"""The project's NLU pipeline next to Rasa's default one, trained on the same data, in one run.

Trains NLU-only models from ``bot/data/nlu`` with ``config.yml`` (blank Dutch spaCy + lemmas,
character n-grams 2-5, one-layer DIET, input guard, fallback at 0.5) and with
``bench/default_config.yml`` (what ``rasa init`` trains: WhitespaceTokenizer, n-grams 1-4, DIET
100 epochs, fallback at 0.3), then evaluates both on the development set ``tests/nlu_dev.yml`` with
``rasa test nlu``: intent accuracy, macro-F1, errors and training time. Takes about 4-6 minutes
on 2 cores; run it when the machine is otherwise idle.

Choices are made on the dev set only. The held-out ``tests/nlu_test.yml`` is never looked at here:
a set that picks the pipeline stops being unseen, so its figure (tests/test_nlu_accuracy.py) stays
the honest one.

    .venv/bin/python bench/nlu_compare.py [--json bench/results/nlu.json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
#: The set for choices; never tests/nlu_test.yml (see the module docstring).
DEV_SET = ROOT / "tests" / "nlu_dev.yml"
CONFIGS = {
    "project (config.yml)": ROOT / "config.yml",
    "rasa init default (bench/default_config.yml)": ROOT / "bench" / "default_config.yml",
}


def run(args: List[str], log: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "RASA_TELEMETRY_ENABLED": "false",
           "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    with log.open("a") as out:
        done = subprocess.run([sys.executable, "-m", "rasa", *args], cwd=ROOT, env=env, stdout=out,
                              stderr=subprocess.STDOUT)
    if done.returncode:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"rasa {args[0]} {args[1]} failed:\n{tail}")


def evaluate(name: str, config: Path, workdir: Path) -> Dict[str, Any]:
    slug = "project" if config.name == "config.yml" else "default"
    out, log = workdir / slug, workdir / f"{slug}.log"
    out.mkdir()
    started = time.monotonic()
    run(["train", "nlu", "--config", str(config), "--nlu", str(ROOT / "bot" / "data" / "nlu"),
         "--out", str(out), "--fixed-model-name", slug], log)
    trained = time.monotonic() - started
    run(["test", "nlu", "--nlu", str(DEV_SET), "--model", str(out / f"{slug}.tar.gz"),
         "--out", str(out / "report")], log)
    report = json.loads((out / "report" / "intent_report.json").read_text())
    errors = json.loads((out / "report" / "intent_errors.json").read_text())
    return {
        "pipeline": name,
        "accuracy": round(report["accuracy"], 3),
        "macro_f1": round(report["macro avg"]["f1-score"], 3),
        "weighted_f1": round(report["weighted avg"]["f1-score"], 3),
        "errors": len(errors),
        "test_messages": int(report["macro avg"]["support"]),
        "train_seconds": round(trained),
        "worst_errors": [f"{e['intent']} -> {e['intent_prediction']['name']}: {e['text']!r}" for e in errors[:8]],
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    subprocess.run([sys.executable, "-m", "bot.nlp.build_pipeline", "--if-missing"], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    workdir = Path(tempfile.mkdtemp(prefix="gentinfo-nlu-"))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} cores, load before run {load}; work directory {workdir}", flush=True)
    results = []
    try:
        for name, config in CONFIGS.items():
            results.append(evaluate(name, config, workdir))
            print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nDev set {DEV_SET.relative_to(ROOT)} (choices only; the held-out figure is tests/test_nlu_accuracy.py)")
    print("| pipeline | intent accuracy | macro-F1 | errors | training (s) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for result in results:
        print(f"| {result['pipeline']} | {result['accuracy']:.3f} | {result['macro_f1']:.3f} | "
              f"{result['errors']} / {result['test_messages']} | {result['train_seconds']} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "results": results}, indent=2,
                                        ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
