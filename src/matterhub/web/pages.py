"""The web UI's router: the landing page, static files, and every page module's routes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from matterhub.core.errors import NotFound
from matterhub.web import (
    access,
    admin,
    auth,
    datasets,
    scaling,
    search,
    servable_cite,
    servable_sources,
    servables,
    submit,
)
from matterhub.web.render import HERE, PageRoute, page
from matterhub.web.sessions import CurrentSession

__all__ = ["router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)
_STATIC = {
    "matterhub.css": "text/css; charset=utf-8",
    "matterhub.js": "text/javascript; charset=utf-8",
}


@router.get("/")
def index(request: Request, session: CurrentSession) -> Response:
    """The home page."""
    settings = request.app.state.settings
    return page(request, session, "index.html", {"base_url": settings.base_url})


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The stylesheet and script (hand-written; nothing third-party)."""
    if name not in _STATIC:
        raise NotFound(f"no static file {name!r}", field="name")
    return FileResponse(
        HERE / "static" / name,
        media_type=_STATIC[name],
        headers={"cache-control": "public, max-age=3600"},
    )


for _module in (
    auth,
    search,
    datasets,
    servables,
    servable_sources,
    servable_cite,
    scaling,
    access,
    submit,
    admin,
):
    router.include_router(_module.router)
