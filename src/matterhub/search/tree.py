"""The query tree: what a query string means, independent of any search engine.

The parser builds it once; each backend translates it (`search/tantivy.py`). Fields are dotted
JSON paths into an entry's content (`mdf.source_name`); `None` means "any field".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "Bool",
    "Boost",
    "Exists",
    "Fuzzy",
    "MatchAll",
    "Node",
    "Occur",
    "Phrase",
    "Range",
    "Regex",
    "Term",
    "Wildcard",
]


class Occur(Enum):
    """How a clause takes part in a boolean query (Lucene's MUST / SHOULD / MUST_NOT)."""

    MUST = "must"
    SHOULD = "should"
    MUST_NOT = "must_not"


@dataclass(frozen=True, slots=True)
class Term:
    """A single value, analysed like the field's text (several tokens make a phrase)."""

    field: str | None
    text: str


@dataclass(frozen=True, slots=True)
class Phrase:
    """Words in order, with `slop` positions of leeway."""

    field: str | None
    text: str
    slop: int = 0


@dataclass(frozen=True, slots=True)
class Wildcard:
    """A term with `*` (any run) and `?` (one character)."""

    field: str | None
    pattern: str


@dataclass(frozen=True, slots=True)
class Regex:
    """A term matching a regular expression (Lucene's flavour, anchored on the whole term)."""

    field: str | None
    pattern: str


@dataclass(frozen=True, slots=True)
class Fuzzy:
    """A term within `distance` Damerau-Levenshtein edits."""

    field: str | None
    text: str
    distance: int = 2


@dataclass(frozen=True, slots=True)
class Range:
    """Values between `low` and `high` (None = open end), numeric or dates, on one field."""

    field: str
    low: str | None
    high: str | None
    include_low: bool = True
    include_high: bool = True


@dataclass(frozen=True, slots=True)
class Exists:
    """Entries that have any value at `field`."""

    field: str


@dataclass(frozen=True, slots=True)
class MatchAll:
    """Every entry."""


@dataclass(frozen=True, slots=True)
class Boost:
    """A query whose score is multiplied by `factor`."""

    query: Node
    factor: float


@dataclass(frozen=True, slots=True)
class Bool:
    """Clauses with Lucene semantics: all MUST, no MUST_NOT, and SHOULD only scores unless alone."""

    clauses: tuple[tuple[Occur, Node], ...] = field(default_factory=tuple)


Node = Term | Phrase | Wildcard | Regex | Fuzzy | Range | Exists | MatchAll | Boost | Bool
