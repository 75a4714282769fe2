"""Structures, molecules and trajectories: CIF, POSCAR, XYZ, LAMMPS and what else ASE reads."""

from __future__ import annotations

import re
import threading
import warnings
from typing import Any

from matterhub.connect.extractors.base import (
    DerivedFile,
    ExtractionContext,
    Extractor,
    FileGroup,
    Record,
    StagedFile,
    head,
    require,
)
from matterhub.connect.extractors.chemistry import (
    ASE_BIBTEX,
    PYMATGEN_BIBTEX,
    SPGLIB_BIBTEX,
    atoms_blocks,
    structure_blocks,
)
from matterhub.connect.extractors.previews import MATPLOTLIB_BIBTEX, structure_files

__all__ = ["StructureExtractor"]

# Extensions of formats ase.io reads that hold atoms (output files of codes go to the DFT plugins).
ASE_SUFFIXES = {
    "cif", "mcif", "vasp", "poscar", "xyz", "extxyz", "pdb", "xsf", "cube", "cfg", "gen", "res",
    "mol", "sdf", "traj", "gro", "xtl", "cell", "lammpstrj", "lmp", "dump", "xdatcar", "gpw",
    "json", "db", "cml", "mol2", "pwi", "fdf", "vti", "vtu", "ascii", "in",
}  # fmt: skip
_TEXT_ONLY = {"json", "db", "in", "lmp", "dump"}  # ambiguous: accepted only after a sniff
_VASP_STRUCT = re.compile(r"^(POSCAR|CONTCAR|XDATCAR)([._-].*)?$", re.IGNORECASE)
_LAMMPS_DATA = re.compile(rb"^\s*\d+\s+atoms\s*$", re.MULTILINE)
_ATOM_STYLE = re.compile(rb"atom_style\s+(\w+)")
# The structure `extract` last read in this thread, for `derive` of the same call.
_LOCAL = threading.local()
_NOTHING = object()  # read, but nothing to derive from (a dump without elements)


def _key(file: StagedFile) -> tuple[str, int, int]:
    stat = file.path.stat()
    return (str(file.path), stat.st_size, stat.st_mtime_ns)


def _keep(file: StagedFile, obj: Any) -> None:
    _LOCAL.loaded = (_key(file), obj)


def _kept(file: StagedFile) -> Any:
    loaded = getattr(_LOCAL, "loaded", None)
    return loaded[1] if loaded is not None and loaded[0] == _key(file) else None


def _kind(file: StagedFile) -> str | None:
    name, suffix = file.name, file.suffix
    if _VASP_STRUCT.match(name):
        return "xdatcar" if name.upper().startswith("XDATCAR") else "poscar"
    first = head(file, 2048)
    if first.startswith(b"ITEM: TIMESTEP"):
        return "lammps-dump"
    if (name.startswith("data.") or suffix in {"data", "lmp"}) and _LAMMPS_DATA.search(first):
        return "lammps-data"
    if suffix == "cif" or suffix == "mcif":
        return "cif"
    if suffix in {"xyz", "extxyz"}:
        return "xyz"
    if suffix == "vasp" or suffix == "poscar":
        return "poscar"
    if suffix in ASE_SUFFIXES and suffix not in _TEXT_ONLY:
        return "ase"
    if suffix == "json" and b'"numbers"' in first and b'"positions"' in first:
        return "ase"
    return None


def _declared(cif_block: dict[str, Any]) -> Record:
    """What the CIF says about itself: space group, formula, COD id, partial occupancy."""

    def tag(*names: str) -> str | None:
        for name in names:
            value = cif_block.get(name)
            if isinstance(value, list):
                value = value[0] if value else None
            if value not in (None, "?", "."):
                return str(value).strip()
        return None

    out: Record = {}
    number = tag("_space_group_IT_number", "_symmetry_Int_Tables_number")
    if number and number.isdigit():
        out["declared_space_group_number"] = int(number)
    symbol = tag("_symmetry_space_group_name_H-M", "_space_group_name_H-M_alt")
    if symbol:
        out["declared_space_group_symbol"] = symbol
    if formula := tag("_chemical_formula_sum"):
        out["declared_formula"] = formula
    if cod := tag("_cod_database_code"):
        out["cod"] = cod
    occupancies = cif_block.get("_atom_site_occupancy") or []
    if isinstance(occupancies, str):
        occupancies = [occupancies]
    partial = False
    for occ in occupancies:
        try:
            partial |= float(str(occ).split("(")[0]) < 0.9999
        except ValueError:
            continue
    out["has_partial_occupancy"] = partial
    return out


