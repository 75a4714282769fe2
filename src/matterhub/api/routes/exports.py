"""Exports of a published version: RO-Crate 1.1, Croissant and schema.org JSON-LD."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from matterhub.api.deps import CurrentIdentity, ServicesDep
from matterhub.api.errors import ERROR_RESPONSES
from matterhub.core.identity import Identity
from matterhub.interop.exports import RO_CRATE_NAME, Exports, dumps_jsonld
from matterhub.publish.bundles import ArchiveMember

__all__ = ["exports_of", "router", "with_ro_crate"]

router = APIRouter(prefix="/api/datasets", tags=["datasets"], responses=ERROR_RESPONSES)
_JSON_LD = "application/ld+json"


def exports_of(services: Any) -> Exports:
    """The export builder over a hub's datasets and blobs (it holds no state of its own)."""
    return Exports(services.datasets, services.blobs, base_url=services.settings.base_url)


def _answer(doc: dict[str, Any]) -> Response:
    return Response(dumps_jsonld(doc), media_type=_JSON_LD)


@router.get(
    f"/{{sid}}/{RO_CRATE_NAME}",
    summary="RO-Crate 1.1 metadata of a published version",
    response_class=Response,
    responses={200: {"content": {_JSON_LD: {}}}},
)
async def ro_crate(sid: str, identity: CurrentIdentity, services: ServicesDep) -> Response:
    """The same document the version's zip and tar carry at `<source_id>/ro-crate-metadata.json`."""
    return _answer(await run_in_threadpool(exports_of(services).ro_crate, identity, sid))


@router.get(
    "/{sid}/croissant.json",
    summary="Croissant JSON-LD of a published version's tabular and array data",
    response_class=Response,
    responses={200: {"content": {_JSON_LD: {}}}},
)
async def croissant(sid: str, identity: CurrentIdentity, services: ServicesDep) -> Response:
    """CSV and HDF5 files as FileObjects (with sha256) and RecordSets of their columns/datasets."""
    return _answer(await run_in_threadpool(exports_of(services).croissant, identity, sid))


@router.get(
    "/{sid}/schema.org.json",
    summary="schema.org Dataset JSON-LD of a published version",
    response_class=Response,
    responses={200: {"content": {_JSON_LD: {}}}},
)
async def schema_org(sid: str, identity: CurrentIdentity, services: ServicesDep) -> Response:
    """What the dataset's landing page embeds in `<script type="application/ld+json">`."""
    return _answer(await run_in_threadpool(exports_of(services).schema_org, identity, sid))


def with_ro_crate(
    services: Any, identity: Identity, source_id: str, members: list[ArchiveMember]
) -> list[ArchiveMember]:
    """An archive's members plus the version's RO-Crate metadata, when it is published (and
    holds no file of that name itself, which then stays as it is)."""
    name = f"{source_id}/{RO_CRATE_NAME}"
    version = services.datasets.get(identity, source_id)
    if version.state != "published" or any(m.name == name for m in members):
        return members
    data = exports_of(services).ro_crate_bytes(identity, source_id)
    return [ArchiveMember(name, "", len(data), data), *members]
