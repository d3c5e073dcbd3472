"""Validate a set of content documents and build the runtime objects from it.

The content studio stores documents as JSON: ``catalogue`` (catalogue.yml), ``texts`` (texts.yml)
and ``knowledge/<domain>`` (one knowledge file). They are checked with exactly the validators the
command-line checks use (``python -m bot.core.catalogue validate``, ``… texts validate``,
``… knowledge validate``), so what passes here also passes there. Problems carry the path of the
field (``products.3.price``) so the studio shows them next to that field.

``bot.core.knowledge`` is imported by name at call time: it is written on another branch and this
module must work (catalogue and texts only) without it.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import yaml
from pydantic import ValidationError

from bot.core import catalogue as catalogue_module
from bot.core import texts as texts_module

CONTENT_DIR = Path(__file__).resolve().parents[1] / "data" / "content"
KNOWLEDGE_DIR = CONTENT_DIR / "knowledge"
KNOWLEDGE_PREFIX = "knowledge/"

PathPart = Union[str, int]


@dataclass(frozen=True)
class Problem:
    """One validation error: where (``("products", 3, "price")``) and what, in the validator's words."""

    document: str
    path: Tuple[PathPart, ...]
    message: str

    def as_dict(self) -> Dict[str, Any]:
        return {"document": self.document, "path": ".".join(str(p) for p in self.path), "message": self.message}


def knowledge_module() -> Optional[ModuleType]:
    """``bot.core.knowledge`` when it exists (after the knowledge branch is merged), else None."""
    try:
        return importlib.import_module("bot.core.knowledge")
    except ModuleNotFoundError:
        return None


def plain(data: Any) -> Any:
    """YAML data as JSON data: dates become ISO strings (the validators parse them back)."""

    def default(value: Any) -> str:
        if isinstance(value, (date, datetime)):
            return value.isoformat()
        return str(value)

    return json.loads(json.dumps(data, default=default, ensure_ascii=False))


def file_document(name: str) -> Optional[Any]:
    """A document as the repository's YAML file has it (None when there is no such file)."""
    if name == "catalogue":
        path = catalogue_module.CATALOGUE_PATH
    elif name == "texts":
        path = texts_module.TEXTS_PATH
    elif name.startswith(KNOWLEDGE_PREFIX) and name[len(KNOWLEDGE_PREFIX):].replace("_", "").isalnum():
        path = KNOWLEDGE_DIR / f"{name[len(KNOWLEDGE_PREFIX):]}.yml"
    else:
        return None
    if not path.is_file():
        return None
    return json.loads(_file_json(path, path.stat().st_mtime_ns))  # a fresh copy: callers edit it


@lru_cache(maxsize=64)
def _file_json(path: Path, mtime_ns: int) -> str:
    """The file as JSON text, parsed once per modification (YAML parsing is slow)."""
    with path.open(encoding="utf-8") as handle:
        return json.dumps(plain(yaml.safe_load(handle) or {}), ensure_ascii=False)


def file_names() -> List[str]:
    names = ["catalogue", "texts"]
    if KNOWLEDGE_DIR.is_dir():
        names += [f"{KNOWLEDGE_PREFIX}{p.stem}" for p in sorted(KNOWLEDGE_DIR.glob("*.yml"))]
    return names


def _pydantic(document: str, error: ValidationError, prefix: Tuple[PathPart, ...] = ()) -> List[Problem]:
    problems = []
    for item in error.errors():
        loc = tuple(part for part in item["loc"] if part != "__root__")
        problems.append(Problem(document, prefix + loc, item["msg"]))
    return problems


def _check_catalogue(data: Any) -> Tuple[Optional[catalogue_module.Catalogue], List[Problem]]:
    try:
        return catalogue_module.Catalogue.parse_obj(data), []
    except ValidationError as error:
        return None, _pydantic("catalogue", error)


def _flat_texts(tree: Any) -> Dict[str, Dict[str, str]]:
    if not isinstance(tree, Mapping):
        raise texts_module.TextsError("the texts must be a mapping of keys")
    return dict(texts_module._flatten(tree))


