"""The Δ-learning data: 148 G2 molecules, experimental atomization energies and cheap levels.

Molecules
    The G2-1 (55) and G2-2 (93) molecules of ASE (``ase.data.g2_1.molecule_names`` followed by
    ``ase.data.g2_2.molecule_names``: 148, this fixed order). Geometries are ASE's, which are the
    G2/97 MP2(full)/6-31G(d) optimized structures (Å). ``atoms.info["name"]`` is the G2 key.
    Spin multiplicity 2S+1 comes from ASE's ``magmoms`` (2S = their sum; closed shell if none).

Accurate reference: experimental atomization energy De (kcal/mol), from ASE's G2 tables
    ``De = −ΔHf298(mol) + ZPE(mol) + [H298−H0](mol) + Σ_atoms (ΔHf0(atom) − [H298−H0](element))``

    * ``ΔHf298(mol)``: ``data[name]["enthalpy"]``, experimental enthalpy of formation at 298 K,
      kcal/mol (Staroverov et al., J. Chem. Phys. 119, 12129 (2003)).
    * ``ZPE(mol)``: ``data[name]["ZPE"]``, zero-point energy, kcal/mol (B3LYP vibrations, same
      source); adding it turns D0 into the electronic (bottom-of-the-well) De.
    * ``[H298−H0](mol)``: ``data[name]["thermal correction"]``, kcal/mol (same source).
    * ``ΔHf0(atom)``: ``data[symbol]["enthalpy"]`` for an atom, experimental enthalpy of formation
      of the gaseous atom at 0 K, kcal/mol (Curtiss et al., J. Chem. Phys. 106, 1063 (1997)).
    * ``[H298−H0](element)``: ``data[symbol]["thermal correction"]``, the thermal correction of
      the element in its standard state, kcal/mol (same source), which brings ΔHf298(mol) to 0 K.

    That is D0 = Σ ΔHf0(atoms) − ΔHf0(mol), ΔHf0(mol) = ΔHf298(mol) − [H298−H0](mol) + Σ
    [H298−H0](elements), and De = D0 + ZPE. ASE's own ``g2_1.get_atomization_energy`` is this
    formula but covers only G2-1 (KeyError for G2-2 names such as C6H6); the test checks the two
    agree on G2-1.

Cheap level: GFN2-xTB atomization energy (kcal/mol) with tblite's ASE calculator
    ``tblite.ase.TBLite(method="GFN2-xTB")``, ``De = Σ E(atom) − E(mol)``. Molecules take their
    multiplicity; isolated atoms take ``multiplicity=2S+1`` **and** ``spin_polarization=1.0``
    (without spin polarization the high-spin C/N/O atoms are too high in energy and De far too
    large). Open-shell molecules are spin-polarized too (the same Hamiltonian as their atoms);
    closed shells are unaffected by it. Energies in eV from ASE, converted to kcal/mol with
    ``ase.units`` (``units.kcal / units.mol``).

Middle level: B3LYP/6-31G* atomization energies from ``b3lyp.py`` (``data/b3lyp.csv``),
    merged in by ``generate()`` (empty where not computed).

Files (``data/``): ``molecules.extxyz`` (the structures, order = the CSV's) and ``energies.csv``
(``name,formula,n_atoms,reference_De_kcal_mol,xtb_De_kcal_mol,b3lyp_De_kcal_mol``).

Regenerate: ``PYTHONPATH=$PWD python -m examples.delta_learning.data`` (a few seconds).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
import pandas as pd
from ase import Atoms, units
from ase.data import g2_1, g2_2
from examples.delta_learning import xtb_atomization

__all__ = [
    "ATOM_MULTIPLICITY",
    "B3LYP_CSV",
    "COLUMNS",
    "DATA_DIR",
    "ENERGIES_CSV",
    "KCAL_MOL",
    "MOLECULES_XYZ",
    "g2_molecules",
    "generate",
    "load",
    "molecule_names",
    "multiplicity",
    "reference_de",
    "xtb_atom_energy",
    "xtb_de",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
MOLECULES_XYZ = DATA_DIR / "molecules.extxyz"
ENERGIES_CSV = DATA_DIR / "energies.csv"
B3LYP_CSV = DATA_DIR / "b3lyp.csv"
COLUMNS = [
    "name",
    "formula",
    "n_atoms",
    "reference_De_kcal_mol",
    "xtb_De_kcal_mol",
    "b3lyp_De_kcal_mol",
]
#: 1 kcal/mol in ASE's unit of energy (eV); E_eV / KCAL_MOL is kcal/mol.
KCAL_MOL = units.kcal / units.mol

# Atoms come from G2-1 where present (both tables agree there); B and Al only occur in G2-2.
_ATOM_DATA: dict[str, dict[str, Any]] = {**g2_2.data, **g2_1.data}
_MOLECULE_DATA: dict[str, dict[str, Any]] = {
    **{n: g2_1.data[n] for n in g2_1.molecule_names},
    **{n: g2_2.data[n] for n in g2_2.molecule_names},
}


def molecule_names() -> list[str]:
    """The 148 G2 keys in the fixed order: G2-1's molecules, then G2-2's."""
    return list(g2_1.molecule_names) + list(g2_2.molecule_names)


def _spin2(magmoms: list[float] | None) -> int:
    """2S from ASE's initial magnetic moments (None: closed shell)."""
    return 0 if magmoms is None else round(sum(magmoms))


