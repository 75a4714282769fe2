"""Servable citations over HTTP: the live version's, or one version's, in five formats."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from matterhub.api.deps import CurrentIdentity, ServicesDep
from matterhub.api.errors import ERROR_RESPONSES
from matterhub.core.citations import FORMATS
from matterhub.core.errors import NotFound
from matterhub.hub.identifiers import ServableIdentifiers

__all__ = ["router"]

router = APIRouter(prefix="/api/servables", tags=["servables"], responses=ERROR_RESPONSES)
Format = Annotated[str, Query(max_length=32, description=f"One of: {', '.join(FORMATS)}.")]


def _identifiers(services: ServicesDep) -> ServableIdentifiers:
    identifiers = services.servables.identifiers
    if identifiers is None:
        raise NotFound("this hub mints no servable identifiers")
    return identifiers


@router.get(
    "/{owner}/{name}/cite",
    summary="Citation of the live version (bibtex, ris, datacite-json, datacite-xml, schema.org)",
)
def cite_live(
    owner: str,
    name: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    format: Format = "bibtex",
) -> Response:
    """Generated from the version's `datacite` block, its identifier and related identifiers."""
    media_type, text = _identifiers(services).cite(identity, f"{owner}/{name}", format)
    return Response(text, media_type=media_type)


@router.get("/{owner}/{name}/versions/{version}/cite", summary="Citation of one ready version")
def cite_version(
    owner: str,
    name: str,
    version: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    format: Format = "bibtex",
) -> Response:
    """As the live version's, for `version` (it must have gone live)."""
    media_type, text = _identifiers(services).cite(
        identity, f"{owner}/{name}", format, version=version
    )
    return Response(text, media_type=media_type)
