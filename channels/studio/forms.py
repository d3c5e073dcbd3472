"""What the studio's forms show and how a submitted form changes a content document.

Editors see plain fields (answer, synonyms one per line, link, price, documents, appointment), not
YAML. A topic is a catalogue product or a knowledge topic; both are shown with the same field names
and mapped to their own keys here. Validation problems of the content store come back with a path
(``products.3.price``); :func:`field_problems` turns them into "this field: this message" for the
form that is on screen, and everything that belongs to no field of it into general messages.
"""
from __future__ import annotations

import copy
import re
from datetime import date
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from bot.core.catalogue import WEEKDAYS
from bot.core.content_checks import KNOWLEDGE_PREFIX, Problem, TopicRef, topic_refs
from bot.core.texts import CHANNELS

MAX_FIELD_CHARS = 2000
MAX_LIST_ITEMS = 200

Field = Dict[str, Any]

#: Topic fields: (form name, label, type, product key, knowledge key). ``None``: not for that kind.
TOPIC_FIELDS: Tuple[Tuple[str, str, str, Optional[str], Optional[str]], ...] = (
    ("title", "Titel", "text", "name", "title"),
    ("answer", "Antwoord", "textarea", "summary", "answer"),
    ("synonyms", "Synoniemen (één per regel)", "list", "synonyms", "synonyms"),
    ("url", "Link", "text", "url", "url"),
    ("price", "Prijs", "text", "price", "price"),
    ("bring", "Mee te brengen documenten (één per regel)", "list", "bring", "bring"),
    ("appointment", "Afspraak nodig", "select", "appointment", "appointment"),
    ("who", "Voor wie", "text", "who", "who"),
    ("where", "Waar", "text", None, "where"),
    ("delivery", "Levering", "text", "delivery", None),
)
APPOINTMENT_CHOICES = {
    "product": [("required", "verplicht"), ("recommended", "aangeraden"), ("not_needed", "niet nodig")],
    "topic": [("", "—"), ("required", "verplicht"), ("recommended", "aangeraden"), ("not_needed", "niet nodig"),
              ("online", "online")],
}
LOCATION_FIELDS: Tuple[Tuple[str, str, str], ...] = (
    ("name", "Naam", "text"),
    ("address", "Adres", "text"),
    ("walk_in", "Zonder afspraak", "textarea"),
    ("synonyms", "Synoniemen (één per regel)", "list"),
    ("url", "Link", "text"),
    *((f"hours_{day}", f"Openingsuren {day} (bv. 08:30-12:30, 13:30-16:30)", "text") for day in WEEKDAYS),
)
TEXT_LABELS = {"default": "Alle kanalen", "whatsapp": "WhatsApp", "telegram": "Telegram", "webchat": "Webchat",
               "rest": "REST"}


class FormError(ValueError):
    """A submitted form is malformed (not a validation problem of the content)."""


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FormError(f"{name}: tekst verwacht")
    if len(value) > MAX_FIELD_CHARS:
        raise FormError(f"{name}: te lang (max. {MAX_FIELD_CHARS} tekens)")
    return value.strip()


def _lines(value: Any, name: str) -> List[str]:
    items = value.splitlines() if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items) or len(items) > MAX_LIST_ITEMS:
        raise FormError(f"{name}: lijst van teksten verwacht")
    return [_text(i, name) for i in items if i.strip()]


# --- topics --------------------------------------------------------------------------------------------


def topic_list(docs: Mapping[str, Any]) -> List[Dict[str, str]]:
    out = []
    for topic_id, ref in topic_refs(docs).items():
        item = docs[ref.document][ref.list_key][ref.index]
        out.append({"id": topic_id, "title": str(item.get("name") or item.get("title") or topic_id),
                    "document": ref.document, "kind": "product" if ref.document == "catalogue" else "topic"})
    return sorted(out, key=lambda t: t["title"].lower())


def _kind(ref: TopicRef) -> str:
    return "product" if ref.document == "catalogue" else "topic"


