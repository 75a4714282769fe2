"""Publish a servable from where it lives, in the browser: a git repository or a URL.

The form on `/me/servables` posts here with the session's CSRF token; the same
`ServableService.publish_source` as the API fetches the files through Connect's collectors and
the one outbound guard, so its checks, bounds and errors (named by field) are the API's. The
document comes from the source's root `dlhub.json` (or `document.json`). The browser lands on
the build's page, which follows the build to the end.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response
from starlette.status import HTTP_303_SEE_OTHER

from matterhub.api.deps import ServicesDep
from matterhub.core.errors import InvalidInput
from matterhub.web.render import PageRoute
from matterhub.web.sessions import CurrentSession, require_csrf

__all__ = ["router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)

_MAX_PATHS_TEXT = 20_000


@router.post("/me/servables/from-source")
async def publish_from_source(
    session: CurrentSession,
    services: ServicesDep,
    source: Annotated[str, Form(max_length=2000)] = "",
    ref: Annotated[str, Form(max_length=200)] = "",
    paths: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Fetch and publish; on to the build's page (the version's page when published before)."""
    require_csrf(session, csrf_token)
    if len(paths) > _MAX_PATHS_TEXT:
        raise InvalidInput(f"at most {_MAX_PATHS_TEXT} characters of paths", field="paths")
    spec: dict[str, object] = {"url": source.strip()}
    if ref.strip():
        spec["ref"] = ref.strip()
    listed = [p.strip() for p in paths.replace(",", "\n").splitlines() if p.strip()]
    if listed:
        spec["paths"] = listed
    build, _new = await run_in_threadpool(
        services.servables.publish_source, session.identity, None, spec
    )
    return RedirectResponse(
        f"/servables/{build.servable}/builds/{build.id}", status_code=HTTP_303_SEE_OTHER
    )
