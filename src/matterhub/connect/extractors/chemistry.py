"""Translations from pymatgen / ASE objects to MDF `material`, `crystal_structure`, `molecule`."""

from __future__ import annotations

import functools
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
    "spacegroup",
    "structure_blocks",
]

SYMPREC = 0.01
_AMU_PER_A3_IN_G_PER_CM3 = 1.66053906660
_SYSTEMS = [
    (2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"), (142, "tetragonal"),
    (167, "trigonal"), (194, "hexagonal"),
]  # fmt: skip
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


def _crystal_system(number: int) -> str:
    for top, name in _SYSTEMS:
        if number <= top:
            return name
    return "cubic"


@functools.lru_cache(maxsize=4096)
def _spacegroup(lattice: bytes, positions: bytes, numbers: bytes) -> tuple[int, str] | None:
    """spglib's space group of a cell given as raw float64/int32 bytes (cached: datasets repeat)."""
    np = require("numpy", "materials")
    spglib = require("spglib", "materials")
    cell = (
        np.frombuffer(lattice).reshape(3, 3),
        np.frombuffer(positions).reshape(-1, 3),
        np.frombuffer(numbers, dtype=np.int32),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # spglib warns on near-degenerate cells
        dataset = spglib.get_symmetry_dataset(cell, symprec=SYMPREC)
    if dataset is None:
        return None
    return int(dataset.number), str(dataset.international)


def spacegroup(structure: Any) -> tuple[int, str] | None:
    """(number, Hermann–Mauguin symbol) of an ordered pymatgen Structure, as SpacegroupAnalyzer.

    Calls spglib directly, once, on a cell rounded to 1e-6 (far below `SYMPREC`) so that
    the same structure met twice in a dataset costs one symmetry search.
    """
    np = require("numpy", "materials")
    kinds: dict[Any, int] = {}
    numbers = np.array([kinds.setdefault(s.specie, len(kinds) + 1) for s in structure], "int32")
    lattice = np.round(structure.lattice.matrix, 6).astype("float64")
    positions = np.round(np.mod(structure.frac_coords, 1.0), 6).astype("float64")
    try:
        return _spacegroup(lattice.tobytes(), positions.tobytes(), numbers.tobytes())
    except Exception:  # spglib gives up on some cells; the rest of the facts still stand
        return None


def structure_blocks(structure: Any, *, symmetry: bool = True) -> Record:
    """`material` and `crystal_structure` of a pymatgen Structure (spglib symmetry when ordered)."""
    lattice = structure.lattice
    composition = structure.composition
    volume = float(lattice.volume)
    crystal: Record = {
        "number_of_atoms": len(structure),
        "volume": _r(volume, 4),
        "stoichiometry": composition.reduced_composition.anonymized_formula,
        "lattice": {
            "a": _r(lattice.a, 5),
            "b": _r(lattice.b, 5),
            "c": _r(lattice.c, 5),
            "alpha": _r(lattice.alpha, 4),
            "beta": _r(lattice.beta, 4),
            "gamma": _r(lattice.gamma, 4),
        },
        # g/cm³ from amu/Å³ (what Structure.density gives, without its unit machinery).
        "density": _r(float(composition.weight) * _AMU_PER_A3_IN_G_PER_CM3 / volume, 4)
        if volume
        else None,
        "is_ordered": bool(structure.is_ordered),
    }
    if symmetry and structure.is_ordered:
        found = spacegroup(structure)
        if found is not None:
            crystal["space_group_number"], crystal["space_group_symbol"] = found
            crystal["crystal_system"] = _crystal_system(found[0])
            crystal["space_group_source"] = "spglib"
    return {"material": composition_block(composition), "crystal_structure": crystal}


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
