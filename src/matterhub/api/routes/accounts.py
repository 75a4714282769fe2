"""Who am I, users, groups and tokens."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from matterhub.api.deps import CurrentIdentity, ServicesDep
from matterhub.api.errors import ERROR_RESPONSES
from matterhub.core.accounts import GroupPublic, NewToken, TokenPublic, UserPublic, WhoAmI

router = APIRouter(prefix="/api", tags=["accounts"], responses=ERROR_RESPONSES)


class _Create(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Create):
    """A new user account."""

    username: str = Field(min_length=1, max_length=64)
    email: str | None = Field(default=None, max_length=320)
    full_name: str | None = Field(default=None, max_length=200)
    is_admin: bool = False


class GroupCreate(_Create):
    """A new group."""

    name: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=2000)


class TokenCreate(_Create):
    """A new API token."""

    name: str = Field(default="api", min_length=1, max_length=100)
    expires_in_days: int | None = Field(
        default=None, gt=0, le=3650, description="Lifetime; the server default when omitted."
    )
    never_expires: bool = False


class MemberAdd(_Create):
    """A membership."""

    role: str = Field(default="member", pattern="^(member|manager)$")


@router.get("/whoami", response_model=WhoAmI, summary="The identity behind this request")
def whoami(identity: CurrentIdentity, services: ServicesDep) -> WhoAmI:
    """Anonymous callers get `authenticated: false` and only the `public` principal."""
    return services.accounts.whoami(identity)


@router.get("/users", response_model=list[UserPublic], summary="List users (admins)")
def list_users(identity: CurrentIdentity, services: ServicesDep) -> list[UserPublic]:
    """Every account."""
    return services.accounts.list_users(identity)


@router.post(
    "/users",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a user",
)
def create_user(body: UserCreate, identity: CurrentIdentity, services: ServicesDep) -> UserPublic:
    """Administrators create accounts."""
    return services.accounts.create_user(identity, **body.model_dump())


@router.get("/users/{username}", response_model=UserPublic, summary="One user")
def get_user(username: str, identity: CurrentIdentity, services: ServicesDep) -> UserPublic:
    """Yourself, or anyone for administrators."""
    return services.accounts.get_user(identity, username)


@router.get("/users/{username}/tokens", response_model=list[TokenPublic], summary="A user's tokens")
def list_tokens(
    username: str, identity: CurrentIdentity, services: ServicesDep
) -> list[TokenPublic]:
    """Token metadata; secrets are never shown again."""
    return services.accounts.list_tokens(identity, username)


@router.post(
    "/users/{username}/tokens",
    response_model=NewToken,
    status_code=status.HTTP_201_CREATED,
    summary="Create a token",
)
def create_token(
    username: str, body: TokenCreate, identity: CurrentIdentity, services: ServicesDep
) -> NewToken:
    """The response carries the secret once; store it."""
    expires = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    return services.accounts.create_token(
        identity, username, name=body.name, expires_in=expires, never_expires=body.never_expires
    )


@router.delete("/tokens/{token_id}", response_model=TokenPublic, summary="Revoke a token")
def revoke_token(token_id: str, identity: CurrentIdentity, services: ServicesDep) -> TokenPublic:
    """It stops working immediately."""
    return services.accounts.revoke_token(identity, token_id)


@router.get("/groups", response_model=list[GroupPublic], summary="List groups")
def list_groups(identity: CurrentIdentity, services: ServicesDep) -> list[GroupPublic]:
    """All groups for administrators; your own otherwise."""
    return services.accounts.list_groups(identity)


@router.post(
    "/groups",
    response_model=GroupPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a group",
)
def create_group(
    body: GroupCreate, identity: CurrentIdentity, services: ServicesDep
) -> GroupPublic:
    """You become the group's first manager."""
    return services.accounts.create_group(identity, body.name, description=body.description)


@router.get("/groups/{name}", response_model=GroupPublic, summary="One group")
def get_group(name: str, identity: CurrentIdentity, services: ServicesDep) -> GroupPublic:
    """Members and administrators only."""
    return services.accounts.get_group(identity, name)


@router.put("/groups/{name}/members/{username}", response_model=GroupPublic, summary="Add a member")
def add_member(
    name: str,
    username: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    body: MemberAdd | None = None,
) -> GroupPublic:
    """Group managers and administrators."""
    role = body.role if body else "member"
    return services.accounts.add_member(identity, name, username, role=role)


@router.delete(
    "/groups/{name}/members/{username}", response_model=GroupPublic, summary="Remove a member"
)
def remove_member(
    name: str, username: str, identity: CurrentIdentity, services: ServicesDep
) -> GroupPublic:
    """Group managers and administrators."""
    return services.accounts.remove_member(identity, name, username)
