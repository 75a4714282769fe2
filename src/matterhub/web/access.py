"""Access-request pages: ask for the right to run a servable; owners grant or decline.

A signed-in user who sees a servable but may not run it finds a "Request access" form on its
page (`access_block` fills it); the owner decides on `/me/access-requests`, where the requester
also reads each decision. Every form posts with the session's CSRF token and goes through the
same `AccessRequests` service as the API, so the checks and bounds are the same.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response
from starlette.status import HTTP_303_SEE_OTHER

from matterhub.api.deps import ServicesDep
from matterhub.bootstrap import Services
from matterhub.core.access_requests import MAX_MESSAGE_CHARS, MAX_REASON_CHARS
from matterhub.core.errors import MatterHubError, Unauthenticated
from matterhub.core.identity import Identity, group_principal
from matterhub.web.render import PageRoute, page
from matterhub.web.sessions import CurrentSession, require_csrf

__all__ = ["access_block", "router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE = "/me/access-requests"


def access_block(
    services: Services, identity: Identity, owner: str, ref: str, can_run: bool
) -> dict[str, Any]:
    """What the servable page shows about access: the owner's pending count, or the caller's
    latest request and whether to offer the form."""
    out: dict[str, Any] = {"mine": None, "pending": 0, "form": False}
    out["max_message"] = MAX_MESSAGE_CHARS
    if identity.user_id is None:
        return out
    try:
        if identity.username == owner:
            pending = services.access.list_requests(identity, ref, status="pending", limit=500)
            out["pending"] = len(pending)
            return out
        # The caller's own requests (an administrator's listing holds everybody's).
        listed = services.access.list_requests(identity, ref, limit=50)
    except MatterHubError:
        return out
    latest = next((r for r in listed if r.requester == identity.username), None)
    out["mine"] = latest
    out["form"] = not can_run and (latest is None or latest.status != "pending")
    return out


@router.post("/servables/{owner}/{name}/access-requests")
def request_access(
    owner: str,
    name: str,
    session: CurrentSession,
    services: ServicesDep,
    message: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Send the form on a servable's page; back to the page, which shows the request."""
    require_csrf(session, csrf_token)
    services.access.request(session.identity, f"{owner}/{name}", message=message)
    return RedirectResponse(f"/servables/{owner}/{name}#access", status_code=HTTP_303_SEE_OTHER)


def _group_names(services: Services, identity: Identity) -> list[str]:
    """The caller's groups, by name, to offer as grantees."""
    principals = [group_principal(g) for g in sorted(identity.group_ids)]
    names = services.accounts.principal_names(principals)
    return sorted(names[p].removeprefix("group ") for p in principals)


@router.get(PAGE)
def access_requests(request: Request, session: CurrentSession, services: ServicesDep) -> Response:
    """Requests on my servables (pending ones with grant and decline forms) and my own requests."""
    identity = session.identity
    if identity.user_id is None:
        raise Unauthenticated("sign in to see access requests")
    on_mine = services.access.list_requests(identity, role="owner", limit=200)
    context = {
        "pending": [r for r in on_mine if r.status == "pending"],
        "decided": [r for r in on_mine if r.status != "pending"],
        "mine": services.access.list_requests(identity, role="requester", limit=200),
        "groups": _group_names(services, identity),
        "max_reason": MAX_REASON_CHARS,
    }
    return page(request, session, "access_requests.html", context)


@router.post(PAGE + "/{request_id}/grant")
def grant(
    request_id: str,
    session: CurrentSession,
    services: ServicesDep,
    to: Annotated[str, Form()] = "user",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Grant to the requester or to a group of the owner's."""
    require_csrf(session, csrf_token)
    services.access.grant(session.identity, request_id, to=to or None)
    return RedirectResponse(f"{PAGE}#request-{request_id}", status_code=HTTP_303_SEE_OTHER)


@router.post(PAGE + "/{request_id}/decline")
def decline(
    request_id: str,
    session: CurrentSession,
    services: ServicesDep,
    reason: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Decline with a reason (required; the requester reads it)."""
    require_csrf(session, csrf_token)
    services.access.decline(session.identity, request_id, reason=reason)
    return RedirectResponse(f"{PAGE}#request-{request_id}", status_code=HTTP_303_SEE_OTHER)


@router.post(PAGE + "/{request_id}/withdraw")
def withdraw(
    request_id: str,
    session: CurrentSession,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """The requester takes back a pending request."""
    require_csrf(session, csrf_token)
    services.access.withdraw(session.identity, request_id)
    return RedirectResponse(f"{PAGE}#request-{request_id}", status_code=HTTP_303_SEE_OTHER)
