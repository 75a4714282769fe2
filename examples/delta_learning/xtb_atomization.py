"""GFN2-xTB atomization energies: the cheap level of the Δ-learning use case, and its servable.

One module for both uses: `data.py` computes the `xtb_De_kcal_mol` column with `xtb_de`, and
the hub serves `atomization` (published as `xtb_atomization`) in an environment holding only
ase, numpy and tblite, so the served value is the tabulated one.

De = Σ_atoms E(atom) − E(molecule), in kcal/mol (1 kcal/mol = `KCAL_MOL` eV). Isolated atoms are
computed at their ground-state multiplicity 2S+1 (from ASE's G2 atom data) and spin-polarized
(`spin_polarization=1.0`: without it the triplet C and O atoms come out far too high); so is an
open-shell molecule, so that molecule and atoms share one Hamiltonian. A molecule's multiplicity
is `atoms.info["multiplicity"]` when given (extended XYZ carries it), else the lowest its electron
count allows (singlet or doublet).
"""

from __future__ import annotations

import functools
import io
from typing import Any

from ase import Atoms, units
from ase.data import chemical_symbols, g2_1, g2_2

__all__ = ["ATOM_MULTIPLICITY", "KCAL_MOL", "atom_energy", "atomization", "xtb_de", "xtb_energy"]

#: 1 kcal/mol in ASE's unit of energy (eV).
KCAL_MOL = units.kcal / units.mol
_ATOMS: dict[str, dict[str, Any]] = {**g2_2.data, **g2_1.data}
#: Ground-state multiplicity of each isolated atom ASE's G2 tables hold (H, Li, …, Cl).
ATOM_MULTIPLICITY: dict[str, int] = {
    name: round(sum(entry["magmoms"] or [0])) + 1
    for name, entry in _ATOMS.items()
    if name in chemical_symbols and entry["symbols"] == name
}
_MAX_ATOMS = 500


def xtb_energy(atoms: Atoms, multiplicity: int) -> float:
    """GFN2-xTB total energy (eV); open shells spin-polarized, closed shells not."""
    from tblite.ase import TBLite

    params: dict[str, Any] = {"method": "GFN2-xTB", "multiplicity": multiplicity, "verbosity": 0}
    if multiplicity > 1:
        params["spin_polarization"] = 1.0
    atoms = atoms.copy()
    atoms.calc = TBLite(**params)
    return float(atoms.get_potential_energy())


@functools.cache
def atom_energy(symbol: str) -> float:
    """GFN2-xTB energy (eV) of an isolated atom at its ground-state multiplicity."""
    if symbol not in ATOM_MULTIPLICITY:
        raise ValueError(f"no reference atom for {symbol}: known are {sorted(ATOM_MULTIPLICITY)}")
    return xtb_energy(Atoms(symbol), ATOM_MULTIPLICITY[symbol])


def _multiplicity(atoms: Atoms) -> int:
    if "multiplicity" in atoms.info:
        return int(atoms.info["multiplicity"])
    return 1 + int(atoms.get_atomic_numbers().sum()) % 2


def xtb_de(atoms: Atoms) -> float:
    """GFN2-xTB atomization energy De (kcal/mol) of a neutral molecule."""
    symbols = atoms.get_chemical_symbols()
    atoms_total = sum(atom_energy(s) for s in symbols)
    return (atoms_total - xtb_energy(atoms, _multiplicity(atoms))) / KCAL_MOL


def read_molecule(structure: str) -> Atoms:
    """A molecule from extended XYZ (or plain XYZ) or ASE JSON text, checked and bounded."""
    import ase.io

    text = structure.strip()
    fmt = "json" if text.startswith("{") else "extxyz"
    atoms = ase.io.read(io.StringIO(text), format=fmt)
    if not isinstance(atoms, Atoms) or len(atoms) == 0:
        raise ValueError("the structure holds no atoms")
    if len(atoms) > _MAX_ATOMS:
        raise ValueError(f"{len(atoms)} atoms; this servable takes at most {_MAX_ATOMS}")
    if atoms.pbc.any():
        raise ValueError("a molecule is not periodic")
    return atoms


def atomization(structure: str) -> float:
    """The servable: a molecule as XYZ / extended XYZ text (or ASE JSON) → its GFN2-xTB De,
    kcal/mol."""
    return round(xtb_de(read_molecule(structure)), 6)


def annotate(structure: str) -> dict[str, Any]:
    """The pipeline's first step: the structure and its GFN2-xTB De (`{"structure", "cheap"}`),
    what `delta_atomization` takes."""
    return {"structure": structure, "cheap": round(xtb_de(read_molecule(structure)), 6)}
