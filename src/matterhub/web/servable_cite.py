"""A servable version's landing page (what its identifier resolves to) and its "Cite" block."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from matterhub.api.deps import ServicesDep
from matterhub.bootstrap import Services
from matterhub.core.citations import cite
from matterhub.core.errors import NotFound
from matterhub.core.identity import Identity
from matterhub.web.render import PageRoute
from matterhub.web.sessions import CurrentSession, WebSession

__all__ = ["cite_block", "router", "servable_landing"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)

_SHOWN = (("bibtex", "BibTeX"), ("ris", "RIS"), ("datacite-xml", "DataCite XML"))
_LINKED = (
    ("bibtex", "BibTeX"),
    ("ris", "RIS"),
    ("datacite-json", "DataCite JSON"),
    ("datacite-xml", "DataCite XML"),
    ("schema.org", "schema.org JSON-LD"),
)


def cite_block(
    services: Services, identity: Identity, ref: str, version: str | None
) -> dict[str, Any] | None:
    """The identifier, related identifiers and citations of a ready version (None otherwise)."""
    identifiers = services.servables.identifiers
    if identifiers is None or not version:
        return None
    try:
        found = identifiers.describe(identity, ref, version=version)
    except NotFound:  # not live (building or failed): nothing to cite yet
        return None
    return {
        "pid": found.pid,
        "pid_state": found.pid_state,
        "resolver_url": found.resolver_url,
        "landing": identifiers.landing_url(found.owner, found.name, found.version),
        "related": list(found.cited.dc.get("relatedIdentifiers") or []),
        "texts": [(fmt, label, cite(found.cited, fmt)[1]) for fmt, label in _SHOWN],
        "links": [
            (label, f"/api/servables/{ref}/versions/{found.version}/cite?format={fmt}")
            for fmt, label in _LINKED
        ],
    }


def servable_landing(
    request: Request,
    session: WebSession,
    services: Services,
    owner: str,
    name: str,
    version: str,
) -> Response:
    """The servable page showing `version`, its identifier and its citation."""
    from matterhub.web.servables import servable_page  # it imports this module's block

    return servable_page(request, session, services, owner, name, version=version)


@router.get("/servables/{owner}/{name}/versions/{version}")
def version_page(
    owner: str,
    name: str,
    version: str,
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
) -> Response:
    """One version's landing page (what its identifier resolves to)."""
    return servable_landing(request, session, services, owner, name, version)
