"""Forge's query builder, string for string: grouping, auto-quoting and cleaning as mdf_toolbox.

The rules reproduce mdf_toolbox 0.7.1 (`SearchHelper`) so notebooks keep their exact queries;
tests/client/test_query_differential.py checks it against the real package.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

__all__ = [
    "BASIC_LIMIT",
    "SEARCH_LIMIT",
    "QueryBuilder",
    "clean_query_string",
    "quote_value",
    "search_body",
]

SEARCH_LIMIT = 10_000  # Globus Search's cap on one page
BASIC_LIMIT = 10  # Forge's default limit for free-text (basic) searches
_OPERATORS = ("AND", "OR", "NOT")
_QUOTE_TRIGGERS = (" ", "\t", "\n", "'", ".", "?", ":", "^")
_NO_QUOTE = ("[", "]", "{", "}")
_START = "("


def clean_query_string(q: str) -> str:
    """Drop empty groups and dangling operators, then balance parentheses."""
    q = q.replace("()", "").strip()
    if q.endswith("("):
        q = q[:-1].strip()
    if q[-3:] in ("AND", "NOT"):
        q = q[:-3]
    elif q[-2:] == "OR":
        q = q[:-2]
    opened, closed = q.count("("), q.count(")")
    if opened > closed:
        q += ")" * (opened - closed)
    elif closed > opened:
        q = "(" * (closed - opened) + q
    return q.strip()


def quote_value(value: str) -> str:
    """Wrap in double quotes when the value has a space-like or special character (not ranges)."""
    if '"' in value or any(c in value for c in _NO_QUOTE):
        return value
    if any(c in value for c in _QUOTE_TRIGGERS):
        return f'"{value}"'
    return value


def search_body(
    q: str, *, advanced: bool, limit: int | None, sort: list[dict[str, str]]
) -> dict[str, Any]:
    """The GSearchRequest that mdf_toolbox posts: cleaned `q`, defaults dropped, limit clamped."""
    if q == _START:
        raise ValueError("No query specified.")
    if limit is None:
        limit = SEARCH_LIMIT if advanced else BASIC_LIMIT
    elif limit > SEARCH_LIMIT:
        warnings.warn(
            f"Reduced result limit from {limit} to the Search maximum: {SEARCH_LIMIT}",
            RuntimeWarning,
            stacklevel=3,
        )
        limit = SEARCH_LIMIT
    body: dict[str, Any] = {"q": clean_query_string(q)}
    if advanced:
        body["advanced"] = True
    body["limit"] = limit
    if sort:
        body["sort"] = [dict(s) for s in sort]
    return body


class QueryBuilder:
    """The chainable part of Forge: every helper appends to one query string."""

    def __init__(self) -> None:
        self._q = _START
        self._advanced = False
        self._limit: int | None = None
        self._sort: list[dict[str, str]] = []

    # -- state -----------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        """Whether any term has been added."""
        return bool(clean_query_string(self._q))

    @property
    def advanced(self) -> bool:
        """Whether the query runs in advanced (query_string) mode; field helpers turn it on."""
        return self._advanced

    @advanced.setter
    def advanced(self, value: bool) -> None:
        self._advanced = bool(value)

    def current_query(self) -> str:
        """The query string built so far, cleaned."""
        return clean_query_string(self._q)

    def reset_query(self) -> None:
        """Forget the query, its mode, limit and sort."""
        self._q = _START
        self._advanced = False
        self._limit = None
        self._sort = []

    def _body(self, limit: int | None = None) -> dict[str, Any]:
        if not self.initialized:
            raise ValueError("No query has been set.")
        if limit is not None:
            self._limit = limit  # as mdf_toolbox: a given limit sticks to the kept query
        return search_body(self._q, advanced=self._advanced, limit=self._limit, sort=self._sort)

    # -- low-level pieces ------------------------------------------------------------------
    def _join(self, op: str, new_group: bool) -> None:
        if op not in _OPERATORS:
            raise ValueError(f"Error: '{op}' is not a valid operator.")
        if op != "NOT" and not self.initialized:
            raise ValueError("You must add a search term before adding an operator.")
        self._q += f") {op} (" if new_group else f" {op} "

    def _field(self, field: Any, value: Any) -> None:
        field, value = str(field), quote_value(str(value))
        if field and value:
            self._q += f"{field}:{value}"
            self._advanced = True

    def _connect(self, required: bool, new_group: bool) -> None:
        if self.initialized:
            self._join("AND" if required else "OR", new_group)

    # -- Forge / SearchHelper builders ------------------------------------------------------
    def match_term(self, value: Any, required: bool = True, new_group: bool = False) -> Any:
        """A free-text term (basic mode); don't mix with field helpers."""
        self._connect(required, new_group)
        term = str(value)
        if term:
            self._q += term
        return self

    def match_field(
        self, field: Any, value: Any, required: bool = True, new_group: bool = False
    ) -> Any:
        """`field:value` (quoted when needed), joined with AND (required) or OR; sets advanced."""
        self._connect(required, new_group)
        self._field(field, value)
        return self

    def exclude_field(self, field: Any, value: Any, new_group: bool = False) -> Any:
        """`NOT field:value`, joined with AND."""
        if not field and not value:
            return self
        if self.initialized:
            self._join("AND", new_group)
        self._join("NOT", False)
        self._field(field, value)
        return self

    def match_exists(self, field: Any, required: bool = True, new_group: bool = False) -> Any:
        """`field:*`."""
        return self.match_field(field, "*", required=required, new_group=new_group)

    def match_not_exists(self, field: Any, new_group: bool = False) -> Any:
        """`NOT field:*`."""
        return self.exclude_field(field, "*", new_group=new_group)

    @staticmethod
    def _range(start: Any, stop: Any, inclusive: bool) -> str:
        return f"[{start} TO {stop}]" if inclusive else f"{{{start} TO {stop}}}"

    def match_range(
        self,
        field: Any,
        start: Any = None,
        stop: Any = None,
        inclusive: bool = True,
        required: bool = True,
        new_group: bool = False,
    ) -> Any:
        """`field:[start TO stop]` (or `{…}` when exclusive); `None` is `*`, `*..*` is exists."""
        start = "*" if start is None else start
        stop = "*" if stop is None else stop
        if start == "*" and stop == "*":
            return self.match_exists(field, required=required, new_group=new_group)
        value = self._range(start, stop, inclusive)
        return self.match_field(field, value, required=required, new_group=new_group)

    def exclude_range(
        self,
        field: Any,
        start: Any = "*",
        stop: Any = "*",
        inclusive: bool = True,
        new_group: bool = False,
    ) -> Any:
        """`NOT field:[start TO stop]`; `*..*` is not-exists."""
        start = "*" if start is None else start
        stop = "*" if stop is None else stop
        if start == "*" and stop == "*":
            return self.match_not_exists(field, new_group=new_group)
        return self.exclude_field(field, self._range(start, stop, inclusive), new_group=new_group)

    def exclusive_match(self, field: Any, value: Any) -> Any:
        """Exactly these values and nothing else in `field` (Forge's chained-range trick).

        Sorts a given list in place and pairs each value with the one before it the way
        mdf_toolbox does (its `value[index-1]` is kept, so the strings stay identical).
        """
        values = [value] if isinstance(value, str) else value
        values.sort()
        self.exclude_range(field, "*", values[0], inclusive=False, new_group=True)
        self.match_range(field, values[0], values[0])
        for position, val in enumerate(values[1:]):
            self.exclude_range(field, values[position - 1], val, inclusive=False)
            self.match_range(field, val, val)
        self.exclude_range(field, values[-1], "*", inclusive=False)
        return self

    def add_sort(self, field: Any, ascending: bool = True) -> Any:
        """Sort by `field`; later sorts break ties of earlier ones."""
        if field and str(field):
            self._sort.append({"field_name": str(field), "order": "asc" if ascending else "desc"})
        return self

    # -- Forge's field helpers --------------------------------------------------------------
    def _group(self, field: str, values: Iterable[Any], *, match_all: bool = False) -> Any:
        items = list(values)
        self.match_field(field, items[0], required=True, new_group=True)
        for item in items[1:]:
            self.match_field(field, item, required=match_all, new_group=False)
        return self
