"""Published content in the database: draft → validate → publish → every version kept → rollback.

The content studio edits three kinds of documents (JSON): ``catalogue``, ``texts`` and
``knowledge/<domain>``. Until something is published, every process reads the YAML files of the
repository as before. A publish writes a *release* (who, when, a note) with the documents it changed;
a document's content at release R is its newest row at or before R, and documents never published
come from the files. The release id is the content version: each process polls it (one indexed
``max(id)``, at most every ``GENTINFO_CONTENT_POLL_SECONDS``) and rebuilds the catalogue, texts and
knowledge when it grew, so a publish reaches every process within seconds, without restart or
retraining. A rollback is a new release that restores an old one, so history only grows.

Tables (bot/core/db.py): ``content_releases``, ``content_documents``, ``content_drafts``.

Runtime hook: the loaders ask :func:`live` (``get_catalogue()``, ``get_texts()``,
``get_knowledge()``); it returns the file version when the store is off or empty.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar

import yaml
from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.core import content_checks
from bot.core.content_checks import Problem
from bot.core.db import content_documents, content_drafts, content_releases, create_schema, make_engine

logger = logging.getLogger(__name__)

ENABLED_ENV = "GENTINFO_CONTENT_STORE"  # 1: processes read published content from the database
POLL_ENV = "GENTINFO_CONTENT_POLL_SECONDS"
DEFAULT_POLL_SECONDS = 2.0
MAX_NOTE_CHARS = 500

T = TypeVar("T")


class ContentError(ValueError):
    """Publishing or editing was refused; ``problems`` says why, per field."""

    def __init__(self, message: str, problems: Optional[List[Problem]] = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class Release:
    id: int
    published_at: datetime
    author: str
    note: str
    rollback_of: Optional[int]
    documents: Tuple[str, ...]

    def as_dict(self) -> Dict[str, Any]:
        return {"id": self.id, "published_at": self.published_at.isoformat(), "author": self.author,
                "note": self.note, "rollback_of": self.rollback_of, "documents": list(self.documents)}


@dataclass(frozen=True)
class Draft:
    name: str
    data: Any
    base_release: int
    author: str
    updated_at: datetime


def _dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)  # SQLite drops the zone


def as_yaml(data: Any) -> str:
    """What a diff shows: the YAML an editor knows from the files."""
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100) if data is not None else ""


def unified(name: str, before: Any, after: Any) -> str:
    lines = difflib.unified_diff(as_yaml(before).splitlines(keepends=True), as_yaml(after).splitlines(keepends=True),
                                 fromfile=f"{name} (voor)", tofile=f"{name} (na)", n=2)
    return "".join(lines)


class ContentStore:
    """Drafts, releases and rollbacks of the content documents in one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- reading -----------------------------------------------------------------------------------
    def version(self) -> int:
        """The newest release id (0: nothing published, the files count)."""
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.max(content_releases.c.id))).scalar() or 0)

    def names(self) -> List[str]:
        with self.engine.connect() as connection:
            stored = set(connection.execute(select(content_documents.c.name).distinct()).scalars())
            drafts = set(connection.execute(select(content_drafts.c.name)).scalars())
        return sorted(set(content_checks.file_names()) | stored | drafts,
                      key=lambda n: (n != "catalogue", n != "texts", n))

    def published(self, name: str, release: Optional[int] = None) -> Any:
        """A document at ``release`` (default: the newest), from the database or else its file."""
        query = select(content_documents.c.body).where(content_documents.c.name == name)
        if release is not None:
            query = query.where(content_documents.c.release_id <= release)
        query = query.order_by(content_documents.c.release_id.desc()).limit(1)
        with self.engine.connect() as connection:
            body = connection.execute(query).scalar()
        return json.loads(body) if body is not None else content_checks.file_document(name)

    def published_set(self, release: Optional[int] = None) -> Dict[str, Any]:
        """Every document at ``release``: one query for the stored ones, files for the rest."""
        newest = (select(content_documents.c.name, func.max(content_documents.c.release_id).label("rid"))
                  .group_by(content_documents.c.name))
        if release is not None:
            newest = newest.where(content_documents.c.release_id <= release)
        sub = newest.subquery()
        query = select(content_documents.c.name, content_documents.c.body).join(
            sub, (content_documents.c.name == sub.c.name) & (content_documents.c.release_id == sub.c.rid))
        with self.engine.connect() as connection:
            stored = {name: json.loads(body) for name, body in connection.execute(query)}
        docs: Dict[str, Any] = {}
        for name in content_checks.file_names():
            docs[name] = stored[name] if name in stored else content_checks.file_document(name)
        docs.update(stored)
        return docs

    def draft(self, name: str) -> Optional[Draft]:
        with self.engine.connect() as connection:
            row = connection.execute(select(content_drafts).where(content_drafts.c.name == name)).first()
        if row is None:
            return None
        return Draft(row.name, json.loads(row.body), row.base_release, row.author, _utc(row.updated_at))

    def drafts(self) -> List[Draft]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(content_drafts).order_by(content_drafts.c.name)).all()
        return [Draft(r.name, json.loads(r.body), r.base_release, r.author, _utc(r.updated_at)) for r in rows]

    def working(self, name: str) -> Any:
        """What an editor edits: the draft, else the published document."""
        draft = self.draft(name)
        return draft.data if draft else self.published(name)

    def working_set(self) -> Dict[str, Any]:
        docs = self.published_set()
        docs.update({draft.name: draft.data for draft in self.drafts()})
        return docs

    # -- drafts ------------------------------------------------------------------------------------
    def save_draft(self, name: str, data: Any, author: str) -> List[Problem]:
        """Store the draft (also when invalid: nothing typed is lost) and return the problems of the
        whole working set, so a change that breaks another document shows up too."""
        if name not in self.names() and not name.startswith(content_checks.KNOWLEDGE_PREFIX):
            raise ContentError(f"onbekend document {name!r}")
        body = _dump(data)
        now = datetime.now(timezone.utc)
        with self.engine.begin() as connection:
            base = int(connection.execute(select(func.max(content_releases.c.id))).scalar() or 0)
            connection.execute(delete(content_drafts).where(content_drafts.c.name == name))
            connection.execute(insert(content_drafts).values(name=name, body=body, base_release=base,
                                                             author=author, updated_at=now))
        return self.problems()

    def discard_draft(self, name: Optional[str] = None) -> None:
        with self.engine.begin() as connection:
            query = delete(content_drafts)
            connection.execute(query.where(content_drafts.c.name == name) if name else query)

    def problems(self) -> List[Problem]:
        return content_checks.validate(self.working_set())

    def draft_diff(self) -> Dict[str, str]:
        return {d.name: unified(d.name, self.published(d.name), d.data) for d in self.drafts()}

    # -- publishing --------------------------------------------------------------------------------
    def publish(self, author: str, note: str = "") -> Release:
        """Validate all drafts together with the published rest, then write one release."""
        drafts = self.drafts()
        if not drafts:
            raise ContentError("Er zijn geen wijzigingen om te publiceren.")
        problems = self.problems()
        if problems:
            raise ContentError("De wijzigingen zijn niet geldig: verbeter eerst de fouten.", problems)
        changed = {d.name: d.data for d in drafts if _dump(d.data) != _dump(self.published(d.name))}
        release = self._write(author, note, changed, rollback_of=None, drafts=[d.name for d in drafts])
        logger.info("content: %s published release %s (%s)", author, release.id, ", ".join(release.documents))
        return release

    def rollback(self, release_id: int, author: str) -> Release:
        """A new release whose documents equal those of ``release_id`` (0: the files)."""
        current = self.version()
        if release_id < 0 or release_id > current or (release_id and not self._exists(release_id)):
            raise ContentError("Deze versie bestaat niet.")
        target = self.published_set(release_id) if release_id else {
            n: content_checks.file_document(n) for n in self.names()}
        now = self.published_set()
        changed = {n: d for n, d in target.items() if d is not None and _dump(d) != _dump(now.get(n))}
        if not changed:
            raise ContentError("Deze versie is al de gepubliceerde inhoud.")
        problems = content_checks.validate({**now, **changed})
        if problems:  # code changed since then (e.g. a text key was added): say so instead of breaking
            raise ContentError("Deze versie past niet meer bij de huidige assistent.", problems)
        release = self._write(author, f"Terug naar versie {release_id}", changed, rollback_of=release_id, drafts=[])
        logger.info("content: %s rolled back to release %s as %s", author, release_id, release.id)
        return release

    def _exists(self, release_id: int) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(select(content_releases.c.id).where(content_releases.c.id == release_id)).first() is not None

    def _write(self, author: str, note: str, changed: Mapping[str, Any], *, rollback_of: Optional[int],
               drafts: List[str]) -> Release:
        now = datetime.now(timezone.utc)
        with self.engine.begin() as connection:
            result = connection.execute(insert(content_releases).values(
                published_at=now, author=author, note=note[:MAX_NOTE_CHARS], rollback_of=rollback_of))
            release_id = int(result.inserted_primary_key[0])
            for name, data in changed.items():
                body = _dump(data)
                connection.execute(insert(content_documents).values(release_id=release_id, name=name, body=body,
                                                                    digest=_digest(body)))
            if drafts:
                connection.execute(delete(content_drafts).where(content_drafts.c.name.in_(drafts)))
        return Release(release_id, now, author, note[:MAX_NOTE_CHARS], rollback_of, tuple(sorted(changed)))

    def releases(self, limit: int = 100) -> List[Release]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(content_releases).order_by(content_releases.c.id.desc()).limit(limit)).all()
            docs: Dict[int, List[str]] = {}
            ids = [r.id for r in rows]
            if ids:
                for rid, name in connection.execute(select(content_documents.c.release_id, content_documents.c.name)
                                                    .where(content_documents.c.release_id.in_(ids))):
                    docs.setdefault(rid, []).append(name)
        return [Release(r.id, _utc(r.published_at), r.author, r.note, r.rollback_of, tuple(sorted(docs.get(r.id, []))))
                for r in rows]

    def diff(self, release_id: int) -> Dict[str, str]:
        """What ``release_id`` changed compared with the release before it, per document."""
        with self.engine.connect() as connection:
            names = list(connection.execute(select(content_documents.c.name)
                                            .where(content_documents.c.release_id == release_id)).scalars())
        return {name: unified(name, self.published(name, release_id - 1), self.published(name, release_id))
                for name in sorted(names)}


