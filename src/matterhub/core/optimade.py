"""OPTIMADE's structure properties of an MDF record: formulas, ratios, periodicity (pure).

The indexer adds `structure_properties(record)` to every record holding an ordered crystal
structure or molecule, under the key `optimade`, so that an OPTIMADE filter on `nelements` or
`chemical_formula_reduced` runs inside the search query like any other field.
"""

from __future__ import annotations

import itertools
import math
import re
import string
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "INDEX_KEY",
    "anonymous_formula",
    "element_counts",
    "hill_formula",
    "reduced_counts",
    "reduced_formula",
    "structure_properties",
]

INDEX_KEY = "optimade"
"""The key of the block the indexer adds to structure records."""

_TERM = re.compile(r"([A-Z][a-z]{0,2})\s*(\d*\.?\d*)")


def element_counts(formula: str) -> dict[str, int] | None:
    """Whole numbers of each element in a formula such as `Fe4 O6` (None: fractional or empty)."""
    counts: dict[str, int] = {}
    rest = formula.replace(" ", "")
    position = 0
    for match in _TERM.finditer(rest):
        if match.start() != position:
            return None  # parentheses, charges, anything but element + count
        position = match.end()
        amount = float(match.group(2)) if match.group(2) else 1.0
        if amount <= 0 or not amount.is_integer():
            return None
        counts[match.group(1)] = counts.get(match.group(1), 0) + int(amount)
    if position != len(rest) or not counts:
        return None
    return counts


def reduced_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """Counts divided by their greatest common divisor."""
    divisor = math.gcd(*counts.values())
    return {element: n // divisor for element, n in counts.items()}


def _written(pairs: Iterator[tuple[str, int]] | list[tuple[str, int]]) -> str:
    return "".join(f"{symbol}{n if n != 1 else ''}" for symbol, n in pairs)


def reduced_formula(counts: Mapping[str, int]) -> str:
    """`chemical_formula_reduced`: alphabetical, divided by the GCD, ones omitted."""
    return _written(sorted(reduced_counts(counts).items()))


def hill_formula(counts: Mapping[str, int]) -> str:
    """Hill order: C, then H, then the rest alphabetically (all alphabetical without C)."""
    if "C" in counts:
        order = sorted(counts, key=lambda el: {"C": "0", "H": "1"}.get(el, el))
    else:
        order = sorted(counts)
    return _written([(el, counts[el]) for el in order])


def _anonymous_symbols() -> Iterator[str]:
    for size in itertools.count(1):
        for letters in itertools.product(string.ascii_lowercase, repeat=size):
            yield letters[0].upper() + "".join(letters[1:])


def anonymous_formula(counts: Mapping[str, int]) -> str:
    """`chemical_formula_anonymous`: reduced proportions, largest first, as A, B, C, …"""
    amounts = sorted(reduced_counts(counts).values(), reverse=True)
    return _written(list(zip(_anonymous_symbols(), amounts, strict=False)))


def structure_properties(
    record: Mapping[str, Any], *, id: str, immutable_id: str, last_modified: str
) -> dict[str, Any] | None:
    """The OPTIMADE properties of a record with an ordered crystal structure or molecule.

    None for anything else: records without a structure, disordered cells (partial occupancy
    gives fractional counts) and records whose formula and atom count disagree.
    """
    material = record.get("material")
    crystal = record.get("crystal_structure")
    molecule = record.get("molecule")
    block = crystal if isinstance(crystal, dict) else molecule
    if not isinstance(material, dict) or not isinstance(block, dict):
        return None
    if isinstance(crystal, dict) and crystal.get("is_ordered") is False:
        return None
    counts = element_counts(str(material.get("formula") or material.get("composition") or ""))
    nsites = block.get("number_of_atoms")
    if counts is None or not isinstance(nsites, int) or sum(counts.values()) != nsites:
        return None
    periodic = isinstance(crystal, dict)
    elements = sorted(counts)
    out: dict[str, Any] = {
        "id": id,
        "immutable_id": immutable_id,
        "last_modified": last_modified,
        "elements": elements,
        "nelements": len(elements),
        "elements_ratios": [counts[el] / nsites for el in elements],
        "chemical_formula_reduced": reduced_formula(counts),
        # A molecule's own formula is its most relevant unit; a crystal's is the reduced one.
        "chemical_formula_hill": hill_formula(counts if not periodic else reduced_counts(counts)),
        "chemical_formula_anonymous": anonymous_formula(counts),
        "chemical_formula_descriptive": _written(list(counts.items())),
        "nsites": nsites,
        "dimension_types": [1, 1, 1] if periodic else [0, 0, 0],
        "nperiodic_dimensions": 3 if periodic else 0,
        "structure_features": [],
    }
    number = crystal.get("space_group_number") if isinstance(crystal, dict) else None
    if isinstance(number, int) and 1 <= number <= 230:
        out["space_group_it_number"] = number
    return out
