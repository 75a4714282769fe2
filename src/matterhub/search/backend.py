"""The search backend port: what Discover needs from an engine.

Backends register under the `matterhub.search_backends` entry points (tantivy too) and are
chosen by the `search_backend` setting; `tests/contract/test_search_backend.py` is the suite
every one of them passes (docs/plugins.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from matterhub.core.search import GBoost, GFacet, GFilter, GSort
from matterhub.plugins import NoSettings, PluginSettings
from matterhub.search.documents import Prepared
from matterhub.search.tree import Node

__all__ = ["ENTRY_POINT_GROUP", "Hit", "Page", "SearchBackend", "SearchSpec"]

ENTRY_POINT_GROUP = "matterhub.search_backends"


@dataclass(frozen=True, slots=True)
class SearchSpec:
    """A parsed search: the tree plus Globus filters, facets, sort and paging."""

    tree: Node
    principals: frozenset[str] | None  # None: no visibility filter (admins, the system)
    filters: Sequence[GFilter] = ()
    post_filters: Sequence[GFilter] = ()
    facets: Sequence[GFacet] = ()
    boosts: Sequence[GBoost] = ()
    sort: Sequence[GSort] = ()
    limit: int = 10
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Hit:
    """One matching entry; `source` is the content JSON exactly as stored."""

    subject: str
    entry_id: str | None
    source: str


@dataclass(slots=True)
class Page:
    """A page of hits, the total and the facet results."""

    total: int
    hits: list[Hit]
    facets: list[dict[str, Any]] = field(default_factory=list)
    marker: str | None = None
    has_next: bool = False


class SearchBackend(ABC):
    """One index in one engine. Writes come from a single ingest worker; reads from anywhere."""

    settings_model: ClassVar[type[PluginSettings]] = NoSettings
    """The backend's own settings (`MATTERHUB_SEARCH_<NAME>_<FIELD>`, or `search_options`)."""

    @classmethod
    @abstractmethod
    def open(cls, location: Path, settings: PluginSettings) -> SearchBackend:
        """Open the index kept at `location` (`<index_dir>/<index id>`), creating it when new.

        A backend on disk keeps its files in that folder; one on a server may use only its name
        (the index id) to name its own index. `settings` is an instance of `settings_model`.
        """

    @abstractmethod
    def upsert(self, entries: Sequence[Prepared]) -> None:
        """Add or replace entries (by subject + entry id); visible after `commit`."""

    @abstractmethod
    def delete_subject(self, subject: str) -> None:
        """Remove every entry of a subject."""

    @abstractmethod
    def delete_entry(self, subject: str, entry_id: str | None) -> None:
        """Remove one entry."""

    @abstractmethod
    def delete_matching(self, spec: SearchSpec) -> int:
        """Remove the entries a query matches; returns how many."""

    @abstractmethod
    def commit(self) -> None:
        """Make pending writes durable and visible."""

    @abstractmethod
    def rollback(self) -> None:
        """Drop pending writes."""

    @abstractmethod
    def search(self, spec: SearchSpec) -> Page:
        """Run a search."""

    @abstractmethod
    def scroll(self, spec: SearchSpec, marker: str | None) -> Page:
        """The next page after `marker` in a stable order, for reading everything."""

    @abstractmethod
    def entries(self, subject: str, principals: frozenset[str] | None) -> list[Hit]:
        """The entries of one subject the principals may see."""

    @abstractmethod
    def mapping(self) -> dict[str, str]:
        """Every field path seen, with its type."""

    @abstractmethod
    def count(self) -> int:
        """How many entries the index holds."""

    @abstractmethod
    def close(self) -> None:
        """Release the writer and files."""
