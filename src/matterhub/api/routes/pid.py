"""Identifier resolution: `/pid/<id>` → the version's landing page (or JSON on request)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from matterhub.api.deps import CurrentIdentity, ServicesDep
from matterhub.api.errors import ERROR_RESPONSES
from matterhub.web.datasets import dataset_page
from matterhub.web.sessions import get_session

router = APIRouter(tags=["datasets"], responses=ERROR_RESPONSES)


@router.get("/pid/{pid:path}", summary="Resolve an identifier to its landing page")
def resolve(
    pid: str, request: Request, identity: CurrentIdentity, services: ServicesDep
) -> Response:
    """HTML for people; `Accept: application/json` gives the version document."""
    if "application/json" in request.headers.get("accept", ""):
        version = services.datasets.resolve_pid(identity, pid)
        return JSONResponse(version.model_dump(mode="json"))
    # People get the web UI's dataset page, as whoever their browser session is signed in as.
    session = get_session(request, services)
    version = services.datasets.resolve_pid(session.identity, pid)
    return dataset_page(request, session, services, version.source_id)
