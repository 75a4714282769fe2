"""CSV, JSON and YAML: a column summary, or one record per row through the `index` mapping."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from matterhub.connect.extractors.base import (
    ExtractionContext,
    Extractor,
    FileGroup,
    Record,
    StagedFile,
    require,
)

__all__ = ["TabularExtractor"]

_KINDS = {"csv": "csv", "tsv": "csv", "json": "json", "yaml": "yaml", "yml": "yaml"}
_DEFAULT_NA = {"", "na", "n/a", "nan", "null", "none", "-"}
_MAX_RECORDS = 100_000


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _set(record: Record, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        record = record.setdefault(part, {})
    record[leaf] = value


def _get(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(tree, Mapping) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and part.isdigit() and int(part) < len(tree):
            tree = tree[int(part)]
        else:
            return None
    return tree


def _mapped(item: Any, mapping: Mapping[str, str], na: set[str]) -> Record:
    record: Record = {}
    for target, source in mapping.items():
        value = (
            _get(item, source)
            if not isinstance(item, Mapping) or source not in item
            else item[source]
        )
        if value is None or (isinstance(value, str) and value.strip().lower() in na):
            continue
        if isinstance(value, str):
            number = _number(value.strip())
            value = number if number is not None else value.strip()
        _set(record, target, value)
    return record


def _rows(
    file: StagedFile, options: Mapping[str, Any]
) -> tuple[list[str], Iterator[list[str]], Any]:
    fh = file.path.open(encoding="utf-8-sig", errors="replace", newline="")
    delimiter = options.get("delimiter") or ("\t" if file.suffix == "tsv" else None)
    if delimiter is None:
        sample = fh.read(65536)
        fh.seek(0)
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(fh, delimiter=delimiter)
    header = next(reader, None)
    if not header:
        fh.close()
        raise ValueError("empty table: no header row")
    return [h.strip() for h in header], reader, fh


def _csv_summary(file: StagedFile, na: set[str]) -> Record:
    header, reader, fh = _rows(file, {})
    stats: list[dict[str, Any]] = [
        {"name": h, "numeric": 0, "text": 0, "missing": 0} for h in header
    ]
    rows = 0
    with fh:
        for row in reader:
            rows += 1
            for col, cell in zip(stats, row, strict=False):
                cell = cell.strip()
                if cell.lower() in na:
                    col["missing"] += 1
                    continue
                number = _number(cell)
                if number is None:
                    col["text"] += 1
                    continue
                col["numeric"] += 1
                col["min"] = min(col.get("min", number), number)
                col["max"] = max(col.get("max", number), number)
                col["sum"] = col.get("sum", 0.0) + number
    columns = []
    for col in stats:
        kind = (
            "number" if col["numeric"] and not col["text"] else "string" if col["text"] else "empty"
        )
        entry: Record = {"name": col["name"], "type": kind, "missing": col["missing"]}
        if kind == "number":
            entry.update(min=col["min"], max=col["max"], mean=col["sum"] / col["numeric"])
        columns.append(entry)
    return {"format": "csv", "row_count": rows, "column_count": len(header), "columns": columns}


def _tree_summary(data: Any, kind: str) -> Record:
    out: Record = {"format": kind, "top_level_type": type(data).__name__}
    if isinstance(data, list):
        out["row_count"] = len(data)
        keys = sorted({k for item in data[:1000] if isinstance(item, Mapping) for k in item})
        if keys:
            out["columns"] = [{"name": str(k)} for k in keys[:200]]
    elif isinstance(data, Mapping):
        out["keys"] = [str(k) for k in list(data)[:200]]
    return out


class TabularExtractor(Extractor):
    """CSV/TSV, JSON and YAML → `tabular` summary, or records via `index.<format>.mapping`."""

    name = "tabular"
    version = "0.1.0"
    extra = ""
    priority = 10

    def accepts(self, file: StagedFile) -> bool:
        """.csv, .tsv, .json, .yaml and .yml files."""
        return file.suffix in _KINDS

    def extract(self, group: FileGroup, context: ExtractionContext) -> Record | list[Record]:
        """With a mapping: one record per row (or list element); without: a summary."""
        file = group.files[0]
        kind = _KINDS[file.suffix]
        options = context.index.get(kind) or {}
        mapping = options.get("mapping") or {}
        na = _DEFAULT_NA | {str(v).lower() for v in options.get("na_values") or []}
        limit = int(context.config.get("max_records", _MAX_RECORDS))
        if kind == "csv":
            if not mapping:
                return {"tabular": _csv_summary(file, na)}
            header, reader, fh = _rows(file, options)
            with fh:
                records: list[Record] = []
                for row in reader:
                    if len(records) >= limit:
                        break
                    if any(cell.strip() for cell in row):
                        records.append(_mapped(dict(zip(header, row, strict=False)), mapping, na))
            return [r for r in records if r]
        text = file.path.read_text(encoding="utf-8-sig", errors="replace")
        yaml = require("yaml", "materials") if kind == "yaml" else None
        data = json.loads(text) if yaml is None else yaml.safe_load(text)
        if not mapping:
            return {"tabular": _tree_summary(data, kind)}
        items = data if isinstance(data, list) else [data]
        return [r for r in (_mapped(item, mapping, na) for item in items[:limit]) if r]