class StructureExtractor(Extractor):
    """Structures with pymatgen (CIF, POSCAR) and ASE (everything else ase.io reads)."""

    name = "structure"
    version = "0.1.0"
    priority = 10

    def accepts(self, file: StagedFile) -> bool:
        """CIF, POSCAR/CONTCAR, XYZ, LAMMPS data and dumps, and other ASE structure formats."""
        return _kind(file) is not None

    def extract(self, group: FileGroup, context: ExtractionContext) -> Record:
        """`material` + `crystal_structure` (periodic) or `molecule`; `md` for trajectories."""
        file = group.files[0]
        kind = _kind(file)
        with warnings.catch_warnings():
            # pymatgen and ASE warn about every oddity of a file; the facts are still right.
            warnings.simplefilter("ignore")
            if kind == "cif":
                return self._cif(file)
            if kind == "poscar":
                poscar = require("pymatgen.io.vasp", "materials").Poscar
                structure = poscar.from_file(file.path).structure
                _keep(file, structure)
                return structure_blocks(structure)
            if kind == "lammps-dump":
                return self._lammps_dump(file)
            if kind == "lammps-data":
                return self._lammps_data(file)
            return self._ase(file, "extxyz" if kind == "xyz" else None)

    def _cif(self, file: StagedFile) -> Record:
        cif = require("pymatgen.io.cif", "materials")
        parser = cif.CifParser(file.path)
        structures = parser.parse_structures(primitive=False)
        blocks = list(parser.as_dict().values())
        declared = _declared(blocks[0] if blocks else {})
        _keep(file, structures[0])
        out = structure_blocks(structures[0])
        crystal, material = out["crystal_structure"], out["material"]
        cod = declared.pop("cod", None)
        crystal.update(declared)
        if cod:
            out["cross_reference"] = {"cod": cod}
        if "space_group_number" not in crystal and "declared_space_group_number" in crystal:
            # spglib has no answer for a disordered cell; the CIF's own space group stands.
            crystal["space_group_number"] = crystal["declared_space_group_number"]
            crystal["space_group_source"] = "declared"
        if declared.get("has_partial_occupancy") and declared.get("declared_formula"):
            material["composition"] = declared["declared_formula"].replace(" ", "")
        if len(structures) > 1:
            crystal["structure_count"] = len(structures)
        return out

    def _ase(self, file: StagedFile, fmt: str | None) -> Record:
        ase_io = require("ase.io", "materials")
        first = last = None
        frames = 0
        for atoms in ase_io.iread(file.path, index=":", format=fmt):
            if first is None:
                first = atoms
            last, frames = atoms, frames + 1
        if first is None or last is None or not len(first):
            raise ValueError("no atoms found")
        _keep(file, first)
        out = atoms_blocks(first)
        if frames > 1:
            out["md"] = {"frame_count": frames, "particle_count": len(first)}
            if len(last) != len(first):
                out["md"]["particle_count_last"] = len(last)
        energy = _energy(first)
        if energy is not None:
            out.setdefault("md", {})["energy_first_frame_eV"] = energy
        return out

    def _lammps_data(self, file: StagedFile) -> Record:
        ase_io = require("ase.io", "materials")
        match = _ATOM_STYLE.search(head(file, 2048))
        styles = [match.group(1).decode()] if match else ["atomic", "full", "charge", "molecular"]
        errors = []
        for style in styles:
            try:
                atoms = ase_io.read(file.path, format="lammps-data", atom_style=style)
            except Exception as exc:
                errors.append(f"{style}: {exc}")
                continue
            _keep(file, atoms)
            out = atoms_blocks(atoms)
            out["md"] = {"particle_count": len(atoms), "atom_style": style}
            return out
        raise ValueError("not a readable LAMMPS data file (" + "; ".join(errors) + ")")

    def _lammps_dump(self, file: StagedFile) -> Record:
        ase_io = require("ase.io", "materials")
        atoms = ase_io.read(file.path, format="lammps-dump-text", index=0)
        steps: list[int] = []
        with file.path.open("rb") as fh:
            # Count frames from the text, line by line: reading every frame with ASE costs more.
            grab = False
            for line in fh:
                if grab:
                    steps.append(int(line))
                    grab = False
                elif line.startswith(b"ITEM: TIMESTEP"):
                    grab = True
        columns = head(file, 8192).split(b"ITEM: ATOMS", 1)[-1].split(b"\n", 1)[0].split()
        cell = [round(float(x), 5) for x in atoms.cell.cellpar()]
        box = dict(zip(("a", "b", "c", "alpha", "beta", "gamma"), cell, strict=True))
        # Without an element column the atom types are only numbers: no chemistry to report.
        chemistry = b"element" in columns
        _keep(file, atoms if chemistry else _NOTHING)
        out = atoms_blocks(atoms) if chemistry else {}
        out["md"] = {
            "frame_count": len(steps),
            "particle_count": len(atoms),
            "timesteps": steps[-1] - steps[0] if steps else 0,
            "atom_columns": [c.decode() for c in columns],
            "atom_type_count": len(set(atoms.numbers.tolist())),
            "box": box,
            "first_timestep": steps[0] if steps else 0,
            "last_timestep": steps[-1] if steps else 0,
        }
        return out

    def derive(self, group: FileGroup, context: ExtractionContext) -> list[DerivedFile]:
        """CIF + extended XYZ copies and a rendered PNG view (see `previews.structure_files`)."""
        file = group.files[0]
        obj = _kept(file)
        if obj is None:
            self.extract(group, context)  # keeps the structure, unless the file has no chemistry
            obj = _kept(file)
        if obj is None or obj is _NOTHING:
            return []
        return structure_files(file, obj, _kind(file) or "")

    def citations(self) -> list[str]:
        """pymatgen, ASE and spglib; matplotlib renders the preview."""
        return [PYMATGEN_BIBTEX, ASE_BIBTEX, SPGLIB_BIBTEX, MATPLOTLIB_BIBTEX]


def _energy(atoms: Any) -> float | None:
    try:
        calc = atoms.calc
        if calc is not None and "energy" in calc.results:
            return round(float(calc.results["energy"]), 8)
    except Exception:
        return None
    return None
