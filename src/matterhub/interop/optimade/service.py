"""OptimadeService: OPTIMADE's entry listings over the search index, as the caller may see them.

Structures are the indexed records carrying the `optimade` block (added by the indexer to every
ordered crystal structure or molecule); references are the indexed dataset entries. A filter is
translated to a query tree (`filters.py`) and ANDed with the entry type's clause; the search
service adds the caller's visibility, as it does for every listing. Nothing is filtered after the
search, so counts and pages are exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from matterhub.blobs.base import BlobStore
from matterhub.core.errors import MatterHubError
from matterhub.core.identity import Identity
from matterhub.core.optimade import INDEX_KEY
from matterhub.core.search import GSort
from matterhub.interop.optimade.entries import (
    MAX_SITES,
    Sites,
    parse_xyz,
    reference_entry,
    sites_file,
    structure_entry,
)
from matterhub.interop.optimade.fields import PREFIX, REFERENCE_FIELDS, STRUCTURE_FIELDS, Field
from matterhub.interop.optimade.filters import FilterError, FilterLimits, parse_filter
from matterhub.publish.service import DatasetService
from matterhub.search import tree as qt
from matterhub.search.service import SearchService

__all__ = ["ENTRY_TYPES", "MAX_PAGE_LIMIT", "EntryPage", "EntryQuery", "OptimadeService"]

DEFAULT_PAGE_LIMIT = 20
MAX_PAGE_LIMIT = 100
_SITES_BYTES = 4 * 1024 * 1024  # read no further into a file than a structure of MAX_SITES needs
_SITE_FIELDS = {"lattice_vectors", "cartesian_site_positions", "species", "species_at_sites"}

ENTRY_TYPES: dict[str, dict[str, Field]] = {
    "structures": STRUCTURE_FIELDS,
    "references": REFERENCE_FIELDS,
}
_BASE: dict[str, qt.Node] = {
    "structures": qt.Exists(f"{INDEX_KEY}.id"),
    "references": qt.Range("mdf.resource_type", "dataset", "dataset"),
}
_ID_PATH = {"structures": f"{INDEX_KEY}.id", "references": "mdf.source_name"}


@dataclass(frozen=True, slots=True)
class EntryQuery:
    """The query parameters of an entry listing, checked by the route."""

    filter: str = ""
    page_limit: int = DEFAULT_PAGE_LIMIT
    page_offset: int = 0
    sort: str = ""
    response_fields: frozenset[str] | None = None
    include: frozenset[str] = frozenset({"references"})


@dataclass(slots=True)
class EntryPage:
    """One page of entries with OPTIMADE's counts."""

    data: list[dict[str, Any]]
    returned: int
    available: int
    more: bool
    warnings: list[str] = field(default_factory=list)
    included: list[dict[str, Any]] = field(default_factory=list)


