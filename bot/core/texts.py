"""Every citizen-facing sentence the assistant and the channels say, by key.

The copy lives in ``bot/data/content/texts.yml`` so that the content team changes a sentence without
touching code or retraining the model: the action server and the connectors read the file at start
and :func:`reload` reads it again.

A key is dotted (``appointments.ask_date``). Its value is either one text, or a mapping of channel
name to text with a ``default``: channels differ (WhatsApp has no buttons, so never "Tik op …"
there). Placeholders are ``{name}``; Gentinfo's contact details come from the catalogue, so the phone
number is written once: ``{gentinfo_phone}``, ``{gentinfo_email}``, ``{gentinfo_hours}``,
``{gentinfo_url}``. ``python -m bot.core.texts validate`` checks the file; the test suite runs it.
"""
from __future__ import annotations

import string
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional

import yaml

TEXTS_PATH = Path(__file__).resolve().parents[1] / "data" / "content" / "texts.yml"

#: Channel names a text may vary by (Rasa's input channel names; ``default`` for all others).
CHANNELS = ("default", "whatsapp", "telegram", "webchat", "rest")

Variants = Dict[str, str]


class TextsError(ValueError):
    """The texts file is broken (bad structure, unknown channel, unbalanced placeholder)."""


class MissingText(KeyError):
    """A key the code asks for is not in the texts file (a bug: the validate test catches it)."""


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Variants]]:
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, str):
            yield key, {"default": value}
        elif isinstance(value, Mapping) and "default" in value:
            unknown = set(value) - set(CHANNELS)
            if unknown:
                raise TextsError(f"{key}: unknown channel(s) {sorted(unknown)} (use {', '.join(CHANNELS)})")
            if not all(isinstance(text, str) for text in value.values()):
                raise TextsError(f"{key}: every channel variant must be a text")
            yield key, dict(value)
        elif isinstance(value, Mapping):
            yield from _flatten(value, f"{key}.")
        elif value is None:  # a section with no keys yet
            continue
        else:
            raise TextsError(f"{key}: expected a text or a mapping, got {type(value).__name__}")


def placeholders(text: str) -> List[str]:
    """The placeholder names in one text (``{name}`` → ``name``); raises on a broken brace."""
    try:
        return [field for _, field, _, _ in string.Formatter().parse(text) if field]
    except ValueError as error:
        raise TextsError(f"{text[:40]!r}…: {error}") from error


class Texts:
    """The loaded copy: one lookup per key and channel, placeholders filled."""

    def __init__(self, entries: Dict[str, Variants], defaults: Optional[Mapping[str, str]] = None) -> None:
        self._entries = entries
        self._defaults = dict(defaults or {})

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def keys(self) -> List[str]:
        return sorted(self._entries)

    def raw(self, key: str, channel: Optional[str] = None) -> str:
        """The unfilled text for a channel (falls back to ``default``)."""
        try:
            variants = self._entries[key]
        except KeyError:
            raise MissingText(key) from None
        return variants.get(channel or "default") or variants["default"]

    def say(self, key: str, channel: Optional[str] = None, **values: Any) -> str:
        """The text for ``key`` on ``channel`` with placeholders filled from ``values`` and the contact."""
        text = self.raw(key, channel)
        merged: Dict[str, Any] = {**self._defaults, **values}
        try:
            return text.format_map(merged)
        except KeyError as error:
            raise MissingText(f"{key}: no value for placeholder {error.args[0]!r}") from None


def _contact_defaults() -> Dict[str, str]:
    from bot.core.catalogue import get_catalogue

    contact = get_catalogue().contact
    return {
        "gentinfo_phone": contact.phone,
        "gentinfo_email": contact.email,
        "gentinfo_hours": contact.hours,
        "gentinfo_url": str(contact.url),
    }


def load(path: Path = TEXTS_PATH, defaults: Optional[Mapping[str, str]] = None) -> Texts:
    with path.open(encoding="utf-8") as handle:
        tree = yaml.safe_load(handle) or {}
    if not isinstance(tree, Mapping):
        raise TextsError("the texts file must be a mapping of keys")
    entries = dict(_flatten(tree))
    for variants in entries.values():
        for text in variants.values():
            placeholders(text)
    return Texts(entries, _contact_defaults() if defaults is None else defaults)


@lru_cache(maxsize=1)
def file_texts() -> Texts:
    """The texts file, read once per process."""
    return load(TEXTS_PATH)


def get_texts() -> Texts:
    """The copy (every action and connector asks on every turn): the newest version published in
    the content studio, else the file (bot/core/content_store.py)."""
    from bot.core.content_store import live

    return live("texts", file_texts)


def reload() -> Texts:
    """Read the file again (after the content team changed it)."""
    file_texts.cache_clear()
    return get_texts()


def say(key: str, channel: Optional[str] = None, **values: Any) -> str:
    """Shorthand for ``get_texts().say(...)``: the text most callers want."""
    return get_texts().say(key, channel, **values)


def main(argv: List[str]) -> int:
    if not argv or argv[0] != "validate":
        print("usage: python -m bot.core.texts validate [PATH]", file=sys.stderr)
        return 2
    path = Path(argv[1]) if len(argv) > 1 else TEXTS_PATH
    try:
        texts = load(path)
    except (TextsError, yaml.YAMLError, OSError) as error:
        print(f"texts {path} are broken:\n{error}", file=sys.stderr)
        return 1
    print(f"texts OK: {len(texts.keys())} keys")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
