"""Parse Elasticsearch `query_string` text (Globus "advanced" mode) into the query tree.

The grammar (`querystring.lark`) keeps clauses flat; `_combine` then applies Lucene's classic
rules, so `a OR b AND c` means "b and c required, a optional" exactly as Globus evaluates it.

Every query is bounded (`QueryLimits`): its length is checked before any parsing, its clause count
and parenthesis depth token by token while lark parses it, so a hostile query costs at most a few
milliseconds and the tree walkers below never recurse deeper than the depth limit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from matterhub.core.errors import BadRequest
from matterhub.core.search import GFilter
from matterhub.search.tree import (
    Bool,
    Boost,
    Exists,
    Fuzzy,
    MatchAll,
    Node,
    Occur,
    Phrase,
    Range,
    Regex,
    Term,
    Wildcard,
)

__all__ = [
    "QueryLimits",
    "QueryTooLarge",
    "parse_query",
    "parse_simple_query",
    "query_tree",
    "unescape",
    "wildcard_regex",
]

_ESCAPE = re.compile(r"\\(.)", re.S)
_WORD = re.compile(r'"[^"]*"|[^\s"]+')


# Tokens that open a clause: each term, phrase, regex, range, comparison and group counts once.
_CLAUSE_TOKENS = frozenset({"TERM", "PHRASE", "REGEX", "RANGE_OPEN", "COMPARE_OP", "LPAR"})


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """How large a query string may be (settings `max_query_bytes`, `…_clauses`, `…_depth`)."""

    max_bytes: int = 32 * 1024
    max_clauses: int = 1024
    max_depth: int = 30


DEFAULT_LIMITS = QueryLimits()


class QueryTooLarge(BadRequest):
    """A query over one of the limits; the message names the setting that sets it (400)."""

    code = "query_too_large"

    def __init__(self, what: str, limit: int, setting: str) -> None:
        super().__init__(
            f"{what}; the limit is {limit}, set by MATTERHUB_{setting.upper()}", field="q"
        )


def check_length(text: str, limits: QueryLimits = DEFAULT_LIMITS) -> None:
    """Refuse a query longer than the byte limit, before any work is spent on it."""
    # A character is 1-4 bytes: only count bytes when the characters alone are within the limit.
    limit = limits.max_bytes
    if len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit:
        raise QueryTooLarge(f"the query is longer than {limit} bytes", limit, "max_query_bytes")


@cache
def _parser() -> Lark:
    grammar = (Path(__file__).parent / "querystring.lark").read_text()
    return Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=False)


def unescape(text: str) -> str:
    """Drop query-syntax backslash escapes: `a\\:b` → `a:b`."""
    return _ESCAPE.sub(r"\1", text)


def wildcard_regex(raw: str) -> tuple[str, str | None]:
    """A still-escaped wildcard term as an anchored regex, plus its literal prefix for `abc*`."""
    out: list[str] = []
    literal: list[str] = []
    wildcards: list[int] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            out.append(re.escape(raw[i + 1]))
            literal.append(raw[i + 1])
            i += 2
            continue
        if ch in "*?":
            out.append(".*" if ch == "*" else ".")
            wildcards.append(i)
        else:
            out.append(re.escape(ch))
            literal.append(ch)
        i += 1
    is_prefix = wildcards == [len(raw) - 1] and raw.endswith("*") and bool(literal)
    return "".join(out), "".join(literal) if is_prefix else None


def _has_wildcard(raw: str) -> bool:
    escaped = False
    for ch in raw:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in "*?":
            return True
    return False


def _number(token: Token | None, default: float) -> float:
    return float(token) if token is not None else default


def _unquote(token: Token) -> str:
    return unescape(str(token)[1:-1]) if token.type == "PHRASE" else unescape(str(token))


class _Builder:
    """Walks lark's tree into our query tree, carrying the current default field."""

    def clauses(self, items: list[Tree[Token]], field: str | None) -> Node:
        combined: list[list[Occur | Node]] = []
        for clause in items:
            conj = modifier = None
            atom: Tree[Token] | None = None
            for child in clause.children:
                if isinstance(child, Tree) and child.data == "conj":
                    conj = str(child.children[0]).upper()
                elif isinstance(child, Tree) and child.data == "modifier":
                    modifier = str(child.children[0]).upper()
                elif isinstance(child, Tree):
                    atom = child
            assert atom is not None
            node = self.atom(atom, field)
            is_and = conj in ("AND", "&&")
            if combined and is_and and combined[-1][0] is not Occur.MUST_NOT:
                combined[-1][0] = Occur.MUST
            prohibited = modifier in ("-", "NOT", "!")
            required = modifier == "+" or (is_and and not prohibited)
            occur = Occur.MUST_NOT if prohibited else Occur.MUST if required else Occur.SHOULD
            combined.append([occur, node])
        if not combined:
            return MatchAll()
        if len(combined) == 1 and combined[0][0] is not Occur.MUST_NOT:
            only = combined[0][1]
            assert not isinstance(only, Occur)
            return only
        return Bool(tuple((occ, node) for occ, node in combined))  # type: ignore[misc]

    def atom(self, tree: Tree[Token], field: str | None) -> Node:
        if tree.data == "group":
            inner = [c for c in tree.children if isinstance(c, Tree) and c.data == "clause"]
            boost = [c for c in tree.children if isinstance(c, Tree) and c.data == "boost"]
            node = self.clauses(inner, field)
            return self._boost(node, boost[0] if boost else None)
        if tree.data == "fielded":
            name_token, target = tree.children
            assert isinstance(name_token, Token) and isinstance(target, Tree)
            name = str(name_token)
            if name == "_exists_":
                return Exists(self._field_of_exists(target))
            return self.atom(target, name)
        if tree.data == "value":
            return self.value(tree, field)
        if tree.data == "range":
            return self.range(tree, field)
        if tree.data == "compare":
            return self.compare(tree, field)
        raise AssertionError(f"unexpected node {tree.data}")

    def _field_of_exists(self, target: Tree[Token]) -> str:
        token = target.children[0]
        if not isinstance(token, Token) or token.type not in ("TERM", "PHRASE"):
            raise BadRequest("_exists_ takes a field name, e.g. _exists_:dc.titles", field="q")
        return _unquote(token)

    def value(self, tree: Tree[Token], field: str | None) -> Node:
        token = tree.children[0]
        assert isinstance(token, Token)
        extras = {c.data: c for c in tree.children[1:] if isinstance(c, Tree)}
        node: Node
        if token.type == "PHRASE":
            slop = extras.get("proximity")
            slop_value = int(_number(_last_token(slop), 0)) if slop else 0
            node = Phrase(field, _unquote(token), slop_value)
        elif token.type == "REGEX":
            node = Regex(field, str(token)[1:-1].replace("\\/", "/"))
        else:
            raw = str(token)
            fuzzy = extras.get("fuzzy")
            if raw == "*":
                node = Exists(field) if field else MatchAll()
            elif fuzzy is not None:
                distance = _number(_last_token(fuzzy, "NUMBER"), 2)
                # Old Lucene similarity syntax (0 < x < 1) means "fuzzy"; use the default distance.
                node = Fuzzy(field, unescape(raw), 2 if distance < 1 else min(int(distance), 2))
            elif _has_wildcard(raw):
                node = Wildcard(field, raw)
            else:
                node = Term(field, unescape(raw))
        return self._boost(node, extras.get("boost"))

    def range(self, tree: Tree[Token], field: str | None) -> Node:
        assert field is not None  # the grammar only allows ranges after a field
        opening, low, high, closing, *rest = tree.children
        node = Range(
            field,
            _range_value(low),
            _range_value(high),
            include_low=str(opening) == "[",
            include_high=str(closing) == "]",
        )
        return self._boost(node, rest[0] if rest else None)

    def compare(self, tree: Tree[Token], field: str | None) -> Node:
        assert field is not None  # the grammar only allows comparisons after a field
        op, value, *rest = tree.children
        bound = _range_value(value)
        ops = {
            ">=": Range(field, bound, None, include_low=True),
            ">": Range(field, bound, None, include_low=False),
            "<=": Range(field, None, bound, include_high=True),
            "<": Range(field, None, bound, include_high=False),
        }
        return self._boost(ops[str(op)], rest[0] if rest else None)

    def _boost(self, node: Node, boost: Tree[Token] | Token | None) -> Node:
        if not isinstance(boost, Tree):
            return node
        return Boost(node, _number(_last_token(boost), 1.0))


