"""XML for the tabular extractor: a streamed summary, or records through an MDF `index` mapping.

Elements become xmltodict-style trees, as MDF's XML extractor saw them: attributes are
`@name`, an element's own text beside attributes or children is `#text`, repeated children
become lists, and namespaces are dropped (`{uri}sample` → `sample`). Parsing streams with
`iterparse`, and every finished element is detached, so memory stays flat on large files.
Python's expat refuses entity-expansion bombs and never fetches external entities.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from matterhub.connect.extractors.base import Record
from matterhub.connect.extractors.mapping import Columns, map_item

__all__ = ["element_tree", "xml_records", "xml_summary"]

# Without `rows`, a mapping reads the whole document, as MDF did; past this size, ask for rows.
_WHOLE_DOCUMENT_LIMIT = 64 * 1024 * 1024
_LISTED_PATHS = 50


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def element_tree(elem: ET.Element) -> Any:
    """An element as xmltodict would give it: text, or a dict of `@attributes` and children."""
    attrs: dict[str, Any] = {f"@{_local(k)}": v for k, v in elem.attrib.items()}
    text = (elem.text or "").strip()
    if not attrs and len(elem) == 0:
        return text or None
    out: dict[str, Any] = attrs
    for child in elem:
        key, value = _local(child.tag), element_tree(child)
        if key not in out:
            out[key] = value
        elif isinstance(out[key], list):
            out[key].append(value)
        else:
            out[key] = [out[key], value]
    if text:
        out["#text"] = text
    return out


def _walk(path: Path, keep: str | None = None) -> Iterator[tuple[str, ET.Element, bool]]:
    """(dotted path of local names, element, had children) for every element at its end.

    A finished element is then detached and cleared, except inside a `keep` element, whose
    subtree stays whole until the `keep` element itself has been yielded.
    """
    stack: list[ET.Element] = []
    names: list[str] = []
    kids: list[bool] = []
    inside = f"{keep}." if keep else None
    for event, elem in ET.iterparse(path, events=("start", "end")):
        if event == "start":
            if kids:
                kids[-1] = True
            stack.append(elem)
            names.append(_local(elem.tag))
            kids.append(False)
            continue
        dotted = ".".join(names)
        yield dotted, elem, kids[-1]
        stack.pop()
        names.pop()
        kids.pop()
        if inside is None or not dotted.startswith(inside):
            if stack:
                stack[-1].remove(elem)  # its earlier siblings are gone already: O(1)
            elem.clear()


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A row element's leaves as columns (`a.b`, `@id`); repeated children are left out."""
    if not isinstance(tree, Mapping):
        return {prefix or "#text": tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            out.update(_flat(value, name))
        elif not isinstance(value, list):
            out[name] = value
    return out


def xml_summary(path: Path, na: set[str]) -> Record:
    """Root, element counts, the most repeated record-like element (the rows) and its columns."""
    counts: Counter[str] = Counter()
    record_like: set[str] = set()
    depth = 0
    for dotted, elem, had_children in _walk(path):
        counts[dotted] += 1
        depth = max(depth, dotted.count(".") + 1)
        if had_children or elem.attrib:
            record_like.add(dotted)
    if not counts:
        raise ValueError("no XML elements")
    root = min(counts, key=lambda p: p.count("."))
    out: Record = {
        "format": "xml",
        "root": root,
        "element_count": sum(counts.values()),
        "max_depth": depth,
        "elements": [{"path": p, "count": n} for p, n in counts.most_common(_LISTED_PATHS)],
    }
    repeated = [p for p in record_like if counts[p] > 1]
    if not repeated:
        return out
    rows = max(repeated, key=lambda p: (counts[p], -p.count(".")))
    columns = Columns(na=na)
    for dotted, elem, _ in _walk(path, keep=rows):
        if dotted == rows:
            columns.add_record(_flat(element_tree(elem)))
    out.update(row_path=rows, row_count=columns.rows, columns=columns.summary())
    out["column_count"] = len(out["columns"])
    return out


def xml_records(
    path: Path, options: Mapping[str, Any], mapping: Mapping[str, str], na: set[str], limit: int
) -> list[Record]:
    """With `rows` (a dotted path from the root tag): one record per such element, the
    mapping's paths relative to it. Without: one record for the document, the paths starting
    at the root tag, as MDF's `xmltodict`-based extractor read them."""
    rows = options.get("rows")
    if not rows:
        if path.stat().st_size > _WHOLE_DOCUMENT_LIMIT:
            raise ValueError(
                "XML too large to map as one document: set index.xml.rows to the repeated element"
            )
        root = ET.parse(path).getroot()
        record = map_item({_local(root.tag): element_tree(root)}, mapping, na)
        return [record] if record else []
    records: list[Record] = []
    for dotted, elem, _ in _walk(path, keep=rows):
        if dotted == rows:
            record = map_item(element_tree(elem), mapping, na)
            if record:
                records.append(record)
            if len(records) >= limit:
                break
    return records
