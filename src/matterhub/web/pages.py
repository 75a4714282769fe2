"""The landing page: what this hub is and where to go next."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from matterhub import __version__

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    """The home page."""
    settings = request.app.state.settings
    return templates.TemplateResponse(
        request, "index.html", {"version": __version__, "base_url": settings.base_url}
    )
