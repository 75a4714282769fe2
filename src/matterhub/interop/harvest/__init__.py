"""Harvesting other repositories (OAI-PMH) into this hub's search index as external records."""

from matterhub.interop.harvest.client import HarvestFailed, OAIClient
from matterhub.interop.harvest.service import (
    HarvestRun,
    HarvestService,
    HarvestSourceCreate,
    HarvestSourcePublic,
)

__all__ = [
    "HarvestFailed",
    "HarvestRun",
    "HarvestService",
    "HarvestSourceCreate",
    "HarvestSourcePublic",
    "OAIClient",
]
