"""The Globus Search v1 API (Discover): mdf-forge and globus-sdk work against it unmodified."""

from __future__ import annotations

import json
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from matterhub.api.deps import CurrentIdentity, ServicesDep
from matterhub.api.errors import ERROR_RESPONSES
from matterhub.core.errors import BadRequest
from matterhub.core.search import GIngest, GScrollRequest, GSearchRequest, GTask
from matterhub.search.backend import Hit, Page
from matterhub.search.service import IndexInfo

router = APIRouter(tags=["search (Globus Search v1)"], responses=ERROR_RESPONSES)

_GMETA_VERSION = "2019-08-27"


def _json(body: bytes | str) -> Response:
    return Response(content=body, media_type="application/json")


def _entry(hit: Hit) -> str:
    # The stored content is spliced in as-is: byte-faithful, and no parse/serialise per hit.
    return (
        '{"content":'
        + hit.source
        + ',"entry_id":'
        + json.dumps(hit.entry_id)
        + ',"matched_principal_sets":[]}'
    )


def _grouped(hits: list[Hit]) -> list[tuple[str, list[Hit]]]:
    groups: dict[str, list[Hit]] = {}
    for hit in hits:
        groups.setdefault(hit.subject, []).append(hit)
    return list(groups.items())


def _gmeta(hits: list[Hit], legacy: bool) -> tuple[str, int]:
    parts = []
    groups = _grouped(hits)
    for subject, entries in groups:
        if legacy:  # result_format_version 2017-09-01: a list of contents per subject
            body = '"content":[' + ",".join(h.source for h in entries) + "]"
        else:
            body = '"entries":[' + ",".join(_entry(h) for h in entries) + "]"
        parts.append(
            '{"@datatype":"GMetaResult","@version":"'
            + _GMETA_VERSION
            + '","subject":'
            + json.dumps(subject)
            + ","
            + body
            + "}"
        )
    return "[" + ",".join(parts) + "]", len(groups)


def render_page(page: Page, *, offset: int, legacy: bool = False, scroll: bool = False) -> str:
    """A GSearchResult (or GScrollResult) document."""
    gmeta, count = _gmeta(page.hits, legacy)
    envelope: dict[str, Any] = {
        "@datatype": "GScrollResult" if scroll else "GSearchResult",
        "@version": "2017-09-01",
        "count": count,
        "offset": offset,
        "total": page.total,
        "has_next_page": page.has_next,
    }
    if scroll:
        envelope["marker"] = page.marker
    if page.facets:
        envelope["facet_results"] = page.facets
    head = json.dumps(envelope)[:-1]
    return head + ',"gmeta":' + gmeta + "}"


def _index_doc(info: IndexInfo) -> dict[str, Any]:
    return {
        "@datatype": "GSearchIndex",
        "@version": "2017-09-01",
        "id": info.id,
        "display_name": info.display_name,
        "description": info.description or "",
        "creation_date": info.created_at,
        "is_trial": False,
        "subscription_id": None,
        "max_size_in_mb": 0,
        "size_in_mb": 0,
        "num_subjects": info.num_entries,
        "num_entries": info.num_entries,
        "status": "open",
        "name": info.name,
    }


@router.get("/v1/index/{index_id}/search", summary="Simple search")
def search_get(
    index_id: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    q: str,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=0)] = 10,
    advanced: bool = False,
) -> Response:
    """Search with a query string."""
    request = GSearchRequest(q=q, offset=offset, limit=limit, advanced=advanced)
    page = services.search.search(identity, index_id, request)
    return _json(render_page(page, offset=offset))


@router.post("/v1/index/{index_id}/search", summary="Search (GSearchRequest)")
def search_post(
    index_id: str, request: GSearchRequest, identity: CurrentIdentity, services: ServicesDep
) -> Response:
    """Query string and/or filters, facets, boosts, sort and paging (offset + limit ≤ 10,000)."""
    page = services.search.search(identity, index_id, request)
    legacy = request.result_format_version == "2017-09-01"
    return _json(render_page(page, offset=request.offset, legacy=legacy))


@router.post("/v1/index/{index_id}/scroll", summary="Scroll through all results")
def scroll(
    index_id: str, request: GScrollRequest, identity: CurrentIdentity, services: ServicesDep
) -> Response:
    """Page through every match with `marker`; no sort, boosts or facets."""
    page = services.search.scroll(identity, index_id, request)
    return _json(render_page(page, offset=0, scroll=True))


_INGEST_BODY = {
    "requestBody": {
        "required": True,
        "description": "A GIngest document: GMetaEntry or GMetaList.",
        "content": {"application/json": {"schema": GIngest.model_json_schema()}},
    }
}