def _last_token(tree: Tree[Token] | None, kind: str | None = None) -> Token | None:
    if tree is None:
        return None
    tokens = [c for c in tree.children if isinstance(c, Token) and (kind is None or c.type == kind)]
    return tokens[-1] if tokens else None


def _range_value(node: Tree[Token] | Token) -> str | None:
    token = node.children[0] if isinstance(node, Tree) else node
    assert isinstance(token, Token)
    text = _unquote(token)
    return None if text == "*" and token.type != "PHRASE" else text


def _parse_tree(text: str, limits: QueryLimits) -> Tree[Token]:
    """Lark's tree of `text`, counting clauses and depth as the tokens arrive."""
    parser = _parser().parse_interactive(text)
    depth = clauses = 0
    last: Token | None = None
    for token in parser.iter_parse():
        last = token
        kind = token.type
        if kind in _CLAUSE_TOKENS:
            clauses += 1
            if clauses > limits.max_clauses:
                raise QueryTooLarge(
                    f"the query has more than {limits.max_clauses} clauses",
                    limits.max_clauses,
                    "max_query_clauses",
                )
            if kind == "LPAR":
                depth += 1
                if depth > limits.max_depth:
                    raise QueryTooLarge(
                        f"the query nests parentheses deeper than {limits.max_depth} "
                        f"(at position {(token.start_pos or 0) + 1})",
                        limits.max_depth,
                        "max_query_depth",
                    )
        elif kind == "RPAR":
            depth -= 1
    tree: Tree[Token] = parser.feed_eof(last)  # type: ignore[no-untyped-call]
    return tree


