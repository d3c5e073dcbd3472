"""Citizen texts of error classes, read from texts.yml when shown (not when the class is defined).

``message_nl = Copy("appointments.slot_taken")`` works on the class and on an instance, so
``InvalidName.message_nl`` and ``error.message_nl`` both give the current Dutch text, and a change in
texts.yml (``bot.core.texts.reload``) is seen without restarting.
"""
from __future__ import annotations

from typing import Any, Optional

from bot.core.texts import say


class Copy:
    """A class attribute that reads one texts.yml key when accessed."""

    def __init__(self, key: str, **values: Any) -> None:
        self.key = key
        self.values = values

    def __get__(self, instance: object, owner: Optional[type] = None) -> str:
        return say(self.key, **self.values)
