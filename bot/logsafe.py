"""Keep citizens' phone numbers and e-mail addresses out of the logs (INFO and above).

Conversation ids carry phone numbers (``whatsapp:+32470123456``) and citizens type their contact
details into the chat; a library that logs a sender id or a message at INFO, WARNING or ERROR
(Rasa's REST channel logs the text of a message that failed) would put them in the log store.
``install()`` masks them in every record of level INFO and above, in every logger and handler of
the process, as the record is made: the formatted message, and the traceback text when there is
one. DEBUG records are left alone (debugging on a developer's machine); production runs at INFO.

Both processes install it: the Rasa server through ``connectors/ops.py`` (loaded by
``credentials.yml``) and the action server in ``bot/action_server.py``.
"""
from __future__ import annotations

import logging
import re
import traceback
from typing import Any, Callable, Optional

from bot.core.contact import MASK
from bot.core.contact import mask as mask_contact

#: local@domain.tld; deliberately wide (a masked non-address costs nothing).
_EMAIL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
#: A phone number: "+" or "0" (also "00"), then 7 to 15 more digits, optionally separated by one
#: space, dot, slash or dash. Not inside a longer word or number.
_PHONE = re.compile(r"(?<![\w.+/-])(?:\+[ ]?|0)\d(?:[ ./-]?\d){6,15}(?![\w])")
#: "0.98765432" is a confidence, not a number someone can be called on.
_DECIMAL = re.compile(r"^0\.\d+$")

_MARK = "_gentinfo_masked"


def _mask_phone(match: "re.Match[str]") -> str:
    value = match.group(0)
    if _DECIMAL.match(value):
        return value
    masked = mask_contact(value)
    return masked if masked != MASK * 3 else f"{value[:1]}{MASK * 3}"


def mask_text(text: str) -> str:
    """``text`` with every e-mail address and phone number masked."""
    if "@" in text:
        text = _EMAIL.sub(lambda m: mask_contact(m.group(0)), text)
    if sum(char.isdigit() for char in text) >= 8:
        text = _PHONE.sub(_mask_phone, text)
    return text


class MaskContactDetails(logging.Filter):
    """A logging filter that masks contact details in records at ``level`` and above.

    Usable on a handler (``handler.addFilter(MaskContactDetails())``); ``install()`` applies it to
    every record of the process instead, so handlers added later by Rasa, Sanic or rasa-sdk are
    covered too.
    """

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.level or getattr(record, _MARK, False):
            return True
        setattr(record, _MARK, True)
        try:
            message = record.getMessage()
        except Exception:
            return True
        masked = mask_text(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        elif record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


_installed: Optional[MaskContactDetails] = None


def install(level: int = logging.INFO) -> MaskContactDetails:
    """Mask contact details in every log record of this process from now on (idempotent)."""
    global _installed
    if _installed is not None:
        _installed.level = level
        return _installed
    masker = MaskContactDetails(level)
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        masker.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = masker
    return masker
