"""OPTIMADE filters → MatterHub's query tree (`search.tree`), so they run in the one search engine.

The `optimade` package's grammar parses (`LarkParser`, API 1.2); `FilterTransformer` turns the
lark tree into tree nodes over the index paths of `fields.py`. Everything is decided here, before
the search runs: unknown properties (400), properties or operators the index cannot answer (501),
values of the wrong type (400). Filters are bounded before the parser sees them: bytes, nesting
of parentheses and the number of comparisons.

How operators map:
  =, !=, <, <=, >, >=     `Range` on the raw value (exact, case-sensitive; `!=` also needs a value)
  CONTAINS, STARTS, ENDS  `Wildcard` on the value's words (case-insensitive, within a word)
  HAS / ALL / ANY / ONLY  `Range` per list item; ONLY (elements) excludes every other element
  LENGTH                  the list's count field (`elements` → `nelements`)
  IS KNOWN / UNKNOWN      `Exists`
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from lark import Token, Transformer, Tree, v_args
from lark.exceptions import VisitError

from matterhub.interop.optimade.fields import CHEMICAL_SYMBOLS, Field
from matterhub.search import tree as qt

__all__ = [
    "NOTHING",
    "FilterError",
    "FilterLimits",
    "FilterTransformer",
    "parse_filter",
]

NOTHING: qt.Node = qt.Bool(((qt.Occur.MUST_NOT, qt.MatchAll()),))
"""A query matching no entry (everything, minus everything)."""

# Values the raw-field range can take as they are; others match by words (see `_exact`).
_SAFE = re.compile(r"^[A-Za-z0-9_.+\-]{1,200}$")
_WORD = re.compile(r"^[A-Za-z0-9_]{1,40}$")
_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?$"
)
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "!=": "!="}
_PROVIDER = re.compile(r"^_([a-z0-9]+)_")
_ZIP = "set comparisons of zipped properties (a:b HAS …) are not supported"


class FilterError(Exception):
    """A filter the hub refuses: `status` 400 (bad filter) or 501 (not supported here)."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


@dataclass(frozen=True, slots=True)
class FilterLimits:
    """How large a filter may be; checked before parsing (bytes, depth) and after (comparisons)."""

    max_bytes: int = 4096
    max_depth: int = 30
    max_comparisons: int = 256


@dataclass(frozen=True, slots=True)
class _Property:
    name: str
    field: Field | None  # None: a property of another provider (unknown: matches nothing)


@dataclass(frozen=True, slots=True)
class _Op:
    kind: str  # compare, known, fuzzy, has, has_all, has_any, has_only, length, zip
    op: str = ""
    value: Any = None


def _unquote(token: str) -> str:
    # OPTIMADE strings escape only `"` and `\`.
    return re.sub(r"\\(.)", r"\1", token[1:-1], flags=re.DOTALL)


def _check_shape(text: str, limits: FilterLimits) -> None:
    """Bytes and nesting, before the (Earley) parser runs: its cost grows with the length."""
    size = len(text.encode())
    if size > limits.max_bytes:
        raise FilterError(f"the filter is {size} bytes long; the limit is {limits.max_bytes}")
    depth = 0
    quoted = escaped = False
    for position, char in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "(":
            depth += 1
            if depth > limits.max_depth:
                raise FilterError(
                    f"the filter nests parentheses deeper than {limits.max_depth} "
                    f"(at position {position})"
                )
        elif char == ")":
            depth -= 1


