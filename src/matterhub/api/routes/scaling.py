"""A servable's workers and replica bounds over HTTP (owners and admins; hub/runtime/scaling.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from matterhub.api.deps import CurrentIdentity, ServicesDep
from matterhub.api.errors import ERROR_RESPONSES

__all__ = ["router"]

router = APIRouter(prefix="/api/servables", tags=["servables"], responses=ERROR_RESPONSES)


class ScalingUpdate(BaseModel):
    """New replica bounds; fields left out take the document's, then the hub's, defaults."""

    model_config = ConfigDict(extra="forbid")

    min_replicas: int | None = Field(None, description="Replicas kept warm (0 or more).")
    max_replicas: int | None = Field(None, description="Replicas at most (up to the hub's cap).")
    target_queue: float | None = Field(
        None, description="Waiting calls per replica before the autoscaler adds one."
    )
    target_p50_ms: float | None = Field(None, description="Median latency goal, ms.")
    target_p99_ms: float | None = Field(None, description="99th-percentile latency goal, ms.")


class WorkersPublic(BaseModel):
    """A servable's bounds (stored and in force) and its running pools with their workers."""

    servable: str
    executor: str
    scaling: dict[str, Any] = Field(description="The bounds its owner set (empty: defaults).")
    bounds: dict[str, Any] | None = Field(description="The bounds in force for the live version.")
    max_replicas_cap: int
    pools: list[dict[str, Any]] = Field(
        description="Per running version: replicas, target, in_flight, queue_depth, p50/p99 "
        "and workers (state, calls, p50_ms, p99_ms, memory_bytes, pid, started_at, node)."
    )


@router.get("/{owner}/{name}/workers", summary="Workers of a servable (owners and admins)")
def workers(
    owner: str, name: str, identity: CurrentIdentity, services: ServicesDep
) -> WorkersPublic:
    """Each running version's replicas, queue and workers: state, calls, p50/p99, memory."""
    return WorkersPublic(**services.scaling.workers(identity, f"{owner}/{name}"))


@router.put("/{owner}/{name}/scaling", summary="Set a servable's replica bounds while serving")
def scale(
    owner: str, name: str, body: ScalingUpdate, identity: CurrentIdentity, services: ServicesDep
) -> WorkersPublic:
    """Store and apply the bounds at once (running workers stay; 422 names a bad field)."""
    values = {
        key: value
        for key, value in body.model_dump(exclude_unset=True).items()
        if value is not None or key.endswith("_ms")  # null clears a latency goal
    }
    return WorkersPublic(**services.scaling.scale(identity, f"{owner}/{name}", values))
