"""Access requests over HTTP: ask for the right to run a servable; its owner grants or declines."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from matterhub.api.deps import CurrentIdentity, ServicesDep
from matterhub.api.errors import ERROR_RESPONSES
from matterhub.core.access_requests import (
    MAX_MESSAGE_CHARS,
    MAX_REASON_CHARS,
    STATUSES,
    AccessRequestPublic,
)

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["access requests"], responses=ERROR_RESPONSES)

StatusQuery = Annotated[str | None, Query(description=" | ".join(STATUSES))]
LimitQuery = Annotated[int, Query(ge=1, le=500)]
OffsetQuery = Annotated[int, Query(ge=0, le=10_000)]


class AccessRequestCreate(BaseModel):
    """What the requester tells the owner."""

    message: str | None = Field(
        None, description=f"Why you need to run it (at most {MAX_MESSAGE_CHARS} characters)."
    )


class AccessGrant(BaseModel):
    """To whom the right goes."""

    to: str | None = Field(
        None,
        description="'user' (the requester, the default) or 'group:<name>' of a group you and "
        "the requester belong to.",
    )


class AccessDecline(BaseModel):
    """Why the owner says no."""

    reason: str | None = Field(
        None, description=f"Required; the requester reads it (at most {MAX_REASON_CHARS})."
    )


class AccessRevoke(BaseModel):
    """Why a granted right is taken back (optional)."""

    reason: str | None = Field(None, description=f"At most {MAX_REASON_CHARS} characters.")


@router.post(
    "/servables/{owner}/{name}/access-requests",
    status_code=status.HTTP_201_CREATED,
    summary="Ask the owner for the right to run a servable you can see",
)
def request_access(
    owner: str,
    name: str,
    body: AccessRequestCreate,
    identity: CurrentIdentity,
    services: ServicesDep,
) -> AccessRequestPublic:
    """409 when you can already run it (the detail says why) or already asked."""
    return services.access.request(identity, f"{owner}/{name}", message=body.message)


@router.get(
    "/servables/{owner}/{name}/access-requests",
    summary="Requests on a servable (all for its owner; your own for anybody else)",
)
def servable_requests(
    owner: str,
    name: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    status_: Annotated[StatusQuery, Query(alias="status")] = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> list[AccessRequestPublic]:
    """Newest first."""
    return services.access.list_requests(
        identity, f"{owner}/{name}", status=status_, limit=limit, offset=offset
    )


@router.get("/access-requests", summary="Your access requests, or those on your servables")
def my_requests(
    identity: CurrentIdentity,
    services: ServicesDep,
    status_: Annotated[StatusQuery, Query(alias="status")] = None,
    role: Annotated[
        str, Query(description="requester (yours, the default) or owner (on your servables)")
    ] = "requester",
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> list[AccessRequestPublic]:
    """Newest first."""
    return services.access.list_requests(
        identity, status=status_, role=role, limit=limit, offset=offset
    )


@router.get("/access-requests/{request_id}", summary="One access request")
def get_request(
    request_id: str, identity: CurrentIdentity, services: ServicesDep
) -> AccessRequestPublic:
    """For its requester, the servable's owner and administrators."""
    return services.access.get(identity, request_id)


@router.post("/access-requests/{request_id}/grant", summary="Grant the right to run")
def grant(
    request_id: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    body: AccessGrant | None = None,
) -> AccessRequestPublic:
    """The servable's owner (or an admin) adds the requester, or a group, to `runnable_by`."""
    return services.access.grant(identity, request_id, to=body.to if body else None)


@router.post("/access-requests/{request_id}/decline", summary="Decline, with a reason")
def decline(
    request_id: str, body: AccessDecline, identity: CurrentIdentity, services: ServicesDep
) -> AccessRequestPublic:
    """The requester is told the reason."""
    return services.access.decline(identity, request_id, reason=body.reason)


@router.post("/access-requests/{request_id}/withdraw", summary="Withdraw your pending request")
def withdraw(
    request_id: str, identity: CurrentIdentity, services: ServicesDep
) -> AccessRequestPublic:
    """Only the requester."""
    return services.access.withdraw(identity, request_id)


@router.post("/access-requests/{request_id}/revoke", summary="Take back a granted right")
def revoke(
    request_id: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    body: AccessRevoke | None = None,
) -> AccessRequestPublic:
    """The servable's owner (or an admin); the requester is told."""
    return services.access.revoke(identity, request_id, reason=body.reason if body else None)
