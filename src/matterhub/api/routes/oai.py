"""OAI-PMH 2.0 at `/oai` (GET with a query string, POST with a form body): the public datasets.

Every caller is answered as the anonymous one — a token is not looked at — so what a harvester
copies elsewhere is exactly what anybody may read here.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from matterhub.api.deps import ServicesDep

router = APIRouter(tags=["interop"])

_XML = "text/xml; charset=utf-8"
_FORM = "application/x-www-form-urlencoded"
_DOC = {
    "responses": {200: {"content": {"text/xml": {}}, "description": "An OAI-PMH response"}},
}


@router.get("/oai", summary="OAI-PMH 2.0 (query string)", response_class=Response, **_DOC)  # type: ignore[arg-type]
async def oai_get(request: Request, services: ServicesDep) -> Response:
    """Identify, ListMetadataFormats, ListSets, ListIdentifiers, ListRecords, GetRecord."""
    pairs = request.query_params.multi_items()
    body = await run_in_threadpool(services.oai.handle, pairs)
    return Response(body, media_type=_XML)


@router.post("/oai", summary="OAI-PMH 2.0 (form body)", response_class=Response, **_DOC)  # type: ignore[arg-type]
async def oai_post(request: Request, services: ServicesDep) -> Response:
    """The same verbs with the arguments as `application/x-www-form-urlencoded`."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != _FORM:
        body = services.oai.refuse("badArgument", f"a POST request's body must be {_FORM}")
        return Response(body, media_type=_XML)
    raw = await request.body()
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
    except (UnicodeDecodeError, ValueError):
        body = services.oai.refuse("badArgument", "the form body cannot be read")
        return Response(body, media_type=_XML)
    body = await run_in_threadpool(services.oai.handle, pairs)
    return Response(body, media_type=_XML)
