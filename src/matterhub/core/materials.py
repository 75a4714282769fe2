"""Materials argument values: formulas and crystal/molecule structures, parsed in pure Python.

The `structure` and `composition` servable types validate with these parsers, so the server and a
client without ASE or pymatgen reach the same verdict. They read only what validation needs: the
species of every site and whether the structure is periodic. CIF, POSCAR/CONTCAR, XYZ, ASE's JSON
(`ase.io.jsonio`, a database row or `Atoms.todict()`) and pymatgen's `as_dict()` are understood.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ELEMENTS",
    "STRUCTURE_FORMATS",
    "ParsedStructure",
    "parse_formula",
    "parse_structure",
]

# fmt: off
ELEMENTS = (
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl",
    "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As",
    "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In",
    "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb",
    "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl",
    "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk",
    "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh",
    "Fl", "Mc", "Lv", "Ts", "Og",
)
# fmt: on
_SYMBOLS = frozenset(ELEMENTS)
STRUCTURE_FORMATS = ("cif", "poscar", "xyz", "ase-json", "pymatgen-json")
_TOKEN = re.compile(r"([A-Z][a-z]?|\(|\)|\[|\]|\d+(?:\.\d+)?|\.\d+|[·*])")


@dataclass(frozen=True, slots=True)
class ParsedStructure:
    """What validation needs from a structure: its format, site species and periodicity."""

    format: str
    species: tuple[str, ...]
    periodic: bool

    @property
    def elements(self) -> frozenset[str]:
        """The distinct elements present."""
        return frozenset(self.species)


def _element(symbol: str) -> str:
    if symbol not in _SYMBOLS:
        raise ValueError(f"{symbol!r} is not a chemical element")
    return symbol


def parse_formula(formula: str) -> dict[str, float]:
    """`'Fe2O3'`, `'Ca(OH)2'`, `'Li0.5CoO2'` → element amounts; raises ValueError when malformed."""
    text = formula.replace(" ", "")
    if not text:
        raise ValueError("the formula is empty")
    tokens = _TOKEN.findall(text)
    if "".join(tokens) != text:
        raise ValueError(f"{formula!r} is not a chemical formula")
    stack: list[dict[str, float]] = [{}]
    last: dict[str, float] | str | None = None
    for token in tokens:
        if token in "([":
            stack.append({})
            last = None
        elif token in ")]":
            if len(stack) == 1:
                raise ValueError(f"unbalanced parenthesis in {formula!r}")
            group = stack.pop()
            _add(stack[-1], group, 1.0)
            last = group
        elif token in "·*":
            last = None
        elif token[0].isdigit() or token[0] == ".":
            if last is None:
                raise ValueError(f"a count without an element in {formula!r}")
            count = float(token)
            if isinstance(last, str):
                stack[-1][last] += count - 1
            else:
                _add(stack[-1], last, count - 1)
            last = None
        else:
            symbol = _element(token)
            stack[-1][symbol] = stack[-1].get(symbol, 0.0) + 1
            last = symbol
    if len(stack) != 1:
        raise ValueError(f"unbalanced parenthesis in {formula!r}")
    if not stack[0]:
        raise ValueError(f"{formula!r} names no element")
    return stack[0]


def _add(target: dict[str, float], group: dict[str, float], times: float) -> None:
    for symbol, amount in group.items():
        target[symbol] = target.get(symbol, 0.0) + amount * times


def parse_structure(value: Any, fmt: str | None = None) -> ParsedStructure:
    """Parse a structure given as text (CIF, POSCAR, XYZ) or JSON (ASE, pymatgen).

    Raises:
        ValueError: the value does not parse, or has no atoms.
    """
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
    fmt = fmt or _guess(value)
    parser = _PARSERS.get(fmt)
    if parser is None:
        raise ValueError(f"unknown structure format {fmt!r}; use one of {STRUCTURE_FORMATS}")
    parsed = parser(value)
    if not parsed.species:
        raise ValueError(f"the {fmt} structure has no atoms")
    return parsed


def _guess(value: Any) -> str:
    if isinstance(value, dict):
        return "pymatgen-json" if "sites" in value else "ase-json"
    if not isinstance(value, str):
        raise ValueError(f"a structure is text or a JSON object, not {type(value).__name__}")
    lines = [line for line in value.strip().splitlines() if line.strip()]
    if not lines:
        raise ValueError("the structure text is empty")
    if lines[0].lstrip().startswith("data_") or "_atom_site" in value:
        return "cif"
    if lines[0].strip().isdigit():
        return "xyz"
    return "poscar"


def _text(value: Any, fmt: str) -> list[str]:
    if not isinstance(value, str):
        raise ValueError(f"a {fmt} structure is text")
    return [line.strip() for line in value.strip().splitlines()]


def _xyz(value: Any) -> ParsedStructure:
    lines = _text(value, "xyz")
    try:
        count = int(lines[0])
    except ValueError:
        raise ValueError("an XYZ file starts with the number of atoms") from None
    rows = lines[2 : 2 + count]
    if len(rows) != count:
        raise ValueError(f"the XYZ header says {count} atoms but {len(rows)} lines follow")
    species = []
    for number, row in enumerate(rows, start=3):
        parts = row.split()
        if len(parts) < 4:
            raise ValueError(f"XYZ line {number} needs a symbol and three coordinates")
        _floats(parts[1:4], f"XYZ line {number}")
        species.append(_element(parts[0].capitalize()))
    periodic = "Lattice=" in lines[1] if len(lines) > 1 else False
    return ParsedStructure("xyz", tuple(species), periodic)


def _floats(parts: list[str], where: str) -> list[float]:
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"{where}: expected numbers, got {' '.join(parts)!r}") from None


def _poscar(value: Any) -> ParsedStructure:
    lines = _text(value, "poscar")
    if len(lines) < 7:
        raise ValueError("a POSCAR needs a comment, a scale, three lattice vectors and counts")
    _floats(lines[1].split()[:1], "POSCAR scale (line 2)")
    for i in (2, 3, 4):
        if len(_floats(lines[i].split()[:3], f"POSCAR lattice (line {i + 1})")) != 3:
            raise ValueError(f"POSCAR lattice (line {i + 1}) needs three numbers")
    names = lines[5].split()
    if all(n.isdigit() for n in names):  # VASP 4: species only in the comment line
        counts_line, names = names, lines[0].split()
    else:
        counts_line = lines[6].split()
    try:
        counts = [int(c) for c in counts_line]
    except ValueError:
        raise ValueError("POSCAR atom counts must be integers") from None
    if len(names) < len(counts):
        raise ValueError("POSCAR names fewer species than it counts")
    species: list[str] = []
    for name, count in zip(names, counts, strict=False):
        species += [_element(name.split("_")[0].split("/")[0])] * count
    return ParsedStructure("poscar", tuple(species), True)


def _cif(value: Any) -> ParsedStructure:
    lines = _text(value, "cif")
    species: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].lower() == "loop_":
            headers: list[str] = []
            i += 1
            while i < len(lines) and lines[i].startswith("_"):
                headers.append(lines[i].split()[0].lower())
                i += 1
            column = next(
                (
                    headers.index(h)
                    for h in ("_atom_site_type_symbol", "_atom_site_label")
                    if h in headers
                ),
                None,
            )
            while i < len(lines) and lines[i] and not lines[i].startswith(("_", "loop_", "data_")):
                if column is not None:
                    cells = lines[i].split()
                    if len(cells) != len(headers):
                        raise ValueError(
                            f"CIF atom row {cells!r} has {len(cells)} of {len(headers)} columns"
                        )
                    symbol = re.match(r"[A-Z][a-z]?", cells[column])
                    if symbol is None:
                        raise ValueError(f"CIF site {cells[column]!r} names no element")
                    species.append(_element(symbol.group(0)))
                i += 1
            continue
        i += 1
    periodic = any(line.startswith("_cell_length_a") for line in lines)
    return ParsedStructure("cif", tuple(species), periodic)


def _ase(value: Any) -> ParsedStructure:
    if not isinstance(value, dict):
        raise ValueError("ASE JSON is an object")
    row = value
    if "ids" in value and value.get("ids"):  # an ase.db JSON file: take the first row
        row = value.get(str(value["ids"][0])) or {}
    numbers = row.get("numbers")
    if isinstance(
        numbers, dict
    ):  # ase.io.jsonio encodes arrays as {"__ndarray__": [shape, dtype, data]}
        numbers = (numbers.get("__ndarray__") or [None, None, []])[2]
    if not isinstance(numbers, list):
        raise ValueError("ASE JSON has no 'numbers' list")
    species = []
    for n in numbers:
        if not isinstance(n, int) or not 1 <= n <= len(ELEMENTS):
            raise ValueError(f"{n!r} is not an atomic number")
        species.append(ELEMENTS[n - 1])
    pbc = row.get("pbc", False)
    if isinstance(pbc, dict):
        pbc = (pbc.get("__ndarray__") or [None, None, []])[2]
    periodic = any(pbc) if isinstance(pbc, list) else bool(pbc)
    return ParsedStructure("ase-json", tuple(species), periodic)


def _pymatgen(value: Any) -> ParsedStructure:
    if not isinstance(value, dict) or not isinstance(value.get("sites"), list):
        raise ValueError("pymatgen JSON has a 'sites' list")
    species = []
    for i, site in enumerate(value["sites"]):
        entries = site.get("species") if isinstance(site, dict) else None
        if not entries or not isinstance(entries, list):
            raise ValueError(f"pymatgen site {i} has no species")
        for entry in entries:
            symbol = entry.get("element") if isinstance(entry, dict) else None
            species.append(_element(str(symbol)))
    return ParsedStructure("pymatgen-json", tuple(species), "lattice" in value)


_PARSERS = {
    "cif": _cif,
    "poscar": _poscar,
    "xyz": _xyz,
    "ase-json": _ase,
    "pymatgen-json": _pymatgen,
}
