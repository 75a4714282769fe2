"""Running Forge queries on the hub: search, aggregate (scroll), facets, stats, show_fields."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from matterhub.client.errors import APIError
from matterhub.client.query import SEARCH_LIMIT, QueryBuilder, clean_query_string, search_body

if TYPE_CHECKING:
    from matterhub.client.client import Client

__all__ = ["SearchMethods", "get_path", "unwrap_gmeta"]


def unwrap_gmeta(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The `content` of every entry of a GSearchResult (both result format versions)."""
    out: list[dict[str, Any]] = []
    for item in result.get("gmeta", []):
        out.extend(item.get("content", []))
        out.extend(entry["content"] for entry in item.get("entries", []))
    return out


def get_path(record: Any, path: str) -> Any:
    """The value at a dotted path (`None` if absent); lists along the way are searched in order."""
    value = record
    for part in path.split("."):
        if isinstance(value, list):
            value = next((v[part] for v in value if isinstance(v, dict) and part in v), None)
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
        if value is None:
            return None
    return value


class SearchMethods(QueryBuilder):
    """Forge's execution methods, plus server-side `facets` and `stats`."""

    client: Client
    index: str
    index_uuid: str
    scroll_field: str

    def _index_path(self, route: str) -> str:
        return f"/v1/index/{self.index}/{route}"

    def _post_search(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.client._json(
            "POST", self._index_path("search"), json=body, idempotent=True
        )
        return result

    def _run(self, body: dict[str, Any], info: bool) -> Any:
        result = self._post_search(body)
        records = unwrap_gmeta(result)
        if not info:
            return records
        details: dict[str, Any] = {"total_query_matches": result.get("total")}
        for key, value in body.items():
            details.setdefault(key, value)
        details["query"] = details.pop("q")
        details.update(index_uuid=self.index_uuid, retries=0, errors=[])
        return records, details

    def search(
        self,
        q: str | None = None,
        advanced: bool = False,
        limit: int | None = None,
        info: bool = False,
        reset_query: bool = True,
    ) -> Any:
        """Run the built query (or `q`); up to 10,000 results, `(results, info)` with `info`."""
        if q is not None:
            if not clean_query_string(q or "("):
                raise ValueError("No query has been set.")
            body = search_body(q, advanced=bool(advanced), limit=limit, sort=[])
            return self._run(body, info)
        body = self._body(limit)
        try:
            return self._run(body, info)
        finally:
            if reset_query:
                self.reset_query()

    # -- everything: scroll ----------------------------------------------------------------
    def aggregate(
        self, q: str | None = None, scroll_size: int = SEARCH_LIMIT, reset_query: bool = True,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Every match, beyond 10,000: the hub's scroll API, or `mdf.scroll_id` windows."""
        scroll_field = kwargs.get("scroll_field", self.scroll_field)
        if q is not None:
            clone = type(self).__new__(type(self))
            QueryBuilder.__init__(clone)
            clone.client, clone.index, clone.index_uuid = self.client, self.index, self.index_uuid
            clone.scroll_field = scroll_field
            clone._q, clone._advanced = q, True
            return clone.aggregate(scroll_size=scroll_size, reset_query=reset_query)
        if not self.initialized:
            raise AttributeError("No query has been set.")
        if not self._advanced:
            warnings.warn("This query will be run in advanced mode.", RuntimeWarning, stacklevel=2)
            self._advanced = True
        if scroll_size <= 0:
            raise AttributeError("Scroll size must greater than zero")
        try:
            total = self.search(limit=0, info=True, reset_query=False)[1]["total_query_matches"]
            if total <= SEARCH_LIMIT:
                found: list[dict[str, Any]] = self.search(limit=SEARCH_LIMIT, reset_query=False)
                return found
            try:
                return self._scroll(min(scroll_size, SEARCH_LIMIT))
            except APIError as exc:
                if exc.status not in (404, 405):  # a hub without /scroll: Forge's windows
                    raise
                return self._windows(scroll_field, scroll_size, total)
        finally:
            if reset_query:
                self.reset_query()

    def _scroll(self, page_size: int) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"q": self.current_query(), "advanced": True, "limit": page_size}
        out: list[dict[str, Any]] = []
        while True:
            page: dict[str, Any] = self.client._json(
                "POST", self._index_path("scroll"), json=body, idempotent=True
            )
            out.extend(unwrap_gmeta(page))
            marker = page.get("marker")
            if not page.get("has_next_page") or not marker:
                return out
            body["marker"] = marker

    def _windows(self, field: str, size: int, total: int) -> list[dict[str, Any]]:
        # mdf_toolbox's fallback: slices of `field`, halved while a slice holds too many hits.
        out: list[dict[str, Any]] = []
        position = 0
        while len(out) < total:
            width = size
            while True:
                q = f"({self._q}) AND ({field}:>={position} AND {field}:<{position + width})"
                results, info = self.search(q=q, advanced=True, info=True)
                if info["total_query_matches"] <= len(results):
                    break
                shrunk = width * (len(results) // info["total_query_matches"])
                width = shrunk if shrunk > 1 else max(width // 2, 1)
            out.extend(results)
            position += width
        return out

    # -- server-side facets ----------------------------------------------------------------
    def _facet_body(self, facets: list[dict[str, Any]], filters: list[dict[str, Any]]) -> Any:
        query = self.current_query()
        body: dict[str, Any] = {"q": query, "limit": 0, "facets": facets, "filters": filters}
        body["advanced"] = self._advanced if query else True
        return body

    def facets(
        self,
        field: str,
        size: int = 10,
        *,
        kind: str = "terms",
        histogram_range: tuple[float, float] | None = None,
        date_interval: str | None = None,
        reset_query: bool = True,
    ) -> dict[Any, int]:
        """Counts of `field`'s values among the current query's matches (all when no query).

        `kind`: `terms` (top `size` values), `numeric_histogram` (keys `(from, to)`, needs
        `histogram_range`) or `date_histogram` (keys are labels such as `2019`).
        """
        facet: dict[str, Any] = {"name": field, "field_name": field, "type": kind, "size": size}
        if histogram_range is not None:
            facet["histogram_range"] = {"low": histogram_range[0], "high": histogram_range[1]}
        if date_interval is not None:
            facet["date_interval"] = date_interval
        try:
            result = self._post_search(self._facet_body([facet], []))
        finally:
            if reset_query:
                self.reset_query()
        counts: dict[Any, int] = {}
        for bucket in (result.get("facet_results") or [{}])[0].get("buckets", []):
            value = bucket["value"]
            key = (value["from"], value["to"]) if isinstance(value, dict) else value
            counts[key] = bucket["count"]
        return counts

    def stats(self, field: str, *, reset_query: bool = True) -> dict[str, Any]:
        """`count`, `sum`, `mean`, `min` and `max` of a numeric field over the current query."""
        facets = [
            {"name": "sum", "field_name": field, "type": "sum"},
            {"name": "avg", "field_name": field, "type": "avg"},
        ]
        exists = [{"type": "exists", "field_name": field}]
        try:
            body = self._facet_body(facets, exists)
            result = self._post_search(body)
            values = {f["name"]: f.get("value") for f in result.get("facet_results") or []}
            ends: list[Any] = []
            for order in ("asc", "desc"):
                page = self._post_search(
                    {
                        **body,
                        "limit": 1,
                        "facets": [],
                        "sort": [{"field_name": field, "order": order}],
                    }
                )
                hits = unwrap_gmeta(page)
                ends.append(get_path(hits[0], field) if hits else None)
        finally:
            if reset_query:
                self.reset_query()
        return {
            "field": field,
            "count": result.get("total", 0),
            "sum": values.get("sum"),
            "mean": values.get("avg"),
            "min": ends[0],
            "max": ends[1],
        }

    # -- schema ----------------------------------------------------------------------------
    def show_fields(self, block: str | None = None) -> dict[str, str]:
        """`{field: type}` of the index (`block="top"`: top-level blocks; `"mdf"`: one block)."""
        mapping: dict[str, str] = self.client._json("GET", f"/beta/index/{self.index}/mapping")[
            "mappings"
        ]
        if block is None:
            return mapping
        if block == "top":
            return {key.split(".")[0]: "object" for key in mapping}
        return {key: value for key, value in mapping.items() if key.startswith(block)}
