"""CSV, JSON, YAML, XML and Excel: a column summary, or one record per row via `index` mappings."""

from __future__ import annotations

import csv
import json
import re
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
from matterhub.connect.extractors.mapping import (
    MAX_RECORDS,
    Columns,
    index_options,
    map_item,
    with_units,
)
from matterhub.connect.extractors.sheets import OPENPYXL_BIBTEX, excel_records, excel_summary
from matterhub.connect.extractors.xmltree import xml_records, xml_summary

__all__ = ["TabularExtractor"]

# File suffix → MDF `index` key (connect_submission.json: json, csv, yaml, xml, excel).
_KINDS = {
    "csv": "csv", "tsv": "csv", "json": "json", "yaml": "yaml", "yml": "yaml", "xml": "xml",
    "xlsx": "excel", "xlsm": "excel",
}  # fmt: skip
# XML written by simulation codes that their own extractors read (and that can be huge).
_CODE_XML = re.compile(r"^vasprun.*\.xml$", re.IGNORECASE)
PYYAML_BIBTEX = """@software{pyyaml,
  title={PyYAML: a YAML parser and emitter for Python}, author={Simonov, Kirill and others},
  url={https://pyyaml.org}
}"""


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
    columns = Columns(header, na)
    with fh:
        for row in reader:
            columns.add_row(row)
    return {
        "format": "csv",
        "row_count": columns.rows,
        "column_count": len(header),
        "columns": columns.summary(),
    }


def _csv_records(
    file: StagedFile,
    options: Mapping[str, Any],
    mapping: Mapping[str, str],
    na: set[str],
    limit: int,
) -> list[Record]:
    header, reader, fh = _rows(file, options)
    records: list[Record] = []
    with fh:
        for row in reader:
            if len(records) >= limit:
                break
            if any(cell.strip() for cell in row):
                record = map_item(dict(zip(header, row, strict=False)), mapping, na)
                if record:
                    records.append(record)
    return records


def _tree_summary(data: Any, kind: str) -> Record:
    out: Record = {"format": kind, "top_level_type": type(data).__name__}
    if isinstance(data, list):
        out["row_count"] = len(data)
        rows = [item for item in data if isinstance(item, Mapping)]
        if rows:
            columns = Columns()
            for item in rows:
                columns.add_record(
                    {str(k): v for k, v in item.items() if not isinstance(v, list | Mapping)}
                )
            out["columns"] = columns.summary()
            out["column_count"] = len(out["columns"])
    elif isinstance(data, Mapping):
        out["keys"] = [str(k) for k in list(data)[:200]]
    return out


def _tree(file: StagedFile, kind: str) -> Any:
    text = file.path.read_text(encoding="utf-8-sig", errors="replace")
    yaml = require("yaml", "materials") if kind == "yaml" else None
    return json.loads(text) if yaml is None else yaml.safe_load(text)


class TabularExtractor(Extractor):
    """Tables and documents → `tabular` summary, or records via `index.<kind>.mapping`."""

    name = "tabular"
    version = "0.2.0"
    extra = "materials"
    priority = 10

    def accepts(self, file: StagedFile) -> bool:
        """.csv/.tsv, .json, .yaml/.yml, .xml (not vasprun.xml) and .xlsx/.xlsm files."""
        return file.suffix in _KINDS and not _CODE_XML.match(file.name)

    def extract(self, group: FileGroup, context: ExtractionContext) -> Record | list[Record]:
        """With a mapping: one record per row (or list element); without: a summary.

        `index.<kind>.units` (`{"mdf.field": "unit"}`) puts each mapped value's unit beside it.
        """
        file = group.files[0]
        kind = _KINDS[file.suffix]
        mapping, na, options = index_options(context.index, kind)
        if not mapping:
            return self._summary(file, kind, na)
        limit = int(context.config.get("max_records", MAX_RECORDS))
        if kind == "csv":
            records = _csv_records(file, options, mapping, na, limit)
        elif kind == "excel":
            records = excel_records(file.path, options, mapping, na, limit)
        elif kind == "xml":
            records = xml_records(file.path, options, mapping, na, limit)
        else:
            items = _tree(file, kind)
            items = items if isinstance(items, list) else [items]
            records = [r for r in (map_item(item, mapping, na) for item in items[:limit]) if r]
        return with_units(records, options.get("units"), kind)

    @staticmethod
    def _summary(file: StagedFile, kind: str, na: set[str]) -> Record:
        if kind == "csv":
            return {"tabular": _csv_summary(file, na)}
        if kind == "excel":
            return {"tabular": excel_summary(file.path, na)}
        if kind == "xml":
            return {"tabular": xml_summary(file.path, na)}
        return {"tabular": _tree_summary(_tree(file, kind), kind)}

    def citations(self) -> list[str]:
        """openpyxl (Excel) and PyYAML; CSV, JSON and XML use Python's standard library."""
        return [OPENPYXL_BIBTEX, PYYAML_BIBTEX]
