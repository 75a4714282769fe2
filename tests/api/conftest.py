"""An in-process app over a temporary embedded hub, and helpers to make users."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from matterhub.api import create_app
from matterhub.bootstrap import Services, build_services
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.settings import Settings


@pytest.fixture
def services(settings: Settings) -> Services:
    services = build_services(settings)
    # Cheap hashing parameters keep the suite fast; production uses argon2's defaults.
    services.accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return services


@pytest.fixture
def app(settings: Settings, services: Services) -> FastAPI:
    return create_app(settings, services=services)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
        yield client


@pytest.fixture
def make_user(services: Services) -> Callable[..., str]:
    """Create a user (optionally admin) and return a bearer token for it."""

    def make(username: str, *, admin: bool = False) -> str:
        services.accounts.create_user(SYSTEM_IDENTITY, username, is_admin=admin)
        return services.accounts.create_token(SYSTEM_IDENTITY, username).token

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