def topic_form(docs: Mapping[str, Any], topic_id: str) -> Optional[Dict[str, Any]]:
    ref = topic_refs(docs).get(topic_id)
    if ref is None:
        return None
    kind = _kind(ref)
    item = docs[ref.document][ref.list_key][ref.index]
    fields: List[Field] = []
    for name, label, kind_of_field, product_key, topic_key in TOPIC_FIELDS:
        key = product_key if kind == "product" else topic_key
        if key is None:
            continue
        value = item.get(key)
        field: Field = {"name": name, "label": label, "type": kind_of_field,
                        "value": "\n".join(value or []) if kind_of_field == "list" else (value or "")}
        if kind_of_field == "select":
            field["options"] = [{"value": v, "label": lab} for v, lab in APPOINTMENT_CHOICES[kind]]
        fields.append(field)
    return {"id": topic_id, "document": ref.document, "kind": kind, "fields": fields}


def apply_topic(docs: Mapping[str, Any], topic_id: str, values: Mapping[str, Any],
                today: Optional[date] = None) -> Tuple[str, Any, TopicRef]:
    """(document name, the changed document, where the topic is) — the caller saves the draft."""
    ref = topic_refs(docs).get(topic_id)
    if ref is None:
        raise FormError("Dit onderwerp bestaat niet.")
    kind = _kind(ref)
    document = copy.deepcopy(docs[ref.document])
    item = document[ref.list_key][ref.index]
    for name, _label, kind_of_field, product_key, topic_key in TOPIC_FIELDS:
        key = product_key if kind == "product" else topic_key
        if key is None or name not in values:
            continue
        value: Any = _lines(values[name], name) if kind_of_field == "list" else _text(values[name], name)
        if kind == "topic" and value in ("", []) and key not in ("answer", "title", "url", "synonyms"):
            item.pop(key, None)  # optional aspects are left out rather than empty
        else:
            item[key] = value
    if kind == "topic":
        item["checked"] = (today or date.today()).isoformat()  # an editor looked at it today
    return ref.document, document, ref


def new_topic(docs: Mapping[str, Any], domain: str, topic_id: str, title: str) -> Tuple[str, Any]:
    if not re.fullmatch(r"[a-z][a-z0-9_]{1,59}", topic_id or ""):
        raise FormError("Id: kleine letters, cijfers en _ (bv. grofvuil_ophalen).")
    if topic_id in topic_refs(docs):
        raise FormError("Dit id bestaat al.")
    name = f"{KNOWLEDGE_PREFIX}{domain}"
    document = copy.deepcopy(docs.get(name)) or {"domain": domain, "title": domain.capitalize(), "topics": []}
    document.setdefault("topics", []).append({"id": topic_id, "title": _text(title, "title"), "synonyms": [],
                                             "answer": "", "url": "", "owner": "",
                                             "checked": date.today().isoformat()})
    return name, document


# --- locations, closing days, texts ----------------------------------------------------------------


def location_form(catalogue: Mapping[str, Any], location_id: str) -> Optional[Dict[str, Any]]:
    index = next((i for i, loc in enumerate(catalogue.get("locations", [])) if loc.get("id") == location_id), None)
    if index is None:
        return None
    location = catalogue["locations"][index]
    fields: List[Field] = []
    for name, label, kind in LOCATION_FIELDS:
        if name.startswith("hours_"):
            value = ", ".join(location.get("opening_hours", {}).get(name[6:], []))
        elif kind == "list":
            value = "\n".join(location.get(name) or [])
        else:
            value = location.get(name) or ""
        fields.append({"name": name, "label": label, "type": kind, "value": value})
    return {"id": location_id, "document": "catalogue", "index": index, "fields": fields}


def apply_location(catalogue: Mapping[str, Any], location_id: str, values: Mapping[str, Any]) -> Tuple[Any, int]:
    document = copy.deepcopy(catalogue)
    index = next((i for i, loc in enumerate(document.get("locations", [])) if loc.get("id") == location_id), None)
    if index is None:
        raise FormError("Deze locatie bestaat niet.")
    location = document["locations"][index]
    hours = dict(location.get("opening_hours") or {})
    for name, _label, kind in LOCATION_FIELDS:
        if name not in values:
            continue
        if name.startswith("hours_"):
            spans = [s.strip() for s in _text(values[name], name).replace(";", ",").split(",") if s.strip()]
            day = name[6:]
            if spans:
                hours[day] = [s.replace(" ", "") for s in spans]
            else:
                hours.pop(day, None)  # a day without hours is closed
        else:
            location[name] = _lines(values[name], name) if kind == "list" else _text(values[name], name)
    location["opening_hours"] = {day: hours[day] for day in WEEKDAYS if day in hours}
    return document, index