def multiplicity(name: str) -> int:
    """Spin multiplicity 2S+1 of a G2 molecule or atom (from ASE's magmoms)."""
    entry = _MOLECULE_DATA.get(name) or _ATOM_DATA[name]
    return _spin2(entry["magmoms"]) + 1


def _molecule(name: str) -> Atoms:
    entry = _MOLECULE_DATA[name]
    atoms = Atoms(entry["symbols"], positions=entry["positions"])
    atoms.info["name"] = name
    return atoms


#: Ground-state multiplicity 2S+1 of each isolated atom occurring in the 148 molecules.
ATOM_MULTIPLICITY: dict[str, int] = {
    symbol: _spin2(_ATOM_DATA[symbol]["magmoms"]) + 1
    for symbol in sorted({s for n in molecule_names() for s in _molecule(n).get_chemical_symbols()})
}


def g2_molecules() -> list[Atoms]:
    """The 148 molecules as ASE Atoms (ASE's geometries), ``info["name"]`` = the G2 key."""
    return [_molecule(name) for name in molecule_names()]


def reference_de(name: str) -> float:
    """Experimental De (kcal/mol) of a G2 molecule from ASE's tables (see the module docstring)."""
    mol = _MOLECULE_DATA[name]
    atoms = _molecule(name).get_chemical_symbols()
    atom_terms = sum(_ATOM_DATA[s]["enthalpy"] - _ATOM_DATA[s]["thermal correction"] for s in atoms)
    return float(-mol["enthalpy"] + mol["ZPE"] + mol["thermal correction"] + atom_terms)


def xtb_atom_energy(symbol: str) -> float:
    """GFN2-xTB energy (eV) of an isolated atom: its ground-state multiplicity, spin-polarized."""
    return xtb_atomization.atom_energy(symbol)


def xtb_de(atoms: Atoms) -> float:
    """GFN2-xTB atomization energy De (kcal/mol) of a neutral molecule (`xtb_atomization.xtb_de`,
    the servable's own code). The multiplicity is ``info["multiplicity"]`` if set, else the G2 one
    for ``info["name"]``, else singlet/doublet by electron count.
    """
    if "multiplicity" not in atoms.info and atoms.info.get("name") in _MOLECULE_DATA:
        atoms = atoms.copy()
        atoms.info["multiplicity"] = multiplicity(atoms.info["name"])
    return xtb_atomization.xtb_de(atoms)


def _b3lyp_column(names: list[str], path: Path) -> list[float]:
    """B3LYP De per name from ``b3lyp.py``'s table (NaN where not computed)."""
    if not path.exists():
        return [math.nan] * len(names)
    table = pd.read_csv(path).set_index("name")["b3lyp_De_kcal_mol"]
    return [float(table[n]) if n in table.index else math.nan for n in names]


def generate(out_dir: Path = DATA_DIR, b3lyp_csv: Path = B3LYP_CSV) -> pd.DataFrame:
    """Write ``molecules.extxyz`` and ``energies.csv`` to ``out_dir``; return the table."""
    molecules = g2_molecules()
    names = [m.info["name"] for m in molecules]
    table = pd.DataFrame(
        {
            "name": names,
            "formula": [m.get_chemical_formula() for m in molecules],
            "n_atoms": [len(m) for m in molecules],
            "reference_De_kcal_mol": [reference_de(n) for n in names],
            "xtb_De_kcal_mol": [xtb_de(m) for m in molecules],
            "b3lyp_De_kcal_mol": _b3lyp_column(names, b3lyp_csv),
        },
        columns=COLUMNS,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    for atoms in molecules:
        atoms.info["multiplicity"] = multiplicity(atoms.info["name"])
    ase.io.write(out_dir / MOLECULES_XYZ.name, molecules, format="extxyz")
    table.to_csv(out_dir / ENERGIES_CSV.name, index=False, float_format="%.6f")
    return table


def load(data_dir: Path = DATA_DIR) -> tuple[list[Atoms], pd.DataFrame]:
    """The structures and the energy table (same order); energies in kcal/mol."""
    xyz, csv_path = data_dir / MOLECULES_XYZ.name, data_dir / ENERGIES_CSV.name
    if not xyz.exists() or not csv_path.exists():
        raise FileNotFoundError(f"no data in {data_dir}: python -m examples.delta_learning.data")
    molecules = ase.io.read(xyz, index=":", format="extxyz")
    table = pd.read_csv(csv_path)
    names = [str(m.info["name"]) for m in molecules]
    if names != list(table["name"]):
        raise ValueError(f"{xyz.name} and {csv_path.name} disagree on the molecules or their order")
    return molecules, table


def main() -> None:
    """Command line: regenerate the data files and print a summary."""
    parser = argparse.ArgumentParser(description="Write the Δ-learning data files.")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output directory")
    parser.add_argument("--b3lyp", type=Path, default=B3LYP_CSV, help="b3lyp.py's table")
    args = parser.parse_args()
    start = time.perf_counter()
    table = generate(args.out, args.b3lyp)
    error = table["xtb_De_kcal_mol"] - table["reference_De_kcal_mol"]
    print(f"{len(table)} molecules in {time.perf_counter() - start:.1f} s -> {args.out}")
    print(f"GFN2-xTB − reference: MAE {np.abs(error).mean():.2f} kcal/mol, mean {error.mean():.2f}")
    b3lyp = table["b3lyp_De_kcal_mol"] - table["reference_De_kcal_mol"]
    if b3lyp.notna().any():
        print(f"B3LYP − reference ({b3lyp.notna().sum()} molecules): MAE {b3lyp.abs().mean():.2f}")


if __name__ == "__main__":
    main()
