"""The search page: a query, facets with drill-down (a periodic table for elements), paging,
"download these results" and "copy as Forge code".

Every selection lives in the URL (`?q=…&type=record&el=Fe&el=O&page=2`), so pages are links that
work without JavaScript, can be bookmarked and shared, and the back button undoes a drill-down.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from matterhub.api.deps import ServicesDep
from matterhub.core.errors import BadRequest, InvalidInput
from matterhub.core.identity import Identity
from matterhub.core.search import MAX_RESULTS, GFacet, GFilter, GScrollRequest, GSearchRequest
from matterhub.search.backend import Page
from matterhub.search.service import SearchService
from matterhub.web.elements import table
from matterhub.web.render import PageRoute, page
from matterhub.web.sessions import CurrentSession

__all__ = ["FACETS", "Query", "router", "summarize"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PER_PAGE = 20
INDEXES = ("mdf", "mdf-test")


@dataclass(frozen=True, slots=True)
class Facet:
    """A facet of the side panel: its URL parameter, field and how selections combine."""

    param: str
    field_name: str
    label: str
    size: int
    match_all: bool = False


FACETS: tuple[Facet, ...] = (
    Facet("type", "mdf.resource_type", "Resource type", 10),
    Facet("source", "mdf.source_name", "Source", 25),
    Facet("year", "dc.publicationYear", "Year", 100),
    Facet("org", "mdf.organizations", "Organisation", 25),
    Facet("el", "material.elements", "Elements", 120, match_all=True),
)
_BY_PARAM = {f.param: f for f in FACETS}


@dataclass(slots=True)
class Query:
    """What the URL asks for."""

    q: str = ""
    advanced: bool = False
    index: str = "mdf"
    page: int = 1
    selected: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_request(cls, request: Request) -> Query:
        """Read the query parameters; bad ones raise InvalidInput naming the parameter."""
        params = request.query_params
        index = params.get("index") or "mdf"
        if index not in INDEXES:
            raise InvalidInput(f"index must be one of {', '.join(INDEXES)}", field="index")
        try:
            number = int(params.get("page") or 1)
        except ValueError:
            raise InvalidInput("page must be a whole number", field="page") from None
        if number < 1 or (number - 1) * PER_PAGE >= MAX_RESULTS:
            raise InvalidInput(f"page must be 1-{MAX_RESULTS // PER_PAGE}", field="page")
        selected = {
            f.param: list(dict.fromkeys(v for v in params.getlist(f.param) if v)) for f in FACETS
        }
        return cls(
            q=(params.get("q") or "").strip(),
            advanced=params.get("advanced") in ("1", "on", "true"),
            index=index,
            page=number,
            selected={k: v for k, v in selected.items() if v},
        )

    def params(self, **changes: Any) -> list[tuple[str, Any]]:
        """These parameters (with `changes`) as URL pairs; facet lists repeat their key."""
        base: dict[str, Any] = {
            "q": self.q,
            "advanced": "1" if self.advanced else "",
            "index": "" if self.index == "mdf" else self.index,
            **self.selected,
            "page": "" if self.page == 1 else self.page,
        }
        base.update(changes)
        return list(base.items())

    def toggle(self, param: str, value: str) -> list[tuple[str, Any]]:
        """The URL pairs with `value` added to or removed from facet `param` (back to page 1)."""
        current = list(self.selected.get(param, []))
        if value in current:
            current.remove(value)
        else:
            current.append(value)
        return self.params(**{param: current, "page": ""})

    def filters(self) -> list[GFilter]:
        """The Globus filters of the selected facet values."""
        out = []
        for param, values in self.selected.items():
            facet = _BY_PARAM[param]
            kind = "match_all" if facet.match_all else "match_any"
            out.append(GFilter(type=kind, field_name=facet.field_name, values=values))
        return out

    def request(self, *, facets: bool = True) -> GSearchRequest:
        """The search request for this page."""
        return GSearchRequest(
            q=self.q,
            advanced=self.advanced,
            limit=PER_PAGE,
            offset=(self.page - 1) * PER_PAGE,
            filters=self.filters(),
            facets=[GFacet(name=f.param, field_name=f.field_name, size=f.size) for f in FACETS]
            if facets
            else [],
        )

    def forge_code(self, base_url: str) -> str:
        """The same search with the MDF client, mdf_forge."""
        lines = [
            "# pip install mdf-forge; point it at this hub:",
            f"#   export GLOBUS_SDK_SERVICE_URL_SEARCH={base_url.rstrip('/')}/",
            "from mdf_forge import Forge",
            "",
            f"mdf = Forge(index={self.index!r}, anonymous=True)",
        ]
        calls = {
            "source": "match_source_names",
            "type": "match_resource_types",
            "org": "match_organizations",
        }
        for param, values in self.selected.items():
            if param == "el":
                lines.append(f"mdf.match_elements({values!r})")
            elif param == "year":
                years = [int(v) for v in values if v.isdigit()]
                lines.append(f"mdf.match_years({years!r})")
            else:
                lines.append(f"mdf.{calls[param]}({values!r})")
        if self.q:
            extra = ", advanced=True" if self.advanced else ""
            lines.append(f"results = mdf.search({self.q!r}{extra})")
        else:
            lines.append("results = mdf.search()")
        return "\n".join(lines) + "\n"


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def summarize(subject: str, content: dict[str, Any]) -> dict[str, Any]:
    """What a result row shows: title, authors, year, source, elements, type and its link."""
    mdf = content.get("mdf") or {}
    dc = content.get("dc") or {}
    material = content.get("material") or {}
    kind = str(mdf.get("resource_type") or "record")
    title = (_first(dc.get("titles")) or {}).get("title") if dc.get("titles") else None
    title = title or mdf.get("title")  # records: set by Connect and on reindex
    if not title:
        name = (content.get("custom") or {}).get("name")
        formula = material.get("reduced_formula") or material.get("composition")
        files = content.get("files") or []
        title = formula or name or (files[0].get("filename") if files else None) or subject
        if name and formula and name != formula:
            title = f"{formula} ({name})"
    creators = [str(c.get("creatorName", "")) for c in dc.get("creators") or [] if c]
    link = (
        f"/datasets/{mdf['source_id']}"
        if kind == "dataset" and mdf.get("source_id")
        else f"/records/{subject}"
    )
    if external_url := (content.get("external") or {}).get("url"):
        link = str(external_url)  # a followed repository's dataset lives there, not here
    return {
        "subject": subject,
        "title": str(title),
        "authors": creators,
        "year": dc.get("publicationYear"),
        "source": mdf.get("source_name"),
        "source_id": mdf.get("source_id"),
        "elements": list(material.get("elements") or []),
        "type": kind,
        "link": link,
    }


def _results(page_: Page) -> list[dict[str, Any]]:
    return [summarize(h.subject, json.loads(h.source)) for h in page_.hits]


def _facets(page_: Page, query: Query) -> dict[str, list[dict[str, Any]]]:
    """Facet buckets by parameter, each with its toggle link; selected values always shown."""
    found: dict[str, dict[str, int]] = {
        r["name"]: {str(b["value"]): int(b["count"]) for b in r.get("buckets", [])}
        for r in page_.facets
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for facet in FACETS:
        counts = found.get(facet.param, {})
        for value in query.selected.get(facet.param, []):
            counts.setdefault(value, 0)
        items = sorted(counts.items(), key=lambda kv: kv[0] if facet.param == "year" else -kv[1])
        out[facet.param] = [
            {
                "value": value,
                "count": count,
                "selected": value in query.selected.get(facet.param, []),
                "href": query.toggle(facet.param, value),
            }
            for value, count in items
        ]
    return out


def run_search(services: Any, identity: Identity, query: Query) -> tuple[Page | None, str | None]:
    """The page of results, or the query error to show beside the search box."""
    search: SearchService = services.search
    try:
        return search.search(identity, query.index, query.request()), None
    except BadRequest as exc:
        if exc.field not in (None, "q"):
            raise
        return None, exc.detail


@router.get("/search")
def search_page(request: Request, session: CurrentSession, services: ServicesDep) -> Response:
    """Search with facets; every selection is in the URL."""
    query = Query.from_request(request)
    found, error = run_search(services, session.identity, query)
    total = found.total if found else 0
    pages = max(1, min(-(-total // PER_PAGE), MAX_RESULTS // PER_PAGE))
    facets = _facets(found, query) if found else {f.param: [] for f in FACETS}
    element_counts = {b["value"]: b["count"] for b in facets["el"]}
    context = {
        "query": query,
        "error": error,
        "total": total,
        "results": _results(found) if found else [],
        "facets": facets,
        "facet_defs": FACETS,
        "elements": table(element_counts),
        "selected_elements": set(query.selected.get("el", [])),
        "pages": pages,
        "forge": query.forge_code(services.settings.base_url),
        "export": query.params(page=""),
        "indexes": INDEXES,
    }
    return page(request, session, "search.html", context, status_code=400 if error else 200)


@router.get("/search/export.json")
def export(request: Request, session: CurrentSession, services: ServicesDep) -> Response:
    """Every result of this search (up to 10,000) as a JSON list of {subject, content}."""
    query = Query.from_request(request)
    identity = session.identity
    search: SearchService = services.search
    # Fail before streaming starts, so a bad query is a 4xx rather than a broken download.
    first = search.scroll(identity, query.index, _scroll(query, None))

    def body() -> Iterator[bytes]:
        yield b"["
        page_, sent = first, 0
        while True:
            for hit in page_.hits:
                prefix = b"," if sent else b""
                yield prefix + b'{"subject":' + json.dumps(hit.subject).encode()
                yield b',"content":' + hit.source.encode() + b"}\n"
                sent += 1
            if not page_.has_next or sent >= MAX_RESULTS or not page_.marker:
                break
            page_ = search.scroll(identity, query.index, _scroll(query, page_.marker))
        yield b"]\n"

    return StreamingResponse(
        body(),
        media_type="application/json",
        headers={"content-disposition": 'attachment; filename="matterhub-results.json"'},
    )


def _scroll(query: Query, marker: str | None) -> GScrollRequest:
    return GScrollRequest(
        q=query.q, advanced=query.advanced, limit=1000, marker=marker, filters=query.filters()
    )
