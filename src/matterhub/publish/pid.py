"""The persistent-identifier port: reserve on draft, register on publish, hide on withdraw.

Providers register through the `matterhub.pid_providers` entry point group (the built-in
`local` and `datacite` ones too); each is a class with `from_options(options)`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from matterhub.core.errors import InvalidInput
from matterhub.plugins import load_plugin

__all__ = ["ENTRY_POINT_GROUP", "PIDProvider", "load_pid_provider"]

ENTRY_POINT_GROUP = "matterhub.pid_providers"


class PIDProvider(ABC):
    """Mints and maintains persistent identifiers for dataset versions."""

    name: str = "pid"
    is_doi: bool = False
    """True when identifiers are DOIs (cited as `doi`, resolved at doi.org)."""

    @classmethod
    @abstractmethod
    def from_options(cls, options: Mapping[str, Any]) -> PIDProvider:
        """Build the provider from the options `bootstrap` passes (settings values)."""

    @abstractmethod
    def reserve(self, source_id: str, metadata: Mapping[str, Any]) -> str:
        """Reserve an identifier for a version (not yet resolvable by others); return it."""

    @abstractmethod
    def register(self, pid: str, metadata: Mapping[str, Any]) -> None:
        """Make `pid` public with `metadata` (DataCite attributes, `url` included)."""

    @abstractmethod
    def hide(self, pid: str) -> None:
        """Take a withdrawn version's identifier out of discovery (it keeps resolving)."""

    @abstractmethod
    def resolver_url(self, pid: str, base_url: str) -> str:
        """Where `pid` resolves for a person."""


def load_pid_provider(name: str, options: Mapping[str, Any]) -> PIDProvider:
    """The provider registered as `name` in the `matterhub.pid_providers` entry points."""
    provider_class = load_plugin(ENTRY_POINT_GROUP, name, field="pid_provider", what="PID provider")
    provider = provider_class.from_options(options)
    if not isinstance(provider, PIDProvider):
        raise InvalidInput(f"PID provider {name!r} is not a PIDProvider", field="pid_provider")
    return provider
