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
    sandbox: str  # "bwrap", "none (unsandboxed: …)" or why servable code is refused


def _storage_probe(services: Services) -> Callable[[], None]:
    def probe() -> None:
        services.blobs.exists("health-probe")

    return probe


def _sandbox_state(services: Services) -> str:
    """Whether servable code runs, and how: the data side stays healthy either way."""
    sandbox = services.sandbox
    if not sandbox.enabled:
        return "none (unsandboxed: published code runs as the server's user)"
    problem = sandbox.problem()
    return "bwrap" if problem is None else f"refusing servable code: {problem}"


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
        sandbox=_sandbox_state(services),
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
