"""The periodic table's layout: where each element sits in an 18-column grid."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ELEMENTS", "Element", "table"]

# A table reads better than a 118-item list literal.
_TABLE = """
H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se
Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb
Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm
Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og
"""
_SYMBOLS = tuple(_TABLE.split())


@dataclass(frozen=True, slots=True)
class Element:
    """An element and its cell: grid row (1-7, 9-10 for the f-block) and column (1-18)."""

    number: int
    symbol: str
    row: int
    column: int


def _place(z: int) -> tuple[int, int]:
    """(row, column) of atomic number `z`; lanthanides and actinides go below the table."""
    if z <= 2:
        return 1, 1 if z == 1 else 18
    if z <= 18:
        period, start = (2, 3) if z <= 10 else (3, 11)
        offset = z - start
        return period, offset + 1 if offset < 2 else offset + 11
    if z <= 54:
        period, start = (4, 19) if z <= 36 else (5, 37)
        return period, z - start + 1
    period, start = (6, 55) if z <= 86 else (7, 87)
    offset = z - start
    if offset < 2:
        return period, offset + 1
    if offset <= 16:  # La-Lu / Ac-Lr: the f-block rows
        return period + 3, offset + 1
    return period, offset - 13


ELEMENTS: tuple[Element, ...] = tuple(
    Element(z, symbol, *_place(z)) for z, symbol in enumerate(_SYMBOLS, start=1)
)
"""All 118 elements in order of atomic number."""


def table(counts: dict[str, int]) -> list[tuple[Element, int]]:
    """Every element with its count (0 when absent)."""
    return [(e, counts.get(e.symbol, 0)) for e in ELEMENTS]
