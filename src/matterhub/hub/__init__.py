"""Hub: servables described, published, built into isolated environments and discovered."""

from __future__ import annotations

from matterhub.hub.bundle import StagedBundle
from matterhub.hub.discovery import SearchQuery
from matterhub.hub.environments import EnvironmentBuilder, PackageSources
from matterhub.hub.service import RuntimeSpec, ServableService

__all__ = [
    "EnvironmentBuilder",
    "PackageSources",
    "RuntimeSpec",
    "SearchQuery",
    "ServableService",
    "StagedBundle",
]
