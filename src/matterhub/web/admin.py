"""Administration pages: users (and their passwords), groups and members, tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from matterhub.api.deps import ServicesDep
from matterhub.bootstrap import Services
from matterhub.core.errors import MatterHubError, PermissionDenied, Unauthenticated
from matterhub.core.identity import Identity
from matterhub.web.render import PageRoute, page
from matterhub.web.sessions import CurrentSession, WebSession, require_csrf

__all__ = ["router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _admin(session: WebSession) -> Identity:
    identity = session.identity
    if identity.user_id is None:
        raise Unauthenticated("sign in as an administrator")
    if not identity.is_admin:
        raise PermissionDenied("only administrators manage users, groups and tokens")
    return identity


def _render(
    request: Request,
    session: WebSession,
    services: Services,
    *,
    message: str | None = None,
    error: MatterHubError | None = None,
    new_token: str | None = None,
    tokens_of: str | None = None,
) -> Response:
    identity = _admin(session)
    users = services.accounts.list_users(identity)
    tokens_of = tokens_of or identity.username
    context: dict[str, Any] = {
        "users": users,
        "groups": services.accounts.list_groups(identity),
        "tokens_of": tokens_of,
        "tokens": services.accounts.list_tokens(identity, tokens_of or ""),
        "message": message,
        "error": error,
        "new_token": new_token,
    }
    status = error.status if error else 200
    return page(request, session, "admin.html", context, status_code=status)


@router.get("/admin")
def admin(
    request: Request, session: CurrentSession, services: ServicesDep, user: str | None = None
) -> Response:
    """Users, groups and one user's tokens."""
    return _render(request, session, services, tokens_of=user)


def _act(
    request: Request,
    session: WebSession,
    services: Services,
    csrf_token: str,
    action: Any,
    *,
    tokens_of: str | None = None,
) -> Response:
    """Run one admin action; its message or error is shown on the admin page."""
    identity = _admin(session)
    require_csrf(session, csrf_token)
    try:
        message, token = action(identity)
    except MatterHubError as exc:
        return _render(request, session, services, error=exc, tokens_of=tokens_of)
    return _render(
        request, session, services, message=message, new_token=token, tokens_of=tokens_of
    )


@router.post("/admin/users")
def create_user(
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
    username: Annotated[str, Form()],
    email: Annotated[str, Form()] = "",
    full_name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    is_admin: Annotated[bool, Form()] = False,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Create a user, optionally with a password."""

    def action(identity: Identity) -> tuple[str, None]:
        user = services.accounts.create_user(
            identity, username.strip(), email=email or None, full_name=full_name or None,
            is_admin=is_admin,
        )  # fmt: skip
        if password:
            services.accounts.set_password(identity, user.username, password)
        return f"Created user {user.username}", None

    return _act(request, session, services, csrf_token, action)


@router.post("/admin/users/{username}/password")
def set_password(
    username: str,
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Set a user's password."""

    def action(identity: Identity) -> tuple[str, None]:
        services.accounts.set_password(identity, username, password)
        return f"Password set for {username}", None

    return _act(request, session, services, csrf_token, action)


@router.post("/admin/groups")
def create_group(
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
    name: Annotated[str, Form()],
    description: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Create a group."""

    def action(identity: Identity) -> tuple[str, None]:
        group = services.accounts.create_group(
            identity, name.strip(), description=description or None
        )
        return f"Created group {group.name}", None

    return _act(request, session, services, csrf_token, action)


@router.post("/admin/groups/{name}/members")
def change_member(
    name: str,
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
    username: Annotated[str, Form()],
    change: Annotated[str, Form()] = "add",
    role: Annotated[str, Form()] = "member",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Add a member to a group (as member or manager), or remove one."""

    def action(identity: Identity) -> tuple[str, None]:
        if change == "remove":
            services.accounts.remove_member(identity, name, username.strip())
            return f"Removed {username} from {name}", None
        services.accounts.add_member(identity, name, username.strip(), role=role)
        return f"Added {username} to {name} as {role}", None

    return _act(request, session, services, csrf_token, action)


@router.post("/admin/tokens")
def create_token(
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
    username: Annotated[str, Form()],
    name: Annotated[str, Form()] = "web",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Create a token; its secret is shown this one time."""

    def action(identity: Identity) -> tuple[str, str]:
        token = services.accounts.create_token(identity, username.strip(), name=name)
        return f"Created token {token.name!r} for {token.username}", token.token

    return _act(request, session, services, csrf_token, action, tokens_of=username.strip())


@router.post("/admin/tokens/{token_id}/revoke")
def revoke_token(
    token_id: str,
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
    username: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Revoke a token now."""

    def action(identity: Identity) -> tuple[str, None]:
        token = services.accounts.revoke_token(identity, token_id)
        return f"Revoked token {token.name!r} of {token.username}", None

    return _act(request, session, services, csrf_token, action, tokens_of=username or None)