def _check_texts(tree: Any, reference: Any) -> List[Problem]:
    """The CLI's checks, plus: a text may only use the placeholders of the file's version (or the
    contact details), because the code released with that file fills exactly those; and no key of
    the file may disappear, because the code asks for it."""
    try:
        entries = _flat_texts(tree)
    except texts_module.TextsError as error:
        return [Problem("texts", (), str(error))]
    try:
        known = _flat_texts(reference) if reference is not None else {}
    except texts_module.TextsError:
        known = {}
    contact = {"gentinfo_phone", "gentinfo_email", "gentinfo_hours", "gentinfo_url"}
    problems = []
    for key in sorted(set(known) - set(entries)):
        problems.append(Problem("texts", (key,), "deze tekst gebruikt de assistent: hij mag niet weg"))
    for key, variants in entries.items():
        allowed = contact | {name for text in known.get(key, {}).values() for name in _names(text)}
        for channel, text in variants.items():
            try:
                used = texts_module.placeholders(text)
            except texts_module.TextsError as error:
                problems.append(Problem("texts", (key, channel), str(error)))
                continue
            if not text.strip():
                problems.append(Problem("texts", (key, channel), "de tekst is leeg"))
            unknown = sorted(set(used) - allowed) if key in known else []
            if unknown:
                names = ", ".join("{" + name + "}" for name in unknown)
                problems.append(Problem("texts", (key, channel), f"onbekende invulplaats {names}"))
    return problems


def _names(text: str) -> List[str]:
    try:
        return texts_module.placeholders(text)
    except texts_module.TextsError:
        return []


def _check_knowledge(docs: Mapping[str, Any], catalogue: Optional[catalogue_module.Catalogue]) -> List[Problem]:
    module = knowledge_module()
    names = [n for n in docs if n.startswith(KNOWLEDGE_PREFIX)]
    if module is None or not names:
        return []
    problems: List[Problem] = []
    domains = {}
    for name in names:
        domain = name[len(KNOWLEDGE_PREFIX):]
        try:
            parsed = module.DomainFile.parse_obj(docs[name])
        except ValidationError as error:
            problems += _pydantic(name, error)
            continue
        if parsed.domain != domain:
            problems.append(Problem(name, ("domain",), f"domain moet {domain!r} zijn (de naam van het bestand)"))
        domains[domain] = parsed
    if problems or catalogue is None:
        return problems
    try:
        module._check(module.Knowledge(domains, catalogue))
    except module.KnowledgeError as error:
        problems.append(Problem(_blame(str(error), names), (), str(error)))
    return problems


def _blame(message: str, names: List[str]) -> str:
    """The document a cross-file message names ("afval.yml: topic id …"), else the first one."""
    for name in names:
        if message.startswith(f"{name[len(KNOWLEDGE_PREFIX):]}.yml"):
            return name
    return names[0]


def validate(docs: Mapping[str, Any]) -> List[Problem]:
    """Every problem of a complete document set."""
    catalogue, problems = _check_catalogue(docs.get("catalogue"))
    if "texts" in docs:
        problems += _check_texts(docs["texts"], file_document("texts"))
    problems += _check_knowledge(docs, catalogue)
    return problems


# --- runtime objects ---------------------------------------------------------------------------


def build_catalogue(docs: Mapping[str, Any]) -> catalogue_module.Catalogue:
    return catalogue_module.Catalogue.parse_obj(docs["catalogue"])


def build_texts(docs: Mapping[str, Any], catalogue: catalogue_module.Catalogue) -> texts_module.Texts:
    contact = catalogue.contact
    defaults = {"gentinfo_phone": contact.phone, "gentinfo_email": contact.email,
                "gentinfo_hours": contact.hours, "gentinfo_url": str(contact.url)}
    return texts_module.Texts(_flat_texts(docs["texts"]), defaults)


def build_knowledge(docs: Mapping[str, Any], catalogue: catalogue_module.Catalogue) -> Any:
    """A ``bot.core.knowledge.Knowledge`` of the set (raises when the module is missing)."""
    module = knowledge_module()
    if module is None:
        raise RuntimeError("bot.core.knowledge is not available")
    domains = {name[len(KNOWLEDGE_PREFIX):]: module.DomainFile.parse_obj(data)
               for name, data in docs.items() if name.startswith(KNOWLEDGE_PREFIX)}
    knowledge = module.Knowledge(domains, catalogue)
    module._check(knowledge)
    return knowledge


# --- topics across documents -------------------------------------------------------------------


@dataclass(frozen=True)
class TopicRef:
    """Where a topic lives: a catalogue product (``catalogue``, ``products``) or a knowledge topic."""

    document: str
    list_key: str
    index: int


def topic_refs(docs: Mapping[str, Any]) -> Dict[str, TopicRef]:
    """Every topic id of a document set: the catalogue's products and the knowledge files' topics."""
    refs: Dict[str, TopicRef] = {}
    for name in sorted(docs):
        data = docs[name]
        list_key = "products" if name == "catalogue" else "topics" if name.startswith(KNOWLEDGE_PREFIX) else ""
        items = data.get(list_key) if list_key and isinstance(data, Mapping) else None
        for index, item in enumerate(items or []):
            if isinstance(item, Mapping) and isinstance(item.get("id"), str):
                refs.setdefault(item["id"], TopicRef(name, list_key, index))
    return refs