@router.post("/v1/index/{index_id}/ingest", summary="Ingest entries", openapi_extra=_INGEST_BODY)
async def ingest(
    index_id: str, request: Request, identity: CurrentIdentity, services: ServicesDep
) -> dict[str, Any]:
    """Recorded durably before this answers; the task says when entries are searchable."""
    # Parsed with orjson and validated by the service: a generic dict model would walk every
    # value of a large ingest twice for nothing.
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", field="body") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", field="body")
    task = await run_in_threadpool(services.search.ingest, identity, index_id, body)
    return {"acknowledged": True, "success": True, "task_id": task.task_id}


@router.post("/v1/index/{index_id}/delete_by_query", summary="Delete entries matching a query")
def delete_by_query(
    index_id: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    body: Annotated[dict[str, Any], Body(description="{q, advanced, filters}")],
) -> dict[str, Any]:
    """Queued as a task."""
    task = services.search.delete_by_query(identity, index_id, body)
    return {"task_id": task.task_id}


@router.get("/v1/index/{index_id}/subject", summary="Entries of a subject")
def get_subject(
    index_id: str, subject: str, identity: CurrentIdentity, services: ServicesDep
) -> Response:
    """The entries of one subject that the caller may see."""
    hits = services.search.get_subject(identity, index_id, subject)
    gmeta, _count = _gmeta(hits, legacy=False)
    return _json(gmeta[1:-1])


@router.delete("/v1/index/{index_id}/subject", summary="Delete a subject")
def delete_subject(
    index_id: str, subject: str, identity: CurrentIdentity, services: ServicesDep
) -> dict[str, Any]:
    """Queued as a task."""
    task = services.search.delete_subject(identity, index_id, subject)
    return {"task_id": task.task_id}


@router.get("/v1/index/{index_id}/entry", summary="One entry")
def get_entry(
    index_id: str,
    subject: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    entry_id: str | None = None,
) -> Response:
    """An entry of a subject (`entry_id` omitted for the default entry)."""
    hit = services.search.get_entry(identity, index_id, subject, entry_id)
    gmeta, _count = _gmeta([hit], legacy=False)
    return _json(gmeta[1:-1])


@router.delete("/v1/index/{index_id}/entry", summary="Delete one entry")
def delete_entry(
    index_id: str,
    subject: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    entry_id: str | None = None,
) -> dict[str, Any]:
    """Queued as a task."""
    task = services.search.delete_entry(identity, index_id, subject, entry_id)
    return {"task_id": task.task_id, "removed": True}


@router.get("/v1/task/{task_id}", response_model=GTask, summary="A write task")
def get_task(task_id: str, identity: CurrentIdentity, services: ServicesDep) -> GTask:
    """PENDING → PROGRESS → SUCCESS or FAILED."""
    return services.search.get_task(identity, task_id)


@router.get("/v1/task_list/{index_id}", summary="Recent write tasks of an index")
def task_list(index_id: str, identity: CurrentIdentity, services: ServicesDep) -> dict[str, Any]:
    """Newest first."""
    tasks = services.search.list_tasks(identity, index_id)
    return {"tasks": [t.model_dump() for t in tasks]}


@router.get("/v1/index/{index_id}", summary="An index")
def get_index(index_id: str, identity: CurrentIdentity, services: ServicesDep) -> dict[str, Any]:
    """By id or by name."""
    return _index_doc(services.search.get_index(identity, index_id))


@router.get("/v1/index_list", summary="All indexes")
def index_list(identity: CurrentIdentity, services: ServicesDep) -> dict[str, Any]:
    """Every index on this hub."""
    return {"index_list": [_index_doc(i) for i in services.search.list_indexes(identity)]}


@router.post("/v1/index", summary="Create an index (administrators)")
def create_index(
    identity: CurrentIdentity,
    services: ServicesDep,
    body: Annotated[dict[str, Any], Body(description="{name, display_name, description, writers}")],
) -> dict[str, Any]:
    """A new, empty index."""
    name = str(body.get("name") or body.get("display_name") or "")
    info = services.search.create_index(
        identity,
        name,
        display_name=body.get("display_name"),
        description=body.get("description"),
        writers=list(body.get("writers") or []),
    )
    return _index_doc(info)


@router.get("/beta/index/{index_id}/mapping", summary="Field types of an index")
def mapping(index_id: str, identity: CurrentIdentity, services: ServicesDep) -> dict[str, Any]:
    """`{"mappings": {"path": type}}`, as mdf_toolbox's show_fields() reads it."""
    return {"mappings": services.search.mapping(identity, index_id)}
