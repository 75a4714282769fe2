"""SDK fixtures: a `matterhub.Client` wired to the in-process app (no sockets)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI

from matterhub.bootstrap import Services
from matterhub.client import Client
from tests.api.conftest import app, make_user, services  # noqa: F401
from tests.search.conftest import ingest, make_records

BASE = "http://hub.test"


class SyncASGITransport(httpx.BaseTransport):
    """httpx.ASGITransport for a sync client: each request runs on an event loop thread."""

    def __init__(self, asgi_app: FastAPI) -> None:
        self._inner = httpx.ASGITransport(app=asgi_app)
        self._portal_cm = start_blocking_portal()
        self._portal: BlockingPortal = self._portal_cm.__enter__()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> tuple[int, httpx.Headers, bytes]:
            inner = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._inner.handle_async_request(inner)
            return response.status_code, response.headers, await response.aread()

        status, headers, content = self._portal.call(call)
        return httpx.Response(status, headers=headers, content=content, request=request)

    def shutdown(self) -> None:
        self._portal_cm.__exit__(None, None, None)


def transport_for(asgi_app: FastAPI) -> SyncASGITransport:
    """A sync transport into the in-process app (call `shutdown()` when done)."""
    return SyncASGITransport(asgi_app)


@pytest.fixture
def hub_client(app: FastAPI) -> Iterator[Callable[..., Client]]:  # noqa: F811
    """Make a Client (anonymous unless a token is given) over the in-process app."""
    transport = transport_for(app)

    def make(token: str | None = None, **kwargs: Any) -> Client:
        return Client(BASE, token, transport=transport, backoff=0, **kwargs)

    yield make
    transport.shutdown()


@pytest.fixture
def records_hub(services: Services) -> list[dict[str, Any]]:  # noqa: F811
    """300 public records ingested into the `mdf` index."""
    records = make_records(300, seed=5, source="sdk")
    ingest(services, records)
    return records
