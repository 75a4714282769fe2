"""Dependencies shared by routers: the services and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from matterhub.bootstrap import Services
from matterhub.core.errors import Unauthenticated
from matterhub.core.identity import Identity

__all__ = ["CurrentIdentity", "ServicesDep", "get_identity", "get_services"]

_bearer = HTTPBearer(auto_error=False, description="An API token from `matterhub token create`.")


def get_services(request: Request) -> Services:
    """The services of the app handling this request."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_identity(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Identity:
    """Who is calling: the token's user, or anonymous when no Authorization header is sent."""
    # A sync dependency: FastAPI runs it in the thread pool, so token checks never block the loop.
    header = request.headers.get("authorization")
    if header is not None and credentials is None:
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return services.accounts.authenticate(credentials.credentials if credentials else None)


CurrentIdentity = Annotated[Identity, Depends(get_identity)]
