"""What the record page shows: its fields flattened, and a drawing of the unit cell and sites."""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CellDrawing", "cif_sites", "draw_cell", "find_structure", "flatten"]

_SIZE = 260.0
_COLOURS = ("#1f5fbf", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#7f8c8d")


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Every leaf of a JSON document as (dotted path, text), lists of scalars joined."""
    if isinstance(value, Mapping):
        out: list[tuple[str, str]] = []
        for key in sorted(value):
            out.extend(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        if all(not isinstance(v, Mapping | list) for v in value):
            return [(prefix, ", ".join(str(v) for v in value))]
        out = []
        for i, item in enumerate(value):
            out.extend(flatten(item, f"{prefix}[{i}]"))
        return out
    return [(prefix, "" if value is None else str(value))]


def _vectors(a: float, b: float, c: float, alpha: float, beta: float, gamma: float) -> list[Any]:
    """Cartesian lattice vectors from cell lengths (Å) and angles (degrees)."""
    ca, cb, cg = (math.cos(math.radians(x)) for x in (alpha, beta, gamma))
    sg = math.sin(math.radians(gamma))
    cy = (ca - cb * cg) / sg
    cz = math.sqrt(max(1.0 - cb * cb - cy * cy, 0.0))
    return [(a, 0.0, 0.0), (b * cg, b * sg, 0.0), (c * cb, c * cy, c * cz)]


@dataclass(slots=True)
class CellDrawing:
    """An SVG-ready projection: the cell's 12 edges, axis labels and site circles."""

    edges: list[tuple[float, float, float, float]] = field(default_factory=list)
    labels: list[tuple[str, float, float]] = field(default_factory=list)
    sites: list[tuple[float, float, str, str]] = field(default_factory=list)
    size: float = _SIZE


def _project(point: Sequence[float]) -> tuple[float, float]:
    # A fixed oblique view: turn 35° about z, then tilt 20° about x.
    x, y, z = point
    t, u = math.radians(35), math.radians(20)
    x1, y1 = x * math.cos(t) - y * math.sin(t), x * math.sin(t) + y * math.cos(t)
    return x1, -(z * math.cos(u) - y1 * math.sin(u))


def draw_cell(lattice: Mapping[str, Any], sites: Sequence[Mapping[str, Any]] = ()) -> CellDrawing:
    """Project a cell (a, b, c, alpha, beta, gamma) and its fractional sites onto the page."""
    vec = _vectors(*(float(lattice[k]) for k in ("a", "b", "c", "alpha", "beta", "gamma")))

    def cart(f: Sequence[float]) -> tuple[float, float]:
        return _project([sum(f[i] * vec[i][k] for i in range(3)) for k in range(3)])

    corners = {(i, j, k): cart((i, j, k)) for i in (0, 1) for j in (0, 1) for k in (0, 1)}
    pairs = [
        (p, q)
        for p in corners
        for q in corners
        if p < q and sum(abs(p[n] - q[n]) for n in range(3)) == 1
    ]
    points = list(corners.values())
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys)) or 1.0
    scale, pad = (_SIZE - 40) / span, 20.0

    def fit(p: tuple[float, float]) -> tuple[float, float]:
        return round((p[0] - min(xs)) * scale + pad, 1), round((p[1] - min(ys)) * scale + pad, 1)

    drawing = CellDrawing()
    for p, q in pairs:
        (x1, y1), (x2, y2) = fit(corners[p]), fit(corners[q])
        drawing.edges.append((x1, y1, x2, y2))
    for name, corner in (("a", (1, 0, 0)), ("b", (0, 1, 0)), ("c", (0, 0, 1))):
        x, y = fit(corners[corner])
        drawing.labels.append((name, x, y))
    colours: dict[str, str] = {}
    for site in sites:
        frac = site.get("abc") or site.get("frac") or site.get("fractional")
        species = str(site.get("label") or site.get("species") or site.get("element") or "?")
        if not isinstance(frac, list | tuple) or len(frac) != 3:
            continue
        colour = colours.setdefault(species, _COLOURS[len(colours) % len(_COLOURS)])
        x, y = fit(cart([float(v) for v in frac]))
        drawing.sites.append((x, y, species, colour))
    return drawing


def _number(text: str) -> float:
    return float(text.split("(")[0])  # CIF writes uncertainties as 0.123(4)


def cif_sites(text: str, *, limit: int = 200) -> list[dict[str, Any]]:
    """The atom sites of a CIF's `_atom_site_` loop (species and fractional coordinates).

    Just enough CIF to draw a cell: one loop, whitespace-separated values, quotes honoured.
    Anything it cannot read gives no sites rather than an error.
    """
    lines = [line.strip() for line in text.splitlines()]
    for i, line in enumerate(lines):
        if (
            line != "loop_"
            or not lines[i + 1 : i + 2]
            or not lines[i + 1].startswith("_atom_site_")
        ):
            continue
        tags: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].startswith("_"):
            tags.append(lines[j].split()[0])
            j += 1
        try:
            fx, fy, fz = (tags.index(f"_atom_site_fract_{a}") for a in "xyz")
        except ValueError:
            return []
        kind = next(
            (tags.index(t) for t in ("_atom_site_type_symbol", "_atom_site_label") if t in tags),
            None,
        )
        sites: list[dict[str, Any]] = []
        while j < len(lines) and lines[j] and not lines[j].startswith(("_", "loop_", "data_")):
            try:
                values = shlex.split(lines[j])
                row = {
                    "species": values[kind] if kind is not None else "?",
                    "abc": [round(_number(values[n]), 5) for n in (fx, fy, fz)],
                }
            except (ValueError, IndexError):
                return []
            sites.append(row)
            j += 1
            if len(sites) >= limit:
                break
        return sites
    return []


def find_structure(
    content: Mapping[str, Any], extra_sites: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any] | None:
    """The lattice and sites (the record's own, else `extra_sites`) of a record with a cell."""
    block = content.get("crystal_structure") or content.get("structure") or {}
    lattice = block.get("lattice") if isinstance(block, Mapping) else None
    if not isinstance(lattice, Mapping):
        return None
    try:
        sites = [s for s in block.get("sites") or [] if isinstance(s, Mapping)] or list(extra_sites)
        drawing = draw_cell(lattice, sites)
    except (KeyError, TypeError, ValueError):
        return None
    return {"lattice": dict(lattice), "sites": sites, "drawing": drawing, "block": dict(block)}
