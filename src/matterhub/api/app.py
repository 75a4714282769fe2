"""The application factory: one FastAPI app per `Settings`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from matterhub import __version__
from matterhub.api.errors import install_error_handlers
from matterhub.api.limits import BodyLimits
from matterhub.api.routes import (
    access_requests,
    accounts,
    connect,
    globus,
    health,
    optimade,
    schemas,
    servable_citations,
)
from matterhub.api.routes import datasets as dataset_routes
from matterhub.api.routes import exports as export_routes
from matterhub.api.routes import harvest as harvest_routes
from matterhub.api.routes import oai as oai_routes
from matterhub.api.routes import pid as pid_routes
from matterhub.api.routes import runs as run_routes
from matterhub.api.routes import scaling as scaling_routes
from matterhub.api.routes import servables as servable_routes
from matterhub.bootstrap import Services, build_services
from matterhub.settings import Settings
from matterhub.web import pages

__all__ = ["create_app"]

_DESCRIPTION = """\
MatterHub is a self-hostable data and model hub for materials science.

Authenticate with `Authorization: Bearer <token>` (create one with `matterhub token create`).
Anonymous callers see only public content. Errors are JSON `{error, detail, field}`.
"""


def create_app(settings: Settings, *, services: Services | None = None) -> FastAPI:
    """Build the app; services are built from `settings` unless given."""
    services = services or build_services(settings)
    services.start()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        services.close()

    app = FastAPI(
        title="MatterHub",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(
        BodyLimits,
        max_bytes=settings.max_request_bytes,
        max_json_depth=settings.max_json_depth,
    )
    # The run routes come first: routing tries routes in order and each miss costs a few
    # microseconds, so ~75 routes ahead of them were half of a warm run's CPU time.
    # No earlier route matches their paths (tests/api/test_route_order.py).
    app.include_router(run_routes.router)
    app.include_router(health.router)
    app.include_router(accounts.router)
    app.include_router(dataset_routes.router)
    app.include_router(export_routes.router)
    app.include_router(pid_routes.router)
    app.include_router(globus.router)
    app.include_router(connect.router)
    app.include_router(servable_routes.router)
    app.include_router(access_requests.router)
    app.include_router(scaling_routes.router)
    app.include_router(servable_citations.router)
    app.include_router(schemas.router)
    app.include_router(optimade.router)
    app.include_router(oai_routes.router)
    app.include_router(harvest_routes.router)
    app.include_router(pages.router)
    return app
