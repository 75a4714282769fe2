"""Record titles: what a per-file record is called in result lists (`mdf.title`).

MDF records carry no `dc` block, so nothing names them. A record gets
`<formula> (<file path>)` when it has both, else the formula, else the file path, else
`<dataset title> — record <n>` (or `<source_name> — record <n>`). A record with several files
(a VASP run, a Quantum ESPRESSO folder) is named by their common folder.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_TITLE", "record_title", "with_title"]

MAX_TITLE = 200
"""Characters kept of a derived title (a long path stays readable in a result row)."""


def _path(files: Any) -> str | None:
    if not isinstance(files, list):
        return None
    paths = [
        str(f.get("path") or f.get("filename") or "")
        for f in files
        if isinstance(f, Mapping) and (f.get("path") or f.get("filename"))
    ]
    if not paths:
        return None
    if len(paths) == 1:
        return paths[0]
    common = posixpath.commonpath(paths)
    return f"{common}/" if common else paths[0]


def record_title(record: Mapping[str, Any], *, dataset_title: str | None = None) -> str:
    """The title a record is shown under (see the module docstring for the rule)."""
    material = record.get("material")
    formula = None
    if isinstance(material, Mapping):
        formula = material.get("reduced_formula") or material.get("composition")
    path = _path(record.get("files"))
    if formula and path:
        title = f"{formula} ({path})"
    elif formula or path:
        title = str(formula or path)
    else:
        mdf = record.get("mdf") if isinstance(record.get("mdf"), Mapping) else {}
        assert isinstance(mdf, Mapping)
        name = dataset_title or mdf.get("source_name") or "record"
        title = f"{name} — record {mdf.get('scroll_id', '')}".rstrip()
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"


def with_title(record: dict[str, Any], *, dataset_title: str | None = None) -> dict[str, Any]:
    """`record` with `mdf.title` set when it is an MDF record without one; else unchanged."""
    mdf = record.get("mdf")
    if not isinstance(mdf, dict) or mdf.get("resource_type") != "record" or mdf.get("title"):
        return record
    return {**record, "mdf": {**mdf, "title": record_title(record, dataset_title=dataset_title)}}
