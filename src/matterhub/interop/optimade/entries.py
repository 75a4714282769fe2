"""Building OPTIMADE entries from indexed records and dataset entries; reading a record's sites.

The index holds what filters need (the `optimade` block the indexer adds); it does not hold
positions, which would swell every index document and the catch-all text with numbers. The sites
of a page's structures are read when the page is built, from the record's extended XYZ: the copy
Connect derives for CIF, POSCAR and other formats (`.derived/<path>/<name>.extxyz`), or the file
itself when it is XYZ. It is opened through `DatasetService.open_file` as the caller, so a file
restricted below its record's audience stays unread; only the first frame is read, and a
structure with more than `MAX_SITES` sites is served without them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from matterhub.core.optimade import INDEX_KEY
from matterhub.interop.optimade.fields import CHEMICAL_SYMBOLS, PREFIX

__all__ = ["MAX_SITES", "Sites", "parse_xyz", "reference_entry", "sites_file", "structure_entry"]

MAX_SITES = 10_000
_SYMBOLS = frozenset(CHEMICAL_SYMBOLS)
_KEY_VALUE = re.compile(r'(\w+)=("[^"]*"|\S+)')
_FAMILY_GIVEN = re.compile(r"^\s*([^,]+),\s*(.+?)\s*$")


@dataclass(frozen=True, slots=True)
class Sites:
    """The first frame of an XYZ file: symbols, Cartesian positions (Å), cell (or None)."""

    symbols: list[str]
    positions: list[list[float]]
    lattice: list[list[float]] | None


def _columns(comment: str) -> tuple[int, int, list[list[float]] | None]:
    """(species column, first position column, lattice) from an extended XYZ comment line."""
    pairs = {k: v.strip('"') for k, v in _KEY_VALUE.findall(comment)}
    lattice = None
    if "Lattice" in pairs:
        numbers = [float(x) for x in pairs["Lattice"].split()]
        if len(numbers) != 9:
            raise ValueError("a Lattice needs nine numbers")
        lattice = [numbers[0:3], numbers[3:6], numbers[6:9]]
    species, pos, column = 0, 1, 0
    if "Properties" in pairs:
        parts = pairs["Properties"].split(":")
        found = {}
        for i in range(0, len(parts) - 2, 3):
            name, width = parts[i], int(parts[i + 2])
            found[name] = column
            column += width
        if "species" not in found or "pos" not in found:
            raise ValueError("the Properties name no species or positions")
        species, pos = found["species"], found["pos"]
    return species, pos, lattice


def parse_xyz(lines: Iterator[str], *, nsites: int) -> Sites:
    """The first frame of an (extended) XYZ text; ValueError unless it has `nsites` atoms."""
    count = int(next(lines).split()[0])
    if count != nsites:
        raise ValueError(f"the file has {count} atoms, the record {nsites}")
    species, pos, lattice = _columns(next(lines, ""))
    symbols: list[str] = []
    positions: list[list[float]] = []
    for _ in range(count):
        columns = next(lines).split()
        symbol = columns[species]
        if symbol not in _SYMBOLS:
            raise ValueError(f"{symbol!r} is not an element")
        symbols.append(symbol)
        positions.append([float(x) for x in columns[pos : pos + 3]])
    return Sites(symbols, positions, lattice)


def sites_file(record: Mapping[str, Any]) -> str | None:
    """The path of the record's extended XYZ (a derived copy, or the file itself)."""
    for item in record.get("files") or []:
        if not isinstance(item, dict):
            continue
        for preview in item.get("previews") or []:
            path = preview.get("path") if isinstance(preview, dict) else None
            if isinstance(path, str) and path.endswith(".extxyz"):
                return path
        path = item.get("path")
        if isinstance(path, str) and path.lower().endswith((".xyz", ".extxyz")):
            return path
    return None


def _species(symbols: list[str]) -> list[dict[str, Any]]:
    return [
        {"name": s, "chemical_symbols": [s], "concentration": [1.0]} for s in sorted(set(symbols))
    ]


def structure_entry(
    record: Mapping[str, Any], sites: Sites | None, fields: set[str] | None
) -> dict[str, Any]:
    """One structure resource; `fields` limits the attributes (None: all of them)."""
    block = record[INDEX_KEY]
    mdf = record.get("mdf") or {}
    crystal = record.get("crystal_structure") or {}
    periodic = block.get("nperiodic_dimensions") == 3
    attributes: dict[str, Any] = {k: v for k, v in block.items() if k != "id"}
    attributes.update(
        {
            "lattice_vectors": sites.lattice if sites is not None and periodic else None,
            "cartesian_site_positions": sites.positions if sites is not None else None,
            "species": _species(sites.symbols) if sites is not None else None,
            "species_at_sites": sites.symbols if sites is not None else None,
            f"_{PREFIX}_source_id": mdf.get("source_id"),
            f"_{PREFIX}_source_name": mdf.get("source_name"),
            f"_{PREFIX}_crystal_system": crystal.get("crystal_system"),
            f"_{PREFIX}_files": [
                {k: f[k] for k in ("path", "url", "sha512", "previews") if k in f}
                for f in record.get("files") or []
                if isinstance(f, dict)
            ],
        }
    )
    if fields is not None:
        attributes = {name: attributes.get(name) for name in fields}
    entry: dict[str, Any] = {"id": block["id"], "type": "structures", "attributes": attributes}
    if mdf.get("source_name"):
        entry["relationships"] = {
            "references": {"data": [{"type": "references", "id": mdf["source_name"]}]}
        }
    return entry


def _author(creator: Any) -> dict[str, str] | None:
    name = creator.get("creatorName") if isinstance(creator, dict) else None
    if not isinstance(name, str) or not name.strip():
        return None
    match = _FAMILY_GIVEN.match(name)
    if match is None:
        return {"name": name.strip()}
    family, given = match.groups()
    return {"name": f"{given} {family}", "firstname": given, "lastname": family}


def reference_entry(document: Mapping[str, Any], fields: set[str] | None) -> dict[str, Any]:
    """One reference resource for an indexed dataset entry."""
    dc = document.get("dc") or {}
    mdf = document.get("mdf") or {}
    titles = [t.get("title") for t in dc.get("titles") or [] if isinstance(t, dict)]
    found = dc.get("identifier")
    identifier: dict[str, Any] = found if isinstance(found, dict) else {}
    kind, value = identifier.get("identifierType"), identifier.get("identifier")
    doi = value if kind == "DOI" and isinstance(value, str) else None
    url = f"https://doi.org/{doi}" if doi else value if kind == "URL" else None
    year = dc.get("publicationYear")
    attributes: dict[str, Any] = {
        "immutable_id": mdf.get("source_id"),
        "last_modified": mdf.get("ingest_date"),
        "title": titles[0] if titles else None,
        "authors": [a for a in map(_author, dc.get("creators") or []) if a] or None,
        "publisher": dc.get("publisher") if isinstance(dc.get("publisher"), str) else None,
        "doi": doi,
        "url": url if isinstance(url, str) else None,
        "year": str(year) if isinstance(year, int | str) else None,
        f"_{PREFIX}_source_id": mdf.get("source_id"),
    }
    if fields is not None:
        attributes = {name: attributes.get(name) for name in fields}
    return {"id": mdf.get("source_name"), "type": "references", "attributes": attributes}
