"""Servables in the `dlhub` search index: the entry of a version and DLHub's search conveniences.

One entry per ready version, subject `<owner>/<name>/<version>`, carrying the document plus a
`matterhub` block (`latest`, `input_types`, `output_types`) so that only-latest and search by
input type are plain field filters. Entries carry the servable's `visible_to`, so the index
applies the same visibility as the catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matterhub.core.search import GFilter, GSearchRequest
from matterhub.core.types import types_used
from matterhub.search.documents import tokenize

__all__ = ["SearchQuery", "author_clause", "entry", "search_request", "subject"]

_AUTHOR_FIELD = "datacite.creators.creatorName"


def subject(owner: str, name: str, version: str) -> str:
    """The search subject of one version."""
    return f"{owner}/{name}/{version}"


def entry(document: dict[str, Any], visible_to: Sequence[str], *, latest: bool) -> dict[str, Any]:
    """The GMetaEntry of a version."""
    dlhub = document["dlhub"]
    run = document["servable"]["methods"]["run"]
    content = {k: v for k, v in document.items() if k != "servable"}
    # The example can be large; the document served by describe keeps it.
    content["servable"] = {k: v for k, v in document["servable"].items() if k != "example"}
    content["datacite"] = {**content["datacite"], "creators": named(content["datacite"])}
    content["matterhub"] = {
        "latest": latest,
        "input_types": sorted(types_used(run["input"])),
        "output_types": sorted(types_used(run["output"])),
    }
    return {
        "subject": subject(dlhub["owner"], dlhub["name"], str(dlhub["version"])),
        "visible_to": list(visible_to),
        "content": content,
    }


def named(datacite: dict[str, Any]) -> list[Any]:
    """The creators with `familyName` and `givenName` from a `"Family, Given"` `creatorName`
    where they lack them (the DataCite convention DLHub's SDK searches on: its
    `search_by_authors` matches `datacite.creators.familyName` and `givenName`)."""
    out = []
    for creator in datacite.get("creators") or []:
        name = creator.get("creatorName") if isinstance(creator, dict) else None
        if isinstance(name, str) and "familyName" not in creator:
            family, _, given = name.partition(",")
            creator = {**creator, "familyName": family.strip()}
            if given.strip() and "givenName" not in creator:
                creator["givenName"] = given.strip()
        out.append(creator)
    return out


class SearchQuery:
    """DLHub's conveniences over the query language: each given field narrows the search."""

    def __init__(
        self,
        q: str | None = None,
        *,
        advanced: bool = True,
        name: str | None = None,
        owner: str | None = None,
        authors: Sequence[str] = (),
        match_all_authors: bool = False,
        domains: Sequence[str] = (),
        doi: str | None = None,
        identifier: str | None = None,
        input_type: str | None = None,
        output_type: str | None = None,
        version: str | None = None,
        only_latest: bool = True,
        limit: int = 10,
        offset: int = 0,
    ) -> None:
        self.q, self.advanced = q, advanced
        self.name, self.owner, self.version = name, owner, version
        self.authors, self.match_all_authors = list(authors), match_all_authors
        self.domains, self.doi, self.identifier = list(domains), doi, identifier
        self.input_type, self.output_type = input_type, output_type
        self.only_latest, self.limit, self.offset = only_latest, limit, offset


def search_request(query: SearchQuery) -> GSearchRequest:
    """The Globus Search request for a servable query."""
    filters: list[GFilter] = []

    def exact(field: str, values: Sequence[Any], *, all_: bool = False) -> None:
        kind = "match_all" if all_ else "match_any"
        filters.append(GFilter(type=kind, field_name=field, values=list(values)))

    if query.name:
        exact("dlhub.name", [query.name])
    if query.owner:
        exact("dlhub.owner", [query.owner])
    if query.version:
        exact("dlhub.version", [query.version])
    if query.domains:
        exact("dlhub.domains", query.domains)
    if query.doi:
        exact("datacite.relatedIdentifiers.relatedIdentifier", [query.doi])
    if query.identifier:  # the version's own identifier (DOI or local PID), hub/identifiers.py
        exact("dlhub.identifier", [query.identifier])
    if query.input_type:
        exact("matterhub.input_types", [query.input_type])
    if query.output_type:
        exact("matterhub.output_types", [query.output_type])
    # A version or an identifier names one version, latest or not.
    if query.only_latest and not query.version and not query.identifier:
        exact("matterhub.latest", [True])
    q = query.q if query.q and query.q.strip() else None
    advanced = query.advanced if q is not None else True
    authors = author_clause(query.authors, match_all=query.match_all_authors)
    if authors:
        # A name is matched by its words in the analysed field, in the query (so visibility,
        # paging and totals stay the index's): the query is read as advanced from here on.
        q = f"({q}) AND {authors}" if q is not None else authors
        advanced = True
    sort_by_date = query.q is None or not query.q.strip()
    return GSearchRequest(
        q=q if q is not None or filters else "*",
        advanced=advanced,
        filters=filters,
        limit=query.limit,
        offset=query.offset,
        sort=[{"field_name": "dlhub.publication_date", "order": "desc"}] if sort_by_date else [],
    )


def author_clause(authors: Sequence[str], *, match_all: bool = False) -> str | None:
    """The query clause matching servables by author names, in any form people write them.

    Each name matches a creator whose `creatorName` holds all of its words, so "Lovelace",
    "Ada Lovelace" and "Lovelace, Ada" all find `"Lovelace, Ada"` (DataCite's "Family, Given").
    Names are ANDed with `match_all`, else ORed. None when no name has a word.
    """
    clauses = []
    for name in authors:
        words = tokenize(str(name))
        if words:
            inner = " AND ".join(f'"{w}"' for w in words)
            clauses.append(f"{_AUTHOR_FIELD}:({inner})")
    if not clauses:
        return None
    return "(" + (" AND " if match_all else " OR ").join(clauses) + ")"
