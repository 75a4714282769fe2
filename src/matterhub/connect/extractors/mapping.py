"""MDF `index` mappings (`{"mdf.field": "source.path"}`) and column summaries of tables."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from matterhub.connect.extractors.base import Record

__all__ = [
    "DEFAULT_NA",
    "MAX_RECORDS",
    "Columns",
    "flatten_mapping",
    "get_path",
    "index_options",
    "map_item",
    "na_values",
    "number",
    "set_path",
    "with_units",
]

DEFAULT_NA = frozenset({"", "na", "n/a", "nan", "null", "none", "-"})
MAX_RECORDS = 100_000


def number(text: str) -> int | float | None:
    """`text` as an int or a finite float, or None when it is not a number."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def set_path(record: Record, dotted: str, value: Any) -> None:
    """Set `record["a"]["b"] = value` for `dotted = "a.b"`, creating the parents."""
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = record.get(part)
        if not isinstance(child, dict):
            child = record[part] = {}
        record = child
    record[leaf] = value


def get_path(tree: Any, dotted: str) -> Any:
    """The value at a dotted path (list items by number), or None when the path is absent."""
    if isinstance(tree, Mapping) and dotted in tree:
        return tree[dotted]  # a column whose name itself has dots
    for part in dotted.split("."):
        if isinstance(tree, Mapping) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and part.isdigit() and int(part) < len(tree):
            tree = tree[int(part)]
        else:
            return None
    return tree


def flatten_mapping(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """MDF accepts nested mappings (`{"material": {"composition": "f"}}`): flatten to dots."""
    flat: dict[str, str] = {}
    for key, value in mapping.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_mapping(value, path))
        else:
            flat[path] = str(value)
    return flat


def index_options(index: Mapping[str, Any], kind: str) -> tuple[dict[str, str], set[str], Any]:
    """(flat mapping, lower-case N/A strings, the whole options block) of `index[kind]`."""
    options = index.get(kind) or {}
    if not isinstance(options, Mapping):
        options = {}
    mapping = options.get("mapping") or {}
    flat = flatten_mapping(mapping) if isinstance(mapping, Mapping) else {}
    return flat, na_values(options.get("na_values")), options


def na_values(extra: Any) -> set[str]:
    """The default N/A strings plus the submission's `na_values` (a string or a list)."""
    if isinstance(extra, str):
        extra = [extra]
    return set(DEFAULT_NA) | {str(v).strip().lower() for v in extra or []}


def _value(value: Any, na: set[str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() in na:
        return None
    cast = number(text)
    return cast if cast is not None else text


def map_item(item: Any, mapping: Mapping[str, str], na: set[str]) -> Record:
    """One record from one row/element: each mapped source value at its MDF path."""
    record: Record = {}
    for target, source in mapping.items():
        value = _value(get_path(item, source), na)
        if value is None:
            continue
        if isinstance(value, list | dict) and not value:
            continue
        set_path(record, target, value)
    return record


def with_units(records: list[Record], units: Any, kind: str) -> list[Record]:
    """Each mapped field that has a value gets its unit beside it as `<field>_units`.

    `units` is the index block's `{"mdf.field": "unit"}` (`index.<kind>.units`), the way the
    extractors write `dft.energy_units`; a unit for a field absent from a row adds nothing.

    Raises:
        ValueError: `units` is not an object of strings (named by its path in the index).
    """
    if not units:
        return records
    if not isinstance(units, Mapping):
        raise ValueError(f"index.{kind}.units must be an object {{field: unit}}")
    flat = flatten_mapping(units)
    for target, unit in flat.items():
        if not isinstance(get_path(units, target), str) or not unit.strip():
            raise ValueError(f"index.{kind}.units.{target}: a unit is a non-empty string")
    for record in records:
        for target, unit in flat.items():
            if get_path(record, target) is not None:
                set_path(record, f"{target}_units", unit.strip())
    return records


class _Column:
    __slots__ = ("kinds", "maximum", "minimum", "missing", "name", "numbers", "seen", "total")

    def __init__(self, name: str) -> None:
        self.name = name
        self.missing = 0
        self.seen = 0
        self.numbers = 0
        self.total = 0.0
        self.minimum: float | None = None
        self.maximum: float | None = None
        self.kinds: set[str] = set()

    def add(self, value: Any, na: set[str]) -> None:
        self.seen += 1
        if isinstance(value, str):
            value = value.strip()
            if value.lower() in na:
                self.missing += 1
                return
            cast = number(value)
            value = value if cast is None else cast
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            self.missing += 1
        elif isinstance(value, bool):
            self.kinds.add("boolean")
        elif isinstance(value, int | float):
            self.kinds.add("number")
            self.numbers += 1
            self.total += value
            self.minimum = value if self.minimum is None else min(self.minimum, value)
            self.maximum = value if self.maximum is None else max(self.maximum, value)
        elif isinstance(value, dt.datetime | dt.date | dt.time):
            self.kinds.add("datetime")
        else:
            self.kinds.add("string")

    def summary(self, rows: int) -> Record:
        kinds = self.kinds
        kind = "empty" if not kinds else next(iter(kinds)) if len(kinds) == 1 else "string"
        missing = self.missing + max(rows - self.seen, 0)  # short rows, absent elements
        entry: Record = {"name": self.name, "type": kind, "missing": missing}
        if kind == "number" and self.numbers:
            entry.update(min=self.minimum, max=self.maximum, mean=self.total / self.numbers)
        return entry


class Columns:
    """Running per-column type, missing count and numeric range of a table, row by row."""

    def __init__(self, names: Iterable[str] = (), na: set[str] | None = None) -> None:
        self.na = set(DEFAULT_NA) if na is None else na
        self.columns = [_Column(str(n)) for n in names]
        self.by_name = {c.name: c for c in self.columns}
        self.rows = 0

    def add_row(self, values: Iterable[Any]) -> None:
        """A row given by position (CSV, spreadsheet); cells past the header are ignored."""
        self.rows += 1
        for column, value in zip(self.columns, values, strict=False):
            column.add(value, self.na)

    def add_record(self, values: Mapping[str, Any], *, limit: int = 200) -> None:
        """A row given by name (XML elements); new names become new columns (at most `limit`)."""
        self.rows += 1
        for name, value in values.items():
            column = self.by_name.get(name)
            if column is None:
                if len(self.columns) >= limit:
                    continue
                column = self.by_name[name] = _Column(name)
                self.columns.append(column)
            column.add(value, self.na)

    def summary(self) -> list[Record]:
        """Per column: name, type (number, string, boolean, datetime, empty), missing, range."""
        return [c.summary(self.rows) for c in self.columns]
