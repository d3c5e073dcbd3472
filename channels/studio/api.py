"""The studio's JSON API (used by the page and the tests). Database work runs in a thread so the
event loop stays free. Errors: ``{"error": code, "message": Dutch text}``; a saved draft with
validation problems answers 200 with ``valid: false`` and the problems by field."""
from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any, Callable, Dict, List, Mapping, Tuple, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.core import content_checks, insights, unanswered
from bot.core.content_store import ContentError, ContentStore
from channels.studio import forms, preview
from channels.studio.roles import require, role_of

STORE = web.AppKey("content_store", ContentStore)
CITY_TZ = ZoneInfo("Europe/Brussels")
MAX_QUESTION_CHARS = 500
MAX_RANGE_DAYS = 800

T = TypeVar("T")


async def _run(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(function, *args)


async def _body(request: web.Request) -> Dict[str, Any]:
    if request.content_type != "application/json":
        raise forms.FormError("Stuur JSON.")
    try:
        body = await request.json()
    except ValueError:
        raise forms.FormError("Geen geldige JSON.") from None
    if not isinstance(body, dict):
        raise forms.FormError("Een JSON-object verwacht.")
    return body


def _store(request: web.Request) -> ContentStore:
    return request.app[STORE]


def _user(request: web.Request) -> str:
    return str(request["session"].user)


def _not_found(message: str) -> web.Response:
    return web.json_response({"error": "not_found", "message": message}, status=404)


def _saved(store: ContentStore, document: str, data: Any, user: str, prefix: Tuple[Any, ...],
           keys: Mapping[str, str]) -> Dict[str, Any]:
    problems = store.save_draft(document, data, user)
    fields, general = forms.field_problems(problems, document, prefix, keys)
    return {"saved": True, "valid": not problems, "fields": fields, "general": general,
            "problem_count": len(problems)}


# --- who am I, overview ------------------------------------------------------------------------------


async def me(request: web.Request) -> web.Response:
    store = _store(request)
    version = await _run(store.version)
    drafts = await _run(store.drafts)
    return web.json_response({"user": _user(request), "role": role_of(request), "version": version,
                              "drafts": [{"name": d.name, "author": d.author, "updated_at": d.updated_at.isoformat()}
                                         for d in drafts]})


# --- topics ---------------------------------------------------------------------------------------------


async def topics(request: web.Request) -> web.Response:
    docs = await _run(_store(request).working_set)
    domains = sorted({*unanswered.DOMAINS})
    return web.json_response({"topics": forms.topic_list(docs), "domains": domains})


async def topic(request: web.Request) -> web.Response:
    docs = await _run(_store(request).working_set)
    form = forms.topic_form(docs, request.match_info["id"])
    return web.json_response(form) if form else _not_found("Dit onderwerp bestaat niet.")


async def save_topic(request: web.Request) -> web.Response:
    require(request, "editor")
    body = await _body(request)
    store = _store(request)

    def work() -> Dict[str, Any]:
        docs = store.working_set()
        document, data, ref = forms.apply_topic(docs, request.match_info["id"], body.get("fields") or {})
        kind = "product" if document == "catalogue" else "topic"
        return _saved(store, document, data, _user(request), (ref.list_key, ref.index), forms.topic_keys(kind))

    return web.json_response(await _run(work))


async def create_topic(request: web.Request) -> web.Response:
    require(request, "editor")
    body = await _body(request)
    domain = str(body.get("domain") or "")
    if domain not in unanswered.DOMAINS:
        raise forms.FormError("Kies een domein.")
    store = _store(request)

    def work() -> Dict[str, Any]:
        name, data = forms.new_topic(store.working_set(), domain, str(body.get("id") or ""), str(body.get("title") or ""))
        store.save_draft(name, data, _user(request))
        return {"saved": True, "id": body.get("id"), "document": name}

    return web.json_response(await _run(work))


# --- locations, closing days, texts ------------------------------------------------------------------


async def locations(request: web.Request) -> web.Response:
    catalogue = await _run(_store(request).working, "catalogue")
    return web.json_response({"locations": [{"id": loc.get("id"), "name": loc.get("name")}
                                            for loc in catalogue.get("locations", [])],
                              "closing_days": catalogue.get("closing_days", [])})


async def location(request: web.Request) -> web.Response:
    catalogue = await _run(_store(request).working, "catalogue")
    form = forms.location_form(catalogue, request.match_info["id"])
    return web.json_response(form) if form else _not_found("Deze locatie bestaat niet.")


async def save_location(request: web.Request) -> web.Response:
    require(request, "editor")
    body = await _body(request)
    store = _store(request)

    def work() -> Dict[str, Any]:
        data, index = forms.apply_location(store.working("catalogue"), request.match_info["id"], body.get("fields") or {})
        return _saved(store, "catalogue", data, _user(request), ("locations", index), forms.location_keys())

    return web.json_response(await _run(work))


async def save_closing_days(request: web.Request) -> web.Response:
    require(request, "editor")
    body = await _body(request)
    store = _store(request)

    def work() -> Dict[str, Any]:
        data = forms.apply_closing_days(store.working("catalogue"), body.get("days"))
        problems = store.save_draft("catalogue", data, _user(request))
        rows: Dict[str, List[str]] = {}
        general = []
        for problem in problems:
            if problem.document == "catalogue" and problem.path[:1] == ("closing_days",) and len(problem.path) > 1:
                rows.setdefault(str(problem.path[1]), []).append(problem.message)
            else:
                general.append(problem.as_dict()["path"] + ": " + problem.message)
        return {"saved": True, "valid": not problems, "rows": rows, "general": general}

    return web.json_response(await _run(work))


async def texts(request: web.Request) -> web.Response:
    tree = await _run(_store(request).working, "texts")
    return web.json_response({"texts": forms.text_entries(tree), "channels": forms.TEXT_LABELS})


async def save_text(request: web.Request) -> web.Response:
    require(request, "editor")
    body = await _body(request)
    key = request.match_info["key"]
    store = _store(request)

    def work() -> Dict[str, Any]:
        data = forms.apply_text(store.working("texts"), key, body.get("variants"))
        problems = store.save_draft("texts", data, _user(request))
        mine = [p for p in problems if p.document == "texts" and p.path[:1] == (key,)]
        fields: Dict[str, List[str]] = {}
        for problem in mine:
            fields.setdefault(str(problem.path[1]) if len(problem.path) > 1 else "default", []).append(problem.message)
        general = [f"{p.document} {p.as_dict()['path']}: {p.message}" for p in problems if p not in mine]
        return {"saved": True, "valid": not problems, "fields": fields, "general": general}

    return web.json_response(await _run(work))


# --- preview, drafts, publishing, versions ----------------------------------------------------------


async def ask_preview(request: web.Request) -> web.Response:
    body = await _body(request)
    question = str(body.get("question") or "").strip()
    if not question or len(question) > MAX_QUESTION_CHARS:
        raise forms.FormError(f"Typ een vraag (max. {MAX_QUESTION_CHARS} tekens).")
    channel = str(body.get("channel") or "webchat")
    store = _store(request)

    def work() -> Dict[str, Any]:
        docs = store.working_set()
        try:
            return preview.preview(docs, question, channel)
        except (ValueError, KeyError) as problem:  # the draft does not validate yet
            raise ContentError("Het concept heeft nog fouten; verbeter die eerst.",
                               content_checks.validate(docs)) from problem

    return web.json_response(await _run(work))


async def drafts(request: web.Request) -> web.Response:
    store = _store(request)

    def work() -> Dict[str, Any]:
        return {"drafts": [{"name": d.name, "author": d.author, "updated_at": d.updated_at.isoformat()}
                           for d in store.drafts()],
                "diff": store.draft_diff(), "problems": [p.as_dict() for p in store.problems()]}

    return web.json_response(await _run(work))


async def discard(request: web.Request) -> web.Response:
    require(request, "editor")
    body = await _body(request)
    name = body.get("name")
    await _run(_store(request).discard_draft, str(name) if name else None)
    return web.json_response({"discarded": name or "all"})


async def publish(request: web.Request) -> web.Response:
    require(request, "editor")
    body = await _body(request)
    release = await _run(_store(request).publish, _user(request), str(body.get("note") or "")[:500])
    return web.json_response({"release": release.as_dict()})


async def versions(request: web.Request) -> web.Response:
    releases = await _run(_store(request).releases)
    return web.json_response({"versions": [r.as_dict() for r in releases]})


def _version_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 9:
        raise forms.FormError("Onbekende versie.")
    return int(raw)


async def version_diff(request: web.Request) -> web.Response:
    return web.json_response({"diff": await _run(_store(request).diff, _version_id(request))})


async def rollback(request: web.Request) -> web.Response:
    require(request, "admin")
    release = await _run(_store(request).rollback, _version_id(request), _user(request))
    return web.json_response({"release": release.as_dict()})


# --- unanswered questions ---------------------------------------------------------------------------


async def clusters(request: web.Request) -> web.Response:
    engine = _store(request).engine
    found = await _run(lambda: unanswered.clusters(engine))
    return web.json_response({"clusters": [c.as_dict() for c in found[:100]], "total": sum(c.size for c in found)})


def _ids(body: Mapping[str, Any]) -> List[int]:
    ids = body.get("question_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
        raise forms.FormError("Kies vragen.")
    return ids[:unanswered.MAX_CLUSTERED]


async def cluster_synonyms(request: web.Request) -> web.Response:
    require(request, "editor")
    body = await _body(request)
    store = _store(request)
    ids, topic_id = _ids(body), str(body.get("topic") or "")
    document, added, problems = await _run(unanswered.add_as_synonyms, store.engine, store, ids, topic_id, _user(request))
    return web.json_response({"document": document, "topic": topic_id, "added": added,
                              "problems": [p.as_dict() for p in problems]})


async def cluster_topic(request: web.Request) -> web.Response:
    require(request, "editor")
    body = await _body(request)
    store = _store(request)
    document, topic_id, problems = await _run(unanswered.new_topic, store.engine, store, _ids(body),
                                              str(body.get("domain") or ""), _user(request))
    return web.json_response({"document": document, "topic": topic_id, "problems": [p.as_dict() for p in problems]})


async def cluster_dismiss(request: web.Request) -> web.Response:
    require(request, "admin")
    body = await _body(request)
    count = await _run(unanswered.set_status, _store(request).engine, _ids(body), "dismissed", _user(request))
    return web.json_response({"dismissed": count})


# --- insights -------------------------------------------------------------------------------------------


def _period(request: web.Request) -> Tuple[date, date]:
    today = datetime.now(CITY_TZ).date()
    try:
        end = date.fromisoformat(request.query.get("to") or today.isoformat())
        start = date.fromisoformat(request.query.get("from") or (end - timedelta(days=29)).isoformat())
    except ValueError:
        raise forms.FormError("Datums als JJJJ-MM-DD.") from None
    if start > end or (end - start).days > MAX_RANGE_DAYS:
        raise forms.FormError(f"Kies een periode van hoogstens {MAX_RANGE_DAYS} dagen, begin vóór einde.")
    return start, end


async def get_insights(request: web.Request) -> web.Response:
    start, end = _period(request)
    engine = _store(request).engine
    return web.json_response(await _run(lambda: insights.summary(engine, start, end)))


async def insights_csv(request: web.Request) -> web.Response:
    start, end = _period(request)
    engine = _store(request).engine
    text = await _run(insights.export_csv, engine, start, end)
    return web.Response(text=text, content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="gentinfo-inzichten-{start}-{end}.csv"'})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/me", me)
    router.add_get("/api/topics", topics)
    router.add_post("/api/topics", create_topic)
    router.add_get("/api/topics/{id}", topic)
    router.add_put("/api/topics/{id}", save_topic)
    router.add_get("/api/locations", locations)
    router.add_get("/api/locations/{id}", location)
    router.add_put("/api/locations/{id}", save_location)
    router.add_put("/api/closing-days", save_closing_days)
    router.add_get("/api/texts", texts)
    router.add_put("/api/texts/{key}", save_text)
    router.add_post("/api/preview", ask_preview)
    router.add_get("/api/drafts", drafts)
    router.add_post("/api/drafts/discard", discard)
    router.add_post("/api/publish", publish)
    router.add_get("/api/versions", versions)
    router.add_get("/api/versions/{id}", version_diff)
    router.add_post("/api/versions/{id}/rollback", rollback)
    router.add_get("/api/unanswered", clusters)
    router.add_post("/api/unanswered/synonyms", cluster_synonyms)
    router.add_post("/api/unanswered/topic", cluster_topic)
    router.add_post("/api/unanswered/dismiss", cluster_dismiss)
    router.add_get("/api/insights", get_insights)
    router.add_get("/api/insights.csv", insights_csv)