class OptimadeService:
    """Structures and references for OPTIMADE clients; each method takes the caller first."""

    def __init__(
        self,
        search: SearchService,
        datasets: DatasetService,
        blobs: BlobStore,
        *,
        index: str = "mdf",
        limits: FilterLimits | None = None,
    ) -> None:
        self._search = search
        self._datasets = datasets
        self._blobs = blobs
        self._index = index
        self.limits = limits or FilterLimits()

    def search(self, identity: Identity, kind: str, query: EntryQuery) -> EntryPage:
        """A page of the entries of `kind` matching the filter, among those the caller sees."""
        fields = ENTRY_TYPES[kind]
        node, warnings = parse_filter(query.filter, fields, prefix=PREFIX, limits=self.limits)
        base = _BASE[kind]
        tree: qt.Node = base
        if not isinstance(node, qt.MatchAll):
            tree = qt.Bool(((qt.Occur.MUST, base), (qt.Occur.MUST, node)))
        sort = self._sort(fields, query.sort)
        try:
            page = self._search.search_tree(
                identity,
                self._index,
                tree,
                sort=sort,
                limit=query.page_limit,
                offset=query.page_offset,
            )
            available = (
                page.total
                if tree is base
                else self._search.search_tree(identity, self._index, base, limit=0).total
            )
        except MatterHubError as exc:
            raise FilterError(exc.detail) from None
        documents = [json.loads(hit.source) for hit in page.hits]
        data = self._entries(identity, kind, documents, query.response_fields)
        more = query.page_offset + len(page.hits) < page.total
        included = self._included(identity, kind, documents, query.include)
        return EntryPage(data, page.total, available, more, warnings, included)

    def get(
        self,
        identity: Identity,
        kind: str,
        entry_id: str,
        fields: frozenset[str] | None,
        include: frozenset[str] = frozenset({"references"}),
    ) -> tuple[dict[str, Any] | None, int, list[dict[str, Any]]]:
        """(the entry with this id or None when the caller cannot see it, the entries available,
        the included references)."""
        base = _BASE[kind]
        tree = qt.Bool(
            ((qt.Occur.MUST, base), (qt.Occur.MUST, qt.Range(_ID_PATH[kind], entry_id, entry_id)))
        )
        available = self._search.search_tree(identity, self._index, base, limit=0).total
        if not entry_id or any(c in entry_id for c in ' "[]{}()\\'):
            return None, available, []
        page = self._search.search_tree(identity, self._index, tree, limit=1)
        if not page.hits:
            return None, available, []
        document = json.loads(page.hits[0].source)
        entry = self._entries(identity, kind, [document], fields)[0]
        return entry, available, self._included(identity, kind, [document], include)

    # helpers ---------------------------------------------------------------------------------

    def _included(
        self,
        identity: Identity,
        kind: str,
        documents: list[dict[str, Any]],
        include: frozenset[str],
    ) -> list[dict[str, Any]]:
        """The references of a page's structures (JSON:API `included`), as the caller sees them."""
        if kind != "structures" or "references" not in include:
            return []
        names = sorted(
            {
                name
                for d in documents
                if isinstance(name := (d.get("mdf") or {}).get("source_name"), str)
            }
        )
        if not names:
            return []
        wanted = qt.Bool(tuple((qt.Occur.SHOULD, qt.Range("mdf.source_name", n, n)) for n in names))
        tree = qt.Bool(((qt.Occur.MUST, _BASE["references"]), (qt.Occur.MUST, wanted)))
        page = self._search.search_tree(identity, self._index, tree, limit=len(names))
        return [reference_entry(json.loads(hit.source), None) for hit in page.hits]

    @staticmethod
    def _sort(fields: dict[str, Field], text: str) -> list[GSort]:
        out: list[GSort] = []
        for item in (part.strip() for part in text.split(",") if part.strip()):
            name = item.lstrip("-")
            known = fields.get(name)
            if known is None or not known.sortable or known.path is None:
                sortable = ", ".join(k for k, f in fields.items() if f.sortable)
                raise FilterError(f"cannot sort on {name!r}; sortable here: {sortable}")
            out.append(GSort(field_name=known.path, order="desc" if item[0] == "-" else "asc"))
        if len(out) > 3:
            raise FilterError("sort on at most three properties")
        return out

    def _entries(
        self,
        identity: Identity,
        kind: str,
        documents: list[dict[str, Any]],
        fields: frozenset[str] | None,
    ) -> list[dict[str, Any]]:
        wanted = set(fields) if fields is not None else None
        if kind == "references":
            return [reference_entry(doc, wanted) for doc in documents]
        need_sites = wanted is None or bool(wanted & _SITE_FIELDS)
        return [
            structure_entry(doc, self._sites(identity, doc) if need_sites else None, wanted)
            for doc in documents
        ]

    def _sites(self, identity: Identity, record: dict[str, Any]) -> Sites | None:
        """The record's sites, read as the caller from its XYZ; None when not readable."""
        nsites = record[INDEX_KEY].get("nsites")
        path = sites_file(record)
        source_id = (record.get("mdf") or {}).get("source_id")
        if path is None or not source_id or not isinstance(nsites, int) or nsites > MAX_SITES:
            return None
        try:
            handle = self._datasets.open_file(identity, source_id, path)
            return parse_xyz(self._lines(handle.key), nsites=nsites)
        except (MatterHubError, ValueError, StopIteration, IndexError, OSError):
            return None

    def _lines(self, key: str) -> Iterator[str]:
        pending = b""
        for chunk in self._blobs.stream(key, end=_SITES_BYTES):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace")
        if pending:
            yield pending.decode("utf-8", "replace")
