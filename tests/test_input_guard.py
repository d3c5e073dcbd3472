"""Messages no classifier should guess at are recognised before they reach a dialogue."""
from __future__ import annotations

import pytest

from bot.nlp.input_guard import guard_reason


@pytest.mark.parametrize(
    "text, reason",
    [("", "empty"), ("   \n ", "empty"), (None, "empty"), ("😀🙈👍", "no_words"), ("?!...", "no_words"),
     ("a" * 1501, "too_long")],
)
def test_guard_names_why_a_message_cannot_be_understood(text, reason: str) -> None:
    assert guard_reason(text, max_chars=1500) == reason


@pytest.mark.parametrize("text", ["reispas?", "ik wil een afspraak 😀", "<b>reispas</b>", "a" * 1500, "1"])
def test_guard_lets_real_questions_through(text: str) -> None:
    assert guard_reason(text, max_chars=1500) is None
