"""Followed repositories over HTTP (administrators only): add, list, run, remove."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from starlette.concurrency import run_in_threadpool

from matterhub.api.deps import CurrentIdentity, ServicesDep
from matterhub.api.errors import ERROR_RESPONSES
from matterhub.interop.harvest import HarvestRun, HarvestSourceCreate, HarvestSourcePublic

__all__ = ["router"]

router = APIRouter(prefix="/api/harvest", tags=["interop"], responses=ERROR_RESPONSES)


@router.get("", summary="Repositories this hub follows")
def list_sources(identity: CurrentIdentity, services: ServicesDep) -> list[HarvestSourcePublic]:
    """Every OAI-PMH source with the state of its last run."""
    return services.harvest.list(identity)


@router.post("", summary="Follow a repository", status_code=status.HTTP_201_CREATED)
def add_source(
    body: HarvestSourceCreate, identity: CurrentIdentity, services: ServicesDep
) -> HarvestSourcePublic:
    """Store an OAI-PMH source; nothing is fetched until it runs."""
    return services.harvest.add(identity, body)


@router.get("/{name}", summary="One followed repository")
def get_source(name: str, identity: CurrentIdentity, services: ServicesDep) -> HarvestSourcePublic:
    """The source and its last run."""
    return services.harvest.get(identity, name)


@router.post("/{name}/run", summary="Harvest what changed since the last run")
async def run_source(name: str, identity: CurrentIdentity, services: ServicesDep) -> HarvestRun:
    """Runs now (bounded by `harvest_max_records`) and answers with what it did."""
    return await run_in_threadpool(services.harvest.run, identity, name)


@router.delete("/{name}", summary="Stop following a repository", status_code=204)
def remove_source(name: str, identity: CurrentIdentity, services: ServicesDep) -> Response:
    """Removes the source and its entries from the index."""
    services.harvest.remove(identity, name)
    return Response(status_code=204)
