"""Build the offline Dutch spaCy pipeline that Rasa's SpacyNLP loads.

No Dutch pipeline package can be downloaded on our machines, so we start from ``spacy.blank("nl")``
(Dutch tokenizer rules) and add the lookup lemmatizer whose tables ship in ``spacy-lookups-data``.
Lemmas let the featurizers see "reispassen" and "reispas" as one word. Nothing here touches the network.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import spacy
from spacy.language import Language

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "models" / "spacy_nl"


def build() -> Language:
    nlp = spacy.blank("nl")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    nlp.meta["name"] = "gentinfo_nl"
    nlp.meta["description"] = "spacy.blank('nl') + lookup lemmatizer (spacy-lookups-data)"
    return nlp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--if-missing", action="store_true", help="do nothing when the pipeline exists")
    args = parser.parse_args()
    if args.if_missing and (args.out / "meta.json").exists():
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    build().to_disk(args.out)
    print(f"spaCy pipeline written to {args.out}")


if __name__ == "__main__":
    main()
