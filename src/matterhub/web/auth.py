"""Signing in (username + password, or an API token) and out."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response
from starlette.status import HTTP_303_SEE_OTHER

from matterhub.api.deps import ServicesDep
from matterhub.core.errors import Unauthenticated
from matterhub.web.render import PageRoute, page
from matterhub.web.sessions import CurrentSession, WebSession, require_csrf

__all__ = ["router", "safe_next"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only local paths, so the sign-in form cannot send people to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _signed_in(session: WebSession, target: str) -> Response:
    response = RedirectResponse(safe_next(target), status_code=HTTP_303_SEE_OTHER)
    session.save(response)
    return response


@router.get("/signin")
def signin_form(request: Request, session: CurrentSession, next: str = "/") -> Response:
    """The sign-in page."""
    return page(request, session, "signin.html", {"next": safe_next(next), "message": None})


@router.post("/signin")
def signin(
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the password and start a session."""
    require_csrf(session, csrf_token)
    try:
        # Names are stored NFKC-normalised, so `ａｌｉｃｅ` signs in as `alice`.
        name = unicodedata.normalize("NFKC", username)
        identity = services.accounts.check_password(name, password)
    except Unauthenticated as exc:
        context = {"next": safe_next(next), "message": exc.detail, "username": username}
        return page(request, session, "signin.html", context, status_code=401)
    session.sign_in(identity)
    return _signed_in(session, next)


@router.post("/signin/token")
def signin_token(
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
    token: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check an API token and start a session that ends when the token does (or sooner).

    The session remembers which token it came from, never the token itself.
    """
    require_csrf(session, csrf_token)
    bearer = token.strip()
    try:
        identity = services.accounts.authenticate(bearer)
        if identity.user_id is None:
            raise Unauthenticated("invalid API token")
    except Unauthenticated as exc:
        context = {"next": safe_next(next), "message": exc.detail}
        return page(request, session, "signin.html", context, status_code=401)
    # authenticate accepted `mh_<id>_<secret>`, so the id is the middle part.
    token_id = bearer.split("_", 2)[1]
    session.sign_in(identity, token_id=token_id)
    return _signed_in(session, next)


@router.post("/signout")
def signout(session: CurrentSession, csrf_token: Annotated[str, Form()] = "") -> Response:
    """End the session: the server forgets it, so the old cookie no longer signs anyone in."""
    require_csrf(session, csrf_token)
    session.sign_out()
    return _signed_in(session, "/")