def apply_closing_days(catalogue: Mapping[str, Any], days: Any) -> Any:
    if not isinstance(days, list) or len(days) > MAX_LIST_ITEMS:
        raise FormError("Een lijst van sluitingsdagen verwacht.")
    document: Dict[str, Any] = dict(copy.deepcopy(catalogue))
    cleaned = []
    for number, day in enumerate(days):
        if not isinstance(day, Mapping):
            raise FormError(f"Sluitingsdag {number + 1}: ongeldig")
        locations = day.get("locations") or []
        cleaned.append({"date": _text(day.get("date"), "date"), "reason": _text(day.get("reason"), "reason"),
                        "locations": _lines(locations, "locations") if locations else []})
    document["closing_days"] = cleaned
    return document


def text_entries(tree: Any) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []

    def walk(node: Any, prefix: str) -> None:
        for name, value in (node or {}).items():
            key = f"{prefix}{name}"
            if isinstance(value, str):
                out.append({"key": key, "variants": {"default": value}})
            elif isinstance(value, Mapping) and "default" in value:
                out.append({"key": key, "variants": dict(value)})
            elif isinstance(value, Mapping):
                walk(value, f"{key}.")

    walk(tree if isinstance(tree, Mapping) else {}, "")
    return out


def apply_text(tree: Any, key: str, variants: Any) -> Any:
    """Set one key's texts; an empty channel variant is removed (the default then applies)."""
    if not isinstance(variants, Mapping) or not isinstance(variants.get("default"), str):
        raise FormError("De tekst voor alle kanalen is verplicht.")
    unknown = set(variants) - set(CHANNELS)
    if unknown:
        raise FormError(f"Onbekend kanaal: {', '.join(sorted(unknown))}")
    document = copy.deepcopy(tree)
    parts = key.split(".")
    node = document
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise FormError("Deze tekst bestaat niet.")
    if parts[-1] not in node:
        raise FormError("Deze tekst bestaat niet.")
    kept = {channel: _text(text, channel) for channel, text in variants.items()
            if channel == "default" or _text(text, channel)}
    node[parts[-1]] = kept["default"] if list(kept) == ["default"] else kept
    return document


# --- problems next to fields ---------------------------------------------------------------------


def field_problems(problems: Sequence[Problem], document: str, prefix: Tuple[Any, ...],
                   key_to_field: Mapping[str, str]) -> Tuple[Dict[str, List[str]], List[str]]:
    """Problems at ``document``/``prefix`` by form field; all others as general messages."""
    fields: Dict[str, List[str]] = {}
    general: List[str] = []
    for problem in problems:
        path = problem.path
        if problem.document == document and path[:len(prefix)] == prefix:
            rest = path[len(prefix):]
            key = str(rest[0]) if rest else problem.message.split(" ", 1)[0]  # "price must say …"
            if key in key_to_field:
                fields.setdefault(key_to_field[key], []).append(problem.message)
                continue
        where = ".".join(str(p) for p in path)
        general.append(f"{problem.document}{' ' + where if where else ''}: {problem.message}")
    return fields, general


def topic_keys(kind: str) -> Dict[str, str]:
    """Document key → form field name, for a product or a knowledge topic."""
    keys: Dict[str, str] = {}
    for name, _label, _type, product_key, topic_key in TOPIC_FIELDS:
        key = product_key if kind == "product" else topic_key
        if key:
            keys[key] = name
    return keys


def location_keys() -> Dict[str, str]:
    keys = {name: name for name, _label, _kind in LOCATION_FIELDS if not name.startswith("hours_")}
    keys["opening_hours"] = "hours_maandag"  # the validator names the field, not the day
    return keys
