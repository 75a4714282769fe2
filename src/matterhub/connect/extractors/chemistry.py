"""Translations from pymatgen / ASE objects to MDF `material`, `crystal_structure`, `molecule`."""

from __future__ import annotations

import re
import warnings
from typing import Any

from matterhub.connect.extractors.base import Record, require

__all__ = [
    "ASE_BIBTEX",
    "PYMATGEN_BIBTEX",
    "SPGLIB_BIBTEX",
    "atoms_blocks",
    "composition_block",
    "molecule_block",
    "structure_blocks",
]

SYMPREC = 0.01
_ONES = re.compile(r"(?<=[A-Za-z])1(?![0-9])")
PYMATGEN_BIBTEX = """@article{ong2013pymatgen,
  title={Python Materials Genomics (pymatgen): A robust, open-source python library
         for materials analysis},
  author={Ong, Shyue Ping and Richards, William Davidson and Jain, Anubhav and
          Hautier, Geoffroy and Kocher, Michael and Cholia, Shreyas and Gunter, Dan and
          Chevrier, Vincent L. and Persson, Kristin A. and Ceder, Gerbrand},
  journal={Computational Materials Science}, volume={68}, pages={314--319}, year={2013},
  doi={10.1016/j.commatsci.2012.10.028}
}"""
ASE_BIBTEX = """@article{larsen2017ase,
  title={The atomic simulation environment---a Python library for working with atoms},
  author={Larsen, Ask Hjorth and others},
  journal={Journal of Physics: Condensed Matter}, volume={29}, number={27},
  pages={273002}, year={2017},
  doi={10.1088/1361-648X/aa680e}
}"""
SPGLIB_BIBTEX = """@article{togo2024spglib,
  title={Spglib: a software library for crystal symmetry search},
  author={Togo, Atsushi and Shinohara, Kohei and Tanaka, Isao},
  journal={Science and Technology of Advanced Materials: Methods}, volume={4}, number={1},
  pages={2384822}, year={2024}, doi={10.1080/27660400.2024.2384822}
}"""


def _r(value: float, digits: int = 6) -> float:
    return round(float(value), digits)


def composition_block(composition: Any) -> Record:
    """The `material` block of a pymatgen Composition (oxidation states dropped)."""
    composition = composition.element_composition
    fractions = composition.fractional_composition.get_el_amt_dict()
    formula = composition.formula
    return {
        "composition": _ONES.sub("", formula.replace(" ", "")),
        "formula": formula,
        "reduced_formula": composition.reduced_formula,
        "elements": sorted(str(el) for el in composition.elements),
        "elemental_proportions": {el: _r(x) for el, x in sorted(fractions.items())},
        "chemical_system": composition.chemical_system,
    }


def structure_blocks(structure: Any, *, symmetry: bool = True) -> Record:
    """`material` and `crystal_structure` of a pymatgen Structure (spglib symmetry when ordered)."""
    lattice = structure.lattice
    crystal: Record = {
        "number_of_atoms": len(structure),
        "volume": _r(lattice.volume, 4),
        "stoichiometry": structure.composition.reduced_composition.anonymized_formula,
        "lattice": {
            "a": _r(lattice.a, 5),
            "b": _r(lattice.b, 5),
            "c": _r(lattice.c, 5),
            "alpha": _r(lattice.alpha, 4),
            "beta": _r(lattice.beta, 4),
            "gamma": _r(lattice.gamma, 4),
        },
        "density": _r(structure.density, 4),
        "is_ordered": bool(structure.is_ordered),
    }
    if symmetry and structure.is_ordered:
        analyzer = require("pymatgen.symmetry.analyzer", "materials").SpacegroupAnalyzer
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # spglib warns on near-degenerate cells
                sga = analyzer(structure, symprec=SYMPREC)
                crystal["space_group_number"] = sga.get_space_group_number()
                crystal["space_group_symbol"] = sga.get_space_group_symbol()
                crystal["crystal_system"] = sga.get_crystal_system()
            crystal["space_group_source"] = "spglib"
        except Exception:  # spglib gives up on some cells; the rest of the facts still stand
            pass
    return {"material": composition_block(structure.composition), "crystal_structure": crystal}


def molecule_block(symbols: list[str]) -> Record:
    """`material` and `molecule` of a non-periodic set of atoms (formula, molecular weight)."""
    composition = require("pymatgen.core", "materials").Composition("".join(symbols))
    molecule: Record = {
        "formula": composition.hill_formula.replace(" ", ""),
        "molecular_weight": _r(composition.weight, 4),
        "number_of_atoms": len(symbols),
    }
    return {"material": composition_block(composition), "molecule": molecule}


def add_rdkit(block: Record, atoms: Any) -> None:
    """Add SMILES / InChI to a molecule block when RDKit is importable (never required)."""
    try:
        from rdkit import Chem  # type: ignore[import-not-found,unused-ignore]
        from rdkit.Chem import rdDetermineBonds  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return
    try:
        xyz = f"{len(atoms)}\n\n" + "\n".join(
            f"{s} {x:.6f} {y:.6f} {z:.6f}"
            for s, (x, y, z) in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)
        )
        mol = Chem.MolFromXYZBlock(xyz)
        rdDetermineBonds.DetermineBonds(mol, charge=0)
        block["smiles"] = Chem.MolToSmiles(Chem.RemoveHs(mol))
        block["inchi"] = Chem.MolToInchi(mol)
        block["inchi_key"] = Chem.MolToInchiKey(mol)
    except Exception:  # bond perception fails on charged or odd geometries: leave the fields out
        return


def atoms_blocks(atoms: Any, *, symmetry: bool = True) -> Record:
    """MDF blocks of an ASE Atoms: crystal blocks when periodic, a molecule block otherwise."""
    if len(atoms) and atoms.pbc.any() and atoms.cell.rank == 3:
        adaptor = require("pymatgen.io.ase", "materials").AseAtomsAdaptor
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = adaptor.get_structure(atoms)
        return structure_blocks(structure, symmetry=symmetry)
    blocks = molecule_block(atoms.get_chemical_symbols())
    add_rdkit(blocks["molecule"], atoms)
    return blocks
