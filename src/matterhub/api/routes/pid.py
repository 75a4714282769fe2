"""Identifier resolution: `/pid/<id>` → the version's landing page (or JSON on request).

An identifier names a dataset version or a servable version; both share the resolver.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from matterhub.api.deps import CurrentIdentity, ServicesDep
from matterhub.api.errors import ERROR_RESPONSES
from matterhub.bootstrap import Services
from matterhub.core.errors import NotFound
from matterhub.core.identity import Identity
from matterhub.web.datasets import dataset_page
from matterhub.web.servable_cite import servable_landing
from matterhub.web.sessions import get_session

router = APIRouter(tags=["datasets"], responses=ERROR_RESPONSES)


def _servable(services: Services, identity: Identity, pid: str) -> tuple[str, str] | None:
    """(ref, version) of the servable version `pid` names, or None when it names none."""
    if services.servables.identifiers is None:
        return None
    try:
        found = services.servables.identifiers.resolve(identity, pid)
    except NotFound:
        return None
    return f"{found.owner}/{found.name}", found.version


@router.get("/pid/{pid:path}", summary="Resolve an identifier to its landing page")
def resolve(
    pid: str, request: Request, identity: CurrentIdentity, services: ServicesDep
) -> Response:
    """HTML for people; `Accept: application/json` gives the version document."""
    if "application/json" in request.headers.get("accept", ""):
        if servable := _servable(services, identity, pid):
            described = services.servables.describe(identity, servable[0], version=servable[1])
            return JSONResponse(described.model_dump(mode="json"))
        version = services.datasets.resolve_pid(identity, pid)
        return JSONResponse(version.model_dump(mode="json"))
    # People get the web UI's page, as whoever their browser session is signed in as.
    session = get_session(request, services)
    if servable := _servable(services, session.identity, pid):
        owner, name = servable[0].split("/", 1)
        return servable_landing(request, session, services, owner, name, servable[1])
    version = services.datasets.resolve_pid(session.identity, pid)
    return dataset_page(request, session, services, version.source_id)
