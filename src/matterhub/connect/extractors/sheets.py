"""Excel workbooks (.xlsx/.xlsm) for the tabular extractor, read with openpyxl in read-only mode.

Read-only mode streams each sheet's XML, so a large sheet is summarised row by row. The
zip's declared sizes are checked first: a workbook that would inflate past a limit is refused
before openpyxl loads its shared strings.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from matterhub.connect.extractors.base import Record, require
from matterhub.connect.extractors.mapping import Columns, map_item

__all__ = ["OPENPYXL_BIBTEX", "excel_records", "excel_summary"]

MAX_INFLATED_BYTES = 512 * 1024 * 1024
_MAX_SHEETS = 50
OPENPYXL_BIBTEX = """@software{openpyxl,
  title={openpyxl: A Python library to read/write Excel 2010 xlsx/xlsm files},
  author={Gazoni, Eric and Clark, Charlie}, url={https://openpyxl.readthedocs.io}
}"""


def _workbook(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:  # BadZipFile on a truncated or mislabelled file
        inflated = sum(info.file_size for info in archive.infolist())
        if "xl/workbook.xml" not in archive.namelist():
            raise ValueError("not an Excel workbook: xl/workbook.xml is missing")
    if inflated > MAX_INFLATED_BYTES:
        raise ValueError(f"workbook inflates to {inflated} bytes (limit {MAX_INFLATED_BYTES})")
    openpyxl = require("openpyxl", "materials")
    return openpyxl.load_workbook(path, read_only=True, data_only=True)


def _header(row: tuple[Any, ...] | None) -> list[str]:
    return [
        str(v).strip() if v not in (None, "") else f"column_{i + 1}"
        for i, v in enumerate(row or ())
    ]


def _rows(sheet: Any, header_row: int) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    rows = sheet.iter_rows(values_only=True)
    header: tuple[Any, ...] | None = None
    for _ in range(max(header_row, 1)):
        header = next(rows, None)
    names = _header(header)
    while names and names[-1].startswith("column_"):
        names.pop()  # trailing empty header cells: formatting, not columns
    return names, (r for r in rows if any(v not in (None, "") for v in r))


def _sheet(workbook: Any, wanted: Any) -> Any:
    if wanted is None:
        return workbook.worksheets[0]
    if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.isdigit()):
        return workbook.worksheets[int(wanted)]
    return workbook[str(wanted)]


def excel_summary(path: Path, na: set[str]) -> Record:
    """Per sheet: rows, columns with types; the first sheet's columns also at the top."""
    workbook = _workbook(path)
    try:
        sheets: list[Record] = []
        for sheet in workbook.worksheets[:_MAX_SHEETS]:
            names, rows = _rows(sheet, 1)
            columns = Columns(names, na)
            for row in rows:
                columns.add_row(row)
            sheets.append(
                {
                    "name": sheet.title,
                    "row_count": columns.rows,
                    "column_count": len(names),
                    "columns": columns.summary(),
                }
            )
        names = list(workbook.sheetnames)
    finally:
        workbook.close()
    first = sheets[0] if sheets else {"row_count": 0, "column_count": 0, "columns": []}
    return {
        "format": "excel",
        "sheet_names": names,
        "row_count": first["row_count"],
        "column_count": first["column_count"],
        "columns": first["columns"],
        "sheets": sheets,
    }


def excel_records(
    path: Path, options: Mapping[str, Any], mapping: Mapping[str, str], na: set[str], limit: int
) -> list[Record]:
    """One record per row of `options.sheet` (name or 0-based number; default the first),
    with column names from row `options.header_row` (default 1), as MDF's pandas reader."""
    workbook = _workbook(path)
    try:
        names, rows = _rows(
            _sheet(workbook, options.get("sheet")), int(options.get("header_row", 1))
        )
        records: list[Record] = []
        for row in rows:
            record = map_item(dict(zip(names, row, strict=False)), mapping, na)
            if record:
                records.append(record)
            if len(records) >= limit:
                break
    finally:
        workbook.close()
    return records
