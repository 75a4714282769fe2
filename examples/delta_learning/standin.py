"""Development stand-in for the Δ-learning data: 148 G2 molecules, experimental De, a cheap level.

The real inputs come from `examples/delta_learning/data.py` (the data branch). This module lets
the model be built and tested without them:

- molecules: `ase.data.g2_1` + `g2_2` (148 molecules, ASE geometries, G2 key in `info["name"]`);
- reference: experimental atomization energies De (kcal/mol) from the G2 thermochemistry,
  De = −ΔHf298(mol) + ZPE(mol) + [H298−H0](mol) + Σ_atoms (ΔHf0(atom) − [H298−H0](element));
- cheap level, one of
  - ``"elements"``: a per-element linear fit of De on element counts (least squares over all 148
    molecules) — no structure at all, the crudest honest stand-in;
  - ``"xtb"``: GFN2-xTB atomization energies with tblite, if it is installed (the data branch's
    cheap level; computed here only to develop against realistic numbers).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from ase import Atoms
from ase.data import g2_1, g2_2

__all__ = ["atomization_energies", "cheap_elements", "cheap_xtb", "molecules"]

HARTREE_KCAL = 627.509474


def _tables() -> tuple[dict, dict]:
    """Molecule entries (both sets, G2 order) and atom entries (by symbol)."""
    mols: dict = {}
    atoms: dict = {}
    for module in (g2_1, g2_2):
        for name in module.molecule_names:
            mols[name] = module.data[name]
        for name in module.atom_names:
            atoms[name] = module.data[name]
    return mols, atoms


def molecules() -> list[Atoms]:
    """The 148 G2 molecules (g2_1 then g2_2, ASE order), `info["name"]` = the G2 key."""
    mols, _ = _tables()
    out = []
    for name, entry in mols.items():
        atoms = Atoms(entry["symbols"], positions=entry["positions"])
        atoms.info["name"] = name
        out.append(atoms)
    return out


def atomization_energies(atoms_list: list[Atoms]) -> np.ndarray:
    """Experimental De (kcal/mol) of each molecule from the G2 data (see the module docstring)."""
    mols, atom_data = _tables()
    values = []
    for atoms in atoms_list:
        entry = mols[atoms.info["name"]]
        de = -entry["enthalpy"] + entry["ZPE"] + entry["thermal correction"]
        for symbol in atoms.get_chemical_symbols():
            de += atom_data[symbol]["enthalpy"] - atom_data[symbol]["thermal correction"]
        values.append(de)
    return np.asarray(values, dtype=float)


def cheap_elements(atoms_list: list[Atoms], reference: np.ndarray) -> np.ndarray:
    """A structure-blind cheap level: De fitted as a sum of per-element contributions."""
    symbols = sorted({s for a in atoms_list for s in a.get_chemical_symbols()})
    counts = np.array(
        [[Counter(a.get_chemical_symbols())[s] for s in symbols] for a in atoms_list], dtype=float
    )
    coef, *_ = np.linalg.lstsq(counts, reference, rcond=None)
    return counts @ coef


def cheap_xtb(atoms_list: list[Atoms]) -> np.ndarray:
    """GFN2-xTB De (kcal/mol) with tblite; atoms spin-polarised at their G2 multiplicity."""
    from tblite.ase import TBLite

    _, atom_data = _tables()

    def energy(atoms: Atoms, multiplicity: int = 1) -> float:
        kwargs = {"method": "GFN2-xTB", "verbosity": 0}
        if multiplicity > 1:
            kwargs |= {"multiplicity": multiplicity, "spin_polarization": 1.0}
        atoms = atoms.copy()
        atoms.calc = TBLite(**kwargs)
        return atoms.get_potential_energy()  # eV

    ev_kcal = 23.060547830619026
    atom_energy: dict[str, float] = {}
    values = []
    for atoms in atoms_list:
        total = 0.0
        for symbol in atoms.get_chemical_symbols():
            if symbol not in atom_energy:
                unpaired = round(sum(atom_data[symbol]["magmoms"] or [0.0]))
                atom_energy[symbol] = energy(Atoms(symbol), multiplicity=unpaired + 1)
            total += atom_energy[symbol]
        values.append((total - energy(atoms)) * ev_kcal)
    return np.asarray(values, dtype=float)