def parse_query(text: str, limits: QueryLimits = DEFAULT_LIMITS) -> Node:
    """Parse an advanced query string.

    Raises:
        QueryTooLarge: the text is over one of `limits`.
        BadRequest: the text is not valid; the message gives the 1-based position.
    """
    check_length(text, limits)
    try:
        tree = _parse_tree(text, limits)
    except UnexpectedInput as exc:
        raise BadRequest(_describe(exc, text), field="q") from None
    return _Builder().clauses(list(tree.children), None)  # type: ignore[arg-type]


def parse_simple_query(text: str, limits: QueryLimits = DEFAULT_LIMITS) -> Node:
    """Parse a basic (non-advanced) query: never a syntax error, but always within the limits.

    Valid query syntax keeps its meaning (so Forge's `(iron AND oxide)` works); anything else
    becomes its words, any of which may match.
    """
    if not text.strip():
        return MatchAll()
    try:
        return parse_query(text, limits)
    except QueryTooLarge:
        raise
    except BadRequest:
        words = [w.strip('"()[]{}') for w in _WORD.findall(text)]
        nodes: list[Node] = [Phrase(None, w) if " " in w else Term(None, w) for w in words if w]
        if not nodes:
            return MatchAll()
        if len(nodes) > limits.max_clauses:
            raise QueryTooLarge(
                f"the query has more than {limits.max_clauses} words",
                limits.max_clauses,
                "max_query_clauses",
            ) from None
        return Bool(tuple((Occur.SHOULD, n) for n in nodes))


def query_tree(
    q: str | None,
    advanced: bool,
    filters: Sequence[GFilter],
    *,
    limits: QueryLimits = DEFAULT_LIMITS,
) -> Node:
    """The tree of a search's `q`: match-all when only filters are given; parsed otherwise."""
    if q is not None:
        check_length(q, limits)  # before even `strip` walks it
    if q is None or not q.strip():
        if not filters and q is None:
            raise BadRequest("give q, filters, or both", field="q")
        return MatchAll()
    return parse_query(q, limits) if advanced else parse_simple_query(q, limits)


def _describe(exc: UnexpectedInput, text: str) -> str:
    position = getattr(exc, "pos_in_stream", None)
    token = getattr(exc, "token", None)
    if position is None or (token is not None and token.type == "$END"):
        position = len(text)
    near = text[position : position + 12] or "end of query"
    if isinstance(exc, UnexpectedEOF):
        what = "the query ends too early"
    elif isinstance(exc, UnexpectedCharacters):
        what = f"unexpected character {text[position : position + 1]!r}"
    elif isinstance(exc, UnexpectedToken):
        what = f"unexpected {exc.token!s:.20}" if str(exc.token) else "the query ends too early"
    else:
        what = "invalid syntax"
    return f"query syntax error at position {position + 1}: {what} (near {near!r})"
