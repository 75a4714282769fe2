"""Translate the query tree and Globus filters into tantivy queries.

Index layout this relies on (built in `tantivy.py`):
  all  catch-all text of every string and number      t   content, default tokenizer (positions)
  r    content, raw tokenizer, fast (exact/range/facet) kv  `path\\x1ftoken` keywords (wildcards)
"""

from __future__ import annotations

import decimal
import fnmatch
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import tantivy
from tantivy import Occur as TOccur
from tantivy import Query

from matterhub.core.errors import BadRequest
from matterhub.core.search import GFilter
from matterhub.search import tree as qt
from matterhub.search.documents import tokenize
from matterhub.search.parser import wildcard_regex

__all__ = ["Translator"]

_PATH = re.compile(r"^(?:[A-Za-z0-9_@$\-]|\\\.)+(?:\.(?:[A-Za-z0-9_@$\-]|\\\.)+)*$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OCCUR = {
    qt.Occur.MUST: TOccur.Must,
    qt.Occur.SHOULD: TOccur.Should,
    qt.Occur.MUST_NOT: TOccur.MustNot,
}


def _any(queries: list[Query]) -> Query:
    if not queries:
        return Query.empty_query()
    if len(queries) == 1:
        return queries[0]
    return Query.boolean_query([(TOccur.Should, q) for q in queries])


def _all(queries: list[Query]) -> Query:
    if len(queries) == 1:
        return queries[0]
    return Query.boolean_query([(TOccur.Must, q) for q in queries])


