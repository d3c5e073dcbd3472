"""NLU component that catches input no classifier should guess at.

An empty message, one made only of emoji or punctuation, or a wall of text would otherwise get a
random intent with misleading confidence. The guard overrides the intent with ``invalid_input``
(confidence 1.0) and records why in the parse data (``input_guard``), so one action can answer
with a friendly Dutch message fitting the case.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

GUARD_KEY = "input_guard"
_WORD_CHARACTER = re.compile(r"\w", re.UNICODE)


def guard_reason(text: Optional[str], max_chars: int) -> Optional[str]:
    """Why a text cannot be understood (``empty``, ``no_words``, ``too_long``), or None."""
    text = (text or "").strip()
    if not text:
        return "empty"
    if len(text) > max_chars:
        return "too_long"
    if not _WORD_CHARACTER.search(text.replace("_", "")):
        return "no_words"
    return None


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class InputGuard(GraphComponent):
    """Overrides the predicted intent for empty, emoji-only and over-long messages."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"max_chars": 1500, "intent": "invalid_input"}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self._max_chars = int(config["max_chars"])
        self._intent = config["intent"]

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "InputGuard":
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            reason = guard_reason(message.get(TEXT), self._max_chars)
            if reason is None:
                continue
            intent = {"name": self._intent, "confidence": 1.0}
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [intent], add_to_output=True)
            message.set(GUARD_KEY, reason, add_to_output=True)
        return messages
