"""Liveness and readiness: does the hub answer, and do its backends?"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from matterhub import __version__
from matterhub.api.deps import ServicesDep
from matterhub.bootstrap import Services
from matterhub.core.errors import MatterHubError

router = APIRouter(tags=["health"])


class HealthPublic(BaseModel):
    """The hub's state and each backend's."""

    status: Literal["ok", "degraded"]
    version: str
    catalog_backend: str
    checks: dict[str, str]


def _storage_probe(services: Services) -> Callable[[], None]:
    def probe() -> None:
        services.blobs.exists("health-probe")

    return probe


@router.get("/health", response_model=HealthPublic, summary="Is the hub up?")
def health(services: ServicesDep) -> JSONResponse:
    """`ok` with 200 when the catalog and blob store answer, else `degraded` with 503."""
    checks: dict[str, str] = {}
    for name, probe in (("catalog", services.catalog.ping), ("storage", _storage_probe(services))):
        try:
            probe()
            checks[name] = "ok"
        except MatterHubError as exc:
            checks[name] = exc.detail
    ok = all(v == "ok" for v in checks.values())
    body = HealthPublic(
        status="ok" if ok else "degraded",
        version=__version__,
        catalog_backend=services.catalog.backend,
        checks=checks,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