class Translator:
    """Turns tree nodes and filters into tantivy `Query` objects for one index."""

    def __init__(
        self,
        index: tantivy.Index,
        fields: Callable[[], Mapping[str, set[str]]],
    ) -> None:
        self._index = index
        self._schema = index.schema
        self._fields = fields

    # fields ----------------------------------------------------------------------------------

    def paths(self, field: str, *, what: str = "q") -> list[str]:
        """The concrete JSON paths a field names (`book.*` expands over the known ones)."""
        if "*" in field:
            pattern = field.replace("\\*", "*")
            return sorted(p for p in self._fields() if fnmatch.fnmatchcase(p, pattern))
        if not _PATH.match(field):
            raise BadRequest(f"{field!r} is not a field name", field=what)
        return [field]

    def _per_path(self, field: str | None, build: Callable[[str], Query]) -> Query:
        assert field is not None
        return _any([build(path) for path in self.paths(field)])

    # tree ------------------------------------------------------------------------------------

    def node(self, node: qt.Node) -> Query:
        """The tantivy query for one tree node."""
        match node:
            case qt.MatchAll():
                return Query.all_query()
            case qt.Bool(clauses=clauses):
                subs = [(_OCCUR[occur], self.node(child)) for occur, child in clauses]
                if all(occ == TOccur.MustNot for occ, _ in subs):
                    # A pure negation matches everything else, as Elasticsearch does.
                    subs.insert(0, (TOccur.Must, Query.all_query()))
                return Query.boolean_query(subs)
            case qt.Boost(query=inner, factor=factor):
                return Query.boost_query(self.node(inner), factor)
            case qt.Term(field=None, text=text) | qt.Phrase(field=None, text=text, slop=0):
                return self._text("all", text, 0)
            case qt.Phrase(field=None, text=text, slop=slop):
                return self._text("all", text, slop)
            case qt.Term(field=field, text=text):
                return self._per_path(field, lambda p: self._field_value(p, text))
            case qt.Phrase(field=field, text=text, slop=slop):
                return self._per_path(field, lambda p: self._text(f"t.{p}", text, slop, raw_path=p))
            case qt.Fuzzy(field=field, text=text, distance=distance):
                return self._fuzzy(field, text, distance)
            case qt.Wildcard(field=field, pattern=pattern):
                return self._wildcard(field, pattern)
            case qt.Regex(field=field, pattern=pattern):
                return self._regex(field, pattern)
            case qt.Exists(field=field):
                return self._per_path(
                    field, lambda p: Query.exists_query(f"r.{p}", json_subpaths=True)
                )
            case qt.Range():
                return self._per_path(node.field, lambda p: self._range(p, node))
        raise AssertionError(f"unknown node {node!r}")

    def _text(self, field: str, text: str, slop: int, *, raw_path: str | None = None) -> Query:
        tokens = tokenize(text)
        if not tokens:
            # Nothing analysable (e.g. punctuation): fall back to the exact value.
            if raw_path is None:
                return Query.empty_query()
            return Query.term_query(self._schema, f"r.{raw_path}", text)
        if len(tokens) == 1:
            return Query.term_query(self._schema, field, tokens[0])
        words: list[str | tuple[int, str]] = list(tokens)
        return Query.phrase_query(self._schema, field, words, slop)

    def _field_value(self, path: str, text: str) -> Query:
        """`field:value`: the analysed text, or the number / boolean it spells."""
        options = [self._text(f"t.{path}", text, 0, raw_path=path)]
        options.extend(self._typed_terms(path, text))
        return _any(options)

    def _typed_terms(self, path: str, value: Any) -> list[Query]:
        out: list[Query] = []
        text = str(value)
        if isinstance(value, bool) or text in ("true", "false"):
            out.append(Query.term_query(self._schema, f"r.{path}", text == "true" or value is True))
        elif isinstance(value, int | float) or _NUMBER.match(text):
            number = float(text)
            out.append(Query.term_query(self._schema, f"r.{path}", number))
            if number.is_integer() and abs(number) < 2**63:
                out.append(Query.term_query(self._schema, f"r.{path}", int(number)))
        return out

    def _fuzzy(self, field: str | None, text: str, distance: int) -> Query:
        tokens = tokenize(text) or [text.lower()]

        def build(target: str) -> Query:
            return _all(
                [Query.fuzzy_term_query(self._schema, target, t, distance, True) for t in tokens]
            )

        if field is None:
            return build("all")
        return self._per_path(field, lambda p: build(f"t.{p}"))

    def _wildcard(self, field: str | None, pattern: str) -> Query:
        regex, prefix = wildcard_regex(pattern.lower())
        if field is None:
            if prefix is not None:
                return Query.fuzzy_term_query(self._schema, "all", prefix, 0, True, True)
            return Query.regex_query(self._schema, "all", regex)

        def build(path: str) -> Query:
            if prefix is not None:
                return Query.fuzzy_term_query(self._schema, f"t.{path}", prefix, 0, True, True)
            return Query.regex_query(self._schema, "kv", _kv_path(path) + "\x1f" + regex)

        return self._per_path(field, build)

    def _regex(self, field: str | None, pattern: str) -> Query:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise BadRequest(f"invalid regular expression /{pattern}/: {exc}", field="q") from None
        if field is None:
            return Query.regex_query(self._schema, "all", pattern)
        return self._per_path(
            field, lambda p: Query.regex_query(self._schema, "kv", _kv_path(p) + "\x1f" + pattern)
        )

    # ranges ----------------------------------------------------------------------------------

    def _range(self, path: str, node: qt.Range) -> Query:
        low, high = node.low, node.high
        if low is None and high is None:
            return Query.exists_query(f"r.{path}", json_subpaths=False)
        kinds = {_bound_kind(b) for b in (low, high) if b is not None}
        if "date" in kinds:
            # Full timestamps are indexed as dates; date-only strings stay text. Ask for both.
            return _any(
                [
                    self._parsed_range(path, _as_timestamp(low), _as_timestamp(high), node),
                    self._parsed_range(path, low, high, node),
                ]
            )
        if kinds == {"number"} and low is not None and high is not None:
            low_whole, high_whole = float(low).is_integer(), float(high).is_integer()
            if low_whole != high_whole:
                # tantivy 0.27 panics on a two-sided range with one whole and one fractional bound
                # over a JSON number column (it stores 2.0 as an integer). The whole bound is moved
                # to the adjacent double with the inclusivity flipped, which selects exactly the
                # same values: x >= 1 is x > 0.9999999999999999.
                if low_whole:
                    low = _positional(
                        math.nextafter(float(low), -math.inf if node.include_low else math.inf)
                    )
                    node = qt.Range(path, low, high, not node.include_low, node.include_high)
                else:
                    up = math.inf if node.include_high else -math.inf
                    high = _positional(math.nextafter(float(high), up))
                    node = qt.Range(path, low, high, node.include_low, not node.include_high)
        return self._parsed_range(path, low, high, node)

    def _parsed_range(self, path: str, low: str | None, high: str | None, node: qt.Range) -> Query:
        # Ranges on JSON paths exist only through tantivy's parser (on the fast field `r`).
        if any(b is not None and not _safe_bound(b) for b in (low, high)):
            raise BadRequest(f"unsupported range bound in {path}:[{low} TO {high}]", field="q")
        text = "r.{}:{}{} TO {}{}".format(
            path,
            "[" if node.include_low else "{",
            low if low is not None else "*",
            high if high is not None else "*",
            "]" if node.include_high else "}",
        )
        try:
            return self._index.parse_query(text, [])
        except ValueError as exc:
            raise BadRequest(f"cannot search {path} by range: {exc}", field="q") from None

    # filters ---------------------------------------------------------------------------------

    def filter(self, flt: GFilter, *, position: int) -> Query:
        """The query for one Globus filter."""
        where = f"filters[{position}]"
        if flt.type == "not":
            if flt.filter is None:
                raise BadRequest("a 'not' filter needs a nested 'filter'", field=f"{where}.filter")
            inner = self.filter(flt.filter, position=position)
            return Query.boolean_query([(TOccur.Must, Query.all_query()), (TOccur.MustNot, inner)])
        if not flt.field_name:
            raise BadRequest("this filter needs field_name", field=f"{where}.field_name")
        field = flt.field_name
        if flt.type == "exists":
            return self.node(qt.Exists(field))
        if flt.type == "range":
            kinds = self._fields().get(field, set())
            if kinds and kinds <= {"string", "boolean"}:
                held = ", ".join(sorted(kinds))
                raise BadRequest(
                    f"a range filter needs numbers or dates; {field} holds {held}",
                    field=f"{where}.field_name",
                )
            ranges = []
            for i, value in enumerate(flt.values):
                if not isinstance(value, dict):
                    raise BadRequest(
                        "range values are {from, to} objects", field=f"{where}.values[{i}]"
                    )
                low = value.get("from", value.get("low"))
                high = value.get("to", value.get("high"))
                ranges.append(
                    self.node(
                        qt.Range(
                            field,
                            None if low in (None, "*") else str(low),
                            None if high in (None, "*") else str(high),
                        )
                    )
                )
            return _any(ranges)
        if not flt.values:
            raise BadRequest("this filter needs at least one value", field=f"{where}.values")
        exact = [_any([self._exact(p, v) for p in self.paths(field)]) for v in flt.values]
        return _any(exact) if flt.type == "match_any" else _all(exact)

    def _exact(self, path: str, value: Any) -> Query:
        options = self._typed_terms(path, value)
        if isinstance(value, str):
            options.append(Query.term_query(self._schema, f"r.{path}", value))
        return _any(options)

    def principals(self, principals: Iterable[str]) -> Query:
        """Entries visible to any of these principals."""
        return Query.term_set_query(self._schema, "visible_to", sorted(principals))


def _kv_path(path: str) -> str:
    """A path as the keyword field spells it (no spaces), escaped for a regex."""
    return re.escape(path.replace(" ", "\x1e"))


def _bound_kind(bound: str) -> str:
    if _NUMBER.match(bound):
        return "number"
    if _DATE_ONLY.match(bound) or ("T" in bound and bound[:4].isdigit()):
        return "date"
    return "string"


def _as_timestamp(bound: str | None) -> str | None:
    if bound is None or not _DATE_ONLY.match(bound):
        return bound
    return f"{bound}T00:00:00Z"


def _positional(value: float) -> str:
    """A finite double written without an exponent (tantivy's query grammar has none): the
    shortest digits that read back as the same double, e.g. -5e-324 → "-0.000…0005"."""
    text = format(decimal.Decimal(repr(value)), "f")
    return text if "." in text else text + ".0"


def _safe_bound(bound: str) -> bool:
    return (
        bool(bound)
        and not any(ch in bound for ch in ' "[]{}()\\')
        and math.isfinite(float(bound) if _NUMBER.match(bound) else 0.0)
    )