# --- the hook the loaders call ---------------------------------------------------------------------


class ContentSource:
    """A process's view of the store: the version, checked at most every ``poll_seconds``, and the
    objects built for it. A database failure keeps the last good content (and is logged once)."""

    def __init__(self, store: ContentStore, poll_seconds: float = DEFAULT_POLL_SECONDS) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._version = 0
        self._built: Dict[str, Tuple[int, Any]] = {}
        self._failing = False

    def version(self) -> int:
        now = time.monotonic()
        if now - self._checked < self.poll_seconds:
            return self._version
        with self._lock:
            if now - self._checked >= self.poll_seconds:
                try:
                    self._version = self.store.version()
                    self._failing = False
                except SQLAlchemyError as error:
                    if not self._failing:
                        logger.error("content: cannot read the content version (%s); keeping version %s",
                                     type(error).__name__, self._version)
                    self._failing = True
                self._checked = now
        return self._version

    def get(self, name: str, fallback: Callable[[], T]) -> T:
        version = self.version()
        if version == 0:
            return fallback()
        cached = self._built.get(name)
        if cached and cached[0] == version:
            return cached[1]
        with self._lock:
            cached = self._built.get(name)
            if cached and cached[0] == version:
                return cached[1]
            try:
                built = self._build(name, version)
            except Exception:  # never stop answering: keep what worked before
                logger.exception("content: building %s of version %s failed; keeping the previous one", name, version)
                if cached:  # do not retry (and log) on every turn until the next version
                    self._built[name] = (version, cached[1])
                    return cached[1]
                return fallback()
            self._built[name] = (version, built)
            return built

    def _build(self, name: str, version: int) -> Any:
        docs = self.store.published_set(version)
        catalogue = content_checks.build_catalogue(docs)
        if name == "catalogue":
            return catalogue
        if name == "texts":
            return content_checks.build_texts(docs, catalogue)
        if name == "knowledge":
            return content_checks.build_knowledge(docs, catalogue)
        raise KeyError(name)


