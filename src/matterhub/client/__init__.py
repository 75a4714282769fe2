"""The MatterHub Python client: `Client` (HTTP API) and `Forge` (MDF Forge's search builder)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from matterhub.client.client import Client
from matterhub.client.errors import (
    APIError,
    AuthenticationError,
    ChecksumMismatch,
    ClientError,
    DownloadError,
    HubUnreachable,
    NotFoundError,
)

if TYPE_CHECKING:
    from matterhub.client.forge import Forge

__all__ = [
    "APIError",
    "AuthenticationError",
    "ChecksumMismatch",
    "Client",
    "ClientError",
    "DownloadError",
    "Forge",
    "HubUnreachable",
    "NotFoundError",
]


def __getattr__(name: str) -> Any:
    if name == "Forge":
        from matterhub.client.forge import Forge

        return Forge
    raise AttributeError(f"module 'matterhub.client' has no attribute {name!r}")
