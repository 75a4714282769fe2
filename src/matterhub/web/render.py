"""Templates, filters and the page route class that turns MatterHub errors into HTML pages."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, Response

from matterhub import __version__
from matterhub.core.errors import MatterHubError
from matterhub.web.sessions import WebSession, get_session

__all__ = ["PageRoute", "filesize", "page", "templates"]

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def filesize(n: int | None) -> str:
    """Bytes for people: 1.4 MB."""
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


def _date(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:10]
    return f"{value:%Y-%m-%d}"


def _query(params: Mapping[str, Any] | list[tuple[str, Any]]) -> str:
    """URL-encode parameters, repeating keys with list values; empty values are left out."""
    items = params.items() if isinstance(params, Mapping) else params
    flat: list[tuple[str, str]] = []
    for key, value in items:
        values = value if isinstance(value, list | tuple) else [value]
        flat.extend((key, str(v)) for v in values if v not in (None, "", False))
    return urlencode(flat)


templates.env.filters["filesize"] = filesize
templates.env.filters["date"] = _date
templates.env.filters["query"] = _query
templates.env.filters["pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False)
templates.env.globals["version"] = __version__


def page(
    request: Request,
    session: WebSession,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page with the session's user and CSRF token, saving the session cookie."""
    identity = session.identity
    curator = bool(identity.user_id) and request.app.state.services.datasets.is_curator(identity)
    response = templates.TemplateResponse(
        request,
        name,
        {"session": session, "me": identity, "is_curator": curator, **(context or {})},
        status_code=status_code,
    )
    session.save(response)
    return response


class PageRoute(APIRoute):
    """A page route: a MatterHubError becomes an HTML page with its status, not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler so errors render as pages."""
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except MatterHubError as exc:
                return _error_page(request, exc)

        return route


def _error_page(request: Request, exc: MatterHubError) -> Response:
    services = request.app.state.services
    try:
        session = get_session(request, services)
    except MatterHubError:  # the catalog is down: still answer with a page
        session = WebSession(secret=services.secret, nonce="-")
    if exc.status == 401:
        signin = "/signin?" + _query({"next": request.url.path})
        context = {"error": exc, "signin": signin}
    else:
        context = {"error": exc, "signin": None}
    return page(request, session, "error.html", context, status_code=exc.status)