@v_args(inline=False)
class FilterTransformer(Transformer[Token, qt.Node]):
    """A lark tree of OPTIMADE's grammar → a `search.tree` node over the index paths."""

    def __init__(
        self, fields: dict[str, Field], *, prefix: str, limits: FilterLimits | None = None
    ) -> None:
        super().__init__()
        self._fields = fields
        self._prefix = prefix
        self._limits = limits or FilterLimits()
        self.comparisons = 0
        self.warnings: list[str] = []

    # structure ---------------------------------------------------------------------------------

    def filter(self, children: list[Any]) -> qt.Node:
        return children[0] if children else qt.MatchAll()

    def expression(self, children: list[qt.Node]) -> qt.Node:
        if len(children) == 1:
            return children[0]
        return qt.Bool(tuple((qt.Occur.SHOULD, c) for c in children))

    def expression_clause(self, children: list[qt.Node]) -> qt.Node:
        if len(children) == 1:
            return children[0]
        return qt.Bool(tuple((qt.Occur.MUST, c) for c in children))

    def expression_phrase(self, children: list[Any]) -> qt.Node:
        if len(children) == 2:  # NOT, then the phrase
            return qt.Bool(((qt.Occur.MUST_NOT, children[1]),))
        node: qt.Node = children[0]
        return node

    def comparison(self, children: list[qt.Node]) -> qt.Node:
        self.comparisons += 1
        if self.comparisons > self._limits.max_comparisons:
            raise FilterError(
                f"the filter has more than {self._limits.max_comparisons} comparisons"
            )
        return children[0]

    # values ------------------------------------------------------------------------------------

    def property(self, children: list[Token]) -> _Property:
        name = ".".join(str(c) for c in children)
        if "." in name:
            raise FilterError(f"nested properties such as {name!r} are not supported", status=501)
        known = self._fields.get(name)
        if known is not None:
            return _Property(name, known)
        provider = _PROVIDER.match(name)
        if provider is not None and provider.group(1) != self._prefix:
            self.warnings.append(f"{name!r} belongs to another provider; it is treated as unknown")
            return _Property(name, None)
        raise FilterError(f"unknown property {name!r}")

    def string(self, children: list[Token]) -> str:
        return _unquote(str(children[0]))

    def number(self, children: list[Token]) -> int | float:
        text = str(children[0])
        try:
            return int(text)
        except ValueError:
            return float(text)

    def signed_int(self, children: list[Token]) -> int:
        return int(str(children[0]))

    def bool(self, children: list[Token]) -> Any:
        raise FilterError("boolean values are not supported: no property here is one", status=501)

    def value(self, children: list[Any]) -> Any:
        return children[0]

    def constant(self, children: list[Any]) -> Any:
        return children[0]

    def non_string_value(self, children: list[Any]) -> Any:
        return children[0]

    def not_implemented_string(self, children: list[Any]) -> Any:
        raise FilterError("comparing a constant string with a constant is not supported", 501)

    def value_list(self, children: list[Any]) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        op = "="
        for child in children:
            if isinstance(child, Token) and child.type == "OPERATOR":
                op = str(child)
                continue
            out.append((op, child))
            op = "="
        return out

    # right-hand sides --------------------------------------------------------------------------

    def value_op_rhs(self, children: list[Any]) -> _Op:
        return _Op("compare", str(children[0]), children[1])

    def known_op_rhs(self, children: list[Token]) -> _Op:
        return _Op("known", value=str(children[1]) == "KNOWN")

    def fuzzy_string_op_rhs(self, children: list[Any]) -> _Op:
        return _Op("fuzzy", str(children[0]), children[-1])

    def set_op_rhs(self, children: list[Any]) -> _Op:
        rest = children[1:]
        if isinstance(rest[0], Token) and rest[0].type in ("ALL", "ANY", "ONLY"):
            return _Op(f"has_{str(rest[0]).lower()}", value=rest[1])
        if isinstance(rest[0], Token) and rest[0].type == "OPERATOR":
            return _Op("has", str(rest[0]), rest[1])
        return _Op("has", "=", rest[0])

    def length_op_rhs(self, children: list[Any]) -> _Op:
        op = str(children[1]) if len(children) == 3 else "="
        return _Op("length", op, children[-1])

    def set_zip_op_rhs(self, children: list[Any]) -> _Op:
        raise FilterError(_ZIP, status=501)

    def property_zip_addon(self, children: list[Any]) -> Any:
        raise FilterError(_ZIP, status=501)

    # comparisons -------------------------------------------------------------------------------

    def property_first_comparison(self, children: list[Any]) -> qt.Node:
        prop, rhs = children
        if isinstance(rhs.value, _Property):
            raise FilterError("comparing two properties is not supported", status=501)
        if isinstance(rhs.value, list) and any(isinstance(v, _Property) for _, v in rhs.value):
            raise FilterError("properties inside value lists are not supported", status=501)
        return self._compare(prop, rhs)

    def constant_first_comparison(self, children: list[Any]) -> qt.Node:
        constant, op, other = children[0], str(children[1]), children[2]
        if isinstance(other, _Property):
            return self._compare(other, _Op("compare", _FLIP[op], constant))
        if isinstance(constant, str) or isinstance(other, str):
            raise FilterError("comparing constants of different types", status=400)
        return qt.MatchAll() if _holds(constant, op, other) else NOTHING

    def _compare(self, prop: _Property, rhs: _Op) -> qt.Node:
        field = prop.field
        if field is None:  # another provider's property: unknown, so only IS UNKNOWN holds
            return qt.MatchAll() if rhs.kind == "known" and not rhs.value else NOTHING
        if field.constant is not None:
            return self._constant(prop.name, field, rhs)
        if field.path is None:
            raise FilterError(
                f"{prop.name} is returned but cannot be used in filters here", status=501
            )
        if rhs.kind == "known":
            exists: qt.Node = qt.Exists(field.path)
            return exists if rhs.value else qt.Bool(((qt.Occur.MUST_NOT, exists),))
        if rhs.kind == "compare":
            if field.type == "list":
                raise FilterError(f"{prop.name} is a list: compare it with HAS, not {rhs.op}")
            return self._value(prop.name, field.type, field.path, rhs.op, rhs.value)
        if rhs.kind == "fuzzy":
            if field.type != "string":
                raise FilterError(f"{rhs.op} needs a string property; {prop.name} is not one")
            if not isinstance(rhs.value, str):
                raise FilterError(f"{rhs.op} needs a string value")
            return _fuzzy(field.path, rhs.op, rhs.value)
        if field.type != "list":
            raise FilterError(f"{prop.name} is not a list: HAS and LENGTH apply to lists")
        item = field.item or "string"
        if rhs.kind == "has":
            return self._value(prop.name, item, field.path, rhs.op, rhs.value)
        if rhs.kind in ("has_all", "has_any"):
            occur = qt.Occur.MUST if rhs.kind == "has_all" else qt.Occur.SHOULD
            parts = [self._value(prop.name, item, field.path, op, v) for op, v in rhs.value]
            return parts[0] if len(parts) == 1 else qt.Bool(tuple((occur, p) for p in parts))
        if rhs.kind == "has_only":
            return self._only(prop.name, field, rhs.value)
        if rhs.kind == "length":
            return self._length(prop.name, field, rhs.op, rhs.value)
        raise FilterError(f"unsupported operation on {prop.name}", status=501)  # pragma: no cover

    def _value(self, name: str, kind: str, path: str, op: str, value: Any) -> qt.Node:
        """`path op value` on one stored value (a scalar, or one item of a list)."""
        if kind in ("integer", "float"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FilterError(f"{name} holds numbers; {value!r} is not one")
            return _range(path, op, repr(value) if isinstance(value, float) else str(value))
        if not isinstance(value, str):
            raise FilterError(f"{name} holds {kind}s; {value!r} is not a string")
        if kind == "timestamp":
            if not _TIMESTAMP.match(value):
                raise FilterError(f"{value!r} is not an RFC 3339 timestamp")
            return _range(path, op, value)
        if _SAFE.match(value):
            return _range(path, op, value)
        # A value with spaces or punctuation cannot be a range bound; equality matches its words.
        if op == "=":
            return qt.Phrase(path, value)
        if op == "!=":
            return _known_and_not(path, qt.Phrase(path, value))
        raise FilterError(f"{op} is not supported on a value like {value!r}", status=501)

    def _constant(self, name: str, field: Field, rhs: _Op) -> qt.Node:
        if rhs.kind == "known":
            return qt.MatchAll() if rhs.value else NOTHING
        if rhs.kind == "compare" and rhs.op in ("=", "!=") and isinstance(rhs.value, str):
            same = rhs.value == field.constant
            return qt.MatchAll() if same == (rhs.op == "=") else NOTHING
        raise FilterError(f"only =, != and IS KNOWN apply to {name}", status=501)

    def _only(self, name: str, field: Field, values: list[tuple[str, Any]]) -> qt.Node:
        if name != "elements" or field.path is None:
            raise FilterError(f"HAS ONLY is supported on elements, not on {name}", status=501)
        wanted = {v for op, v in values if op == "="}
        if len(wanted) != len(values) or not all(isinstance(v, str) for v in wanted):
            raise FilterError("HAS ONLY takes element symbols")
        others = [s for s in CHEMICAL_SYMBOLS if s not in wanted]
        path = field.path
        excluded = [(qt.Occur.MUST_NOT, _range(path, "=", s)) for s in others]
        return qt.Bool(((qt.Occur.MUST, qt.Exists(path)), *excluded))

    def _length(self, name: str, field: Field, op: str, value: Any) -> qt.Node:
        if isinstance(field.length, int):
            return qt.MatchAll() if _holds(field.length, op, value) else NOTHING
        if field.length is None:
            raise FilterError(f"LENGTH is not supported on {name}", status=501)
        return _range(field.length, op, str(value))


def _holds(left: Any, op: str, right: Any) -> bool:
    return bool(
        {
            "=": left == right,
            "!=": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[op]
    )


def _known_and_not(path: str, node: qt.Node) -> qt.Node:
    # OPTIMADE: a comparison with an unknown value is false, so `x != 1` needs x to be there.
    return qt.Bool(((qt.Occur.MUST, qt.Exists(path)), (qt.Occur.MUST_NOT, node)))


def _range(path: str, op: str, bound: str) -> qt.Node:
    if op == "=":
        return qt.Range(path, bound, bound)
    if op == "!=":
        return _known_and_not(path, qt.Range(path, bound, bound))
    if op in ("<", "<="):
        return qt.Range(path, None, bound, include_high=op == "<=")
    return qt.Range(path, bound, None, include_low=op == ">=")


def _fuzzy(path: str, op: str, value: str) -> qt.Node:
    if value == "":
        return qt.Exists(path)
    if _WORD.match(value):
        pattern = {"CONTAINS": f"*{value}*", "STARTS": f"{value}*", "ENDS": f"*{value}"}[op]
        return qt.Wildcard(path, pattern)
    if op == "CONTAINS":
        return qt.Phrase(path, value)
    raise FilterError(f"{op} is supported with a single word, not {value!r}", status=501)


# One parser per thread: the grammar compiles once per thread (~0.1 s) and parses never share
# state across the server's worker threads.
_LOCAL = threading.local()


def _parser() -> Any:
    parser = getattr(_LOCAL, "parser", None)
    if parser is None:
        from optimade.filterparser import LarkParser  # type: ignore[import-untyped]

        parser = _LOCAL.parser = LarkParser(version=(1, 2, 0))
    return parser


def parse_filter(
    text: str, fields: dict[str, Field], *, prefix: str, limits: FilterLimits | None = None
) -> tuple[qt.Node, list[str]]:
    """The query tree of an OPTIMADE filter and the warnings it raised; FilterError if refused."""
    limits = limits or FilterLimits()
    if not text.strip():
        return qt.MatchAll(), []
    _check_shape(text, limits)
    try:
        parsed: Tree[Token] = _parser().lark.parse(text)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FilterError(f"the filter is not valid OPTIMADE: {first}") from None
    transformer = FilterTransformer(fields, prefix=prefix, limits=limits)
    try:
        node = transformer.transform(parsed)
    except VisitError as exc:
        if isinstance(exc.orig_exc, FilterError):
            raise exc.orig_exc from None
        # A value the grammar allows but Python cannot hold (an integer past its digit limit).
        raise FilterError(f"the filter has a value that cannot be used: {exc.orig_exc}") from None
    return node, transformer.warnings
