"""Servables over HTTP: publish a bundle, follow its build, describe and search (DLHub's role)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from matterhub.api.deps import CurrentIdentity, ServicesDep
from matterhub.api.errors import ERROR_RESPONSES
from matterhub.api.routes.servable_sources import SOURCE_BODY, is_json, publish_from_source
from matterhub.core.errors import InvalidInput
from matterhub.core.identity import Identity
from matterhub.core.servables import BuildPublic, ServablePublic, ServableVersionPublic
from matterhub.hub import SearchQuery, ServableService

__all__ = ["router"]

router = APIRouter(prefix="/api/servables", tags=["servables"], responses=ERROR_RESPONSES)


class ServableSearchResult(BaseModel):
    """Documents of the servables matching a search, newest first unless a query ranks them."""

    total: int
    servables: list[dict[str, Any]] = Field(description="Servable documents as indexed.")


def _stage(
    service: ServableService, identity: Identity, parts: list[tuple[str, Any]]
) -> BuildPublic:
    """Stage the multipart parts into a bundle and publish it (runs in a worker thread)."""
    with service.new_bundle() as bundle:
        for key, value in parts:
            if key == "document":
                raw = value.file.read() if isinstance(value, UploadFile) else value
                bundle.set_document(raw)
            elif key == "bundle" and isinstance(value, UploadFile):
                bundle.add_zip(value.file)
            elif key == "files" and isinstance(value, UploadFile):
                bundle.add_file(value.filename or "", value.file)
            else:
                raise InvalidInput(
                    f"unexpected form part {key!r}: send 'document' and 'files', or a 'bundle' zip",
                    field=key,
                )
        return service.publish(identity, bundle)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BuildPublic,
    responses={200: {"model": BuildPublic, "description": "Published before from this source."}},
    summary="Publish a servable (a new version when the name is yours already)",
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "document": {"type": "string", "description": "The JSON document."},
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": "Files; each part's filename is its bundle path.",
                            },
                            "bundle": {
                                "type": "string",
                                "format": "binary",
                                "description": "Or one zip with dlhub.json at its root.",
                            },
                        },
                    }
                },
                "application/json": SOURCE_BODY,
            }
        }
    },
)
async def publish(
    request: Request, identity: CurrentIdentity, services: ServicesDep
) -> BuildPublic | JSONResponse:
    """Upload a bundle (document + files, or a zip), or name a `source` the hub fetches the
    files from (JSON); answers 202 with the queued build (200 when the same source, commit and
    document were published before: that version's build)."""
    if is_json(request):
        return await publish_from_source(request, identity, services.servables)
    form = await request.form(max_files=10_000)
    try:
        parts = list(form.multi_items())
        return await run_in_threadpool(_stage, services.servables, identity, parts)
    finally:
        await form.close()


@router.get("", summary="Search servables")
def search(
    identity: CurrentIdentity,
    services: ServicesDep,
    q: Annotated[str | None, Query(description="Query string (Globus 'advanced' syntax).")] = None,
    advanced: bool = True,
    name: str | None = None,
    owner: str | None = None,
    author: Annotated[
        list[str],
        Query(description="Creator name in any form (Lovelace; Ada Lovelace); repeatable."),
    ] = [],  # noqa: B006
    match_all_authors: bool = False,
    domain: Annotated[list[str], Query()] = [],  # noqa: B006
    doi: Annotated[str | None, Query(description="A related identifier (DOI).")] = None,
    identifier: Annotated[
        str | None, Query(max_length=255, description="A version's own identifier (DOI or PID).")
    ] = None,
    input_type: Annotated[str | None, Query(description="e.g. ndarray, structure")] = None,
    output_type: str | None = None,
    version: str | None = None,
    only_latest: bool = True,
    limit: Annotated[int, Query(ge=0, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ServableSearchResult:
    """The query language plus DLHub's conveniences; only the latest version unless told."""
    query = SearchQuery(
        q,
        advanced=advanced,
        name=name,
        owner=owner,
        authors=author,
        match_all_authors=match_all_authors,
        domains=domain,
        doi=doi,
        identifier=identifier,
        input_type=input_type,
        output_type=output_type,
        version=version,
        only_latest=only_latest,
        limit=limit,
        offset=offset,
    )
    total, documents = services.servables.search(identity, query)
    return ServableSearchResult(total=total, servables=documents)


@router.get("/{owner}/{name}", summary="Describe a servable")
def describe(
    owner: str,
    name: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    version: str | None = None,
) -> ServablePublic:
    """Its document (latest ready version, or `version`), rights, versions and how to call it."""
    return services.servables.describe(identity, f"{owner}/{name}", version=version)


@router.get("/{owner}/{name}/versions", summary="Versions of a servable")
def versions(
    owner: str, name: str, identity: CurrentIdentity, services: ServicesDep
) -> list[ServableVersionPublic]:
    """Every version, newest first, with its state and build."""
    return services.servables.describe(identity, f"{owner}/{name}").versions


@router.get("/{owner}/{name}/builds", summary="Builds of a servable")
def builds(
    owner: str, name: str, identity: CurrentIdentity, services: ServicesDep
) -> list[BuildPublic]:
    """Every build, newest first."""
    return services.servables.list_builds(identity, f"{owner}/{name}")


@router.get("/{owner}/{name}/builds/{build_id}", summary="One build: status, step and log")
def build(
    owner: str, name: str, build_id: str, identity: CurrentIdentity, services: ServicesDep
) -> BuildPublic:
    """Where the build stands; a failed one names the step that failed."""
    return services.servables.get_build(identity, f"{owner}/{name}", build_id)


@router.get(
    "/{owner}/{name}/builds/{build_id}/{artefact}",
    summary="A build artefact (Dockerfile, apptainer.def, requirements.txt)",
    response_class=PlainTextResponse,
)
def artefact(
    owner: str,
    name: str,
    build_id: str,
    artefact: str,
    identity: CurrentIdentity,
    services: ServicesDep,
) -> str:
    """The text of one container recipe written by a successful build."""
    return services.servables.artefact(identity, f"{owner}/{name}", build_id, artefact)