_source: Optional[ContentSource] = None
_configured = False
_source_lock = threading.Lock()


def configure(engine: Optional[Engine], poll_seconds: Optional[float] = None) -> Optional[ContentSource]:
    """Point this process at a database (None: files only). Called by the processes at start, or
    lazily from the environment (``GENTINFO_CONTENT_STORE=1``) on the first :func:`live` call."""
    global _source, _configured
    with _source_lock:
        if engine is None:
            _source = None
        else:
            create_schema(engine)
            seconds = poll_seconds if poll_seconds is not None else float(os.environ.get(POLL_ENV) or DEFAULT_POLL_SECONDS)
            _source = ContentSource(ContentStore(engine), seconds)
        _configured = True
        return _source


def source() -> Optional[ContentSource]:
    if not _configured:
        enabled = os.environ.get(ENABLED_ENV, "").strip().lower() in ("1", "true", "yes", "on")
        configure(make_engine() if enabled else None)
    return _source


def live(name: str, fallback: Callable[[], T]) -> T:
    """The newest published ``catalogue``, ``texts`` or ``knowledge``; ``fallback()`` (the files)
    when the store is off, empty or unreadable."""
    current = source()
    return current.get(name, fallback) if current is not None else fallback()


def version() -> int:
    """The content version this process uses (0: the files); the search index keys on it."""
    current = source()
    return current.version() if current is not None else 0
