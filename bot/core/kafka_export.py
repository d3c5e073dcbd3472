"""KAFKA-meldpunt exports for staff: records, CSV (safe against spreadsheet formulas) and JSON (safe to
embed in HTML). Split from ``bot/core/kafka.py``, which re-exports these names.
"""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from typing import Any, Dict, Iterable, Optional

from bot.core.catalogue import Catalogue
from bot.core.kafka_model import CITY_TZ, Suggestion

# -- exports ---------------------------------------------------------------------------------------
CSV_COLUMNS = (
    "reference",
    "created_at",
    "updated_at",
    "status",
    "status_label",
    "product_id",
    "product_name",
    "product_other",
    "problem",
    "proposal",
    "anonymous",
    "consent",
    "consent_at",
    "contact_name",
    "contact_email",
    "contact_phone",
    "channel",
    "internal_note",
    "contact_purged_at",
)

#: First characters that make Excel/LibreOffice read a cell as a formula (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_JSON_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_HTML_UNSAFE = re.compile("[<>&\u2028\u2029]")


def _iso(value: Optional[datetime]) -> Optional[str]:
    """Ghent local time with its offset, to the second: unambiguous and readable for staff."""
    return value.astimezone(CITY_TZ).isoformat(timespec="seconds") if value else None


def to_record(
    suggestion: Suggestion, *, catalogue: Optional[Catalogue] = None, include_conversation: bool = False
) -> Dict[str, Any]:
    """JSON-ready dict for staff. The conversation id (a phone number on WhatsApp) only on request."""
    product = catalogue.product(suggestion.product_id) if catalogue and suggestion.product_id else None
    record: Dict[str, Any] = {
        "reference": suggestion.reference,
        "created_at": _iso(suggestion.created_at),
        "updated_at": _iso(suggestion.updated_at),
        "status": suggestion.status.value,
        "status_label": suggestion.status.label,
        "product_id": suggestion.product_id,
        "product_name": product.name if product else None,
        "product_other": suggestion.product_other,
        "problem": suggestion.problem,
        "proposal": suggestion.proposal,
        "anonymous": suggestion.anonymous,
        "consent": suggestion.consent,
        "consent_at": _iso(suggestion.consent_at),
        "contact_name": suggestion.contact_name,
        "contact_email": suggestion.contact_email,
        "contact_phone": suggestion.contact_phone,
        "channel": suggestion.channel,
        "internal_note": suggestion.internal_note,
        "contact_purged_at": _iso(suggestion.contact_purged_at),
        "history": [
            {"status": c.status.value, "status_label": c.status.label, "changed_at": _iso(c.changed_at), "note": c.note}
            for c in suggestion.history
        ],
    }
    if include_conversation:
        record["conversation_id"] = suggestion.conversation_id
    return record


def spreadsheet_safe(value: str) -> str:
    """Prefix an apostrophe when a spreadsheet would otherwise evaluate the cell as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def export_csv(suggestions_: Iterable[Suggestion], *, catalogue: Optional[Catalogue] = None) -> str:
    """CSV (RFC 4180 via the csv module, one header row ``CSV_COLUMNS``), safe to open in Excel."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for suggestion in suggestions_:
        record = to_record(suggestion, catalogue=catalogue)
        cells = []
        for column in CSV_COLUMNS:
            value = record[column]
            if isinstance(value, bool):
                value = "true" if value else "false"
            cells.append("" if value is None else spreadsheet_safe(str(value)))
        writer.writerow(cells)
    return buffer.getvalue()


def safe_json_dumps(value: Any) -> str:
    """JSON that can be pasted inside an HTML ``<script>`` block: ``<``, ``>``, ``&`` become \\u escapes."""
    dumped = json.dumps(value, ensure_ascii=False)
    return _JSON_HTML_UNSAFE.sub(lambda match: _JSON_HTML_ESCAPES[match.group(0)], dumped)


def export_json(suggestions_: Iterable[Suggestion], *, catalogue: Optional[Catalogue] = None) -> str:
    """``{"count": n, "suggestions": [record, ...]}``, HTML-safe (see ``safe_json_dumps``)."""
    records = [to_record(s, catalogue=catalogue) for s in suggestions_]
    return safe_json_dumps({"count": len(records), "suggestions": records})
