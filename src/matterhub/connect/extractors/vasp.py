"""VASP calculations: INCAR, KPOINTS, POSCAR/CONTCAR, OUTCAR, OSZICAR and vasprun.xml of one run."""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from matterhub.connect.extractors.base import (
    ExtractionContext,
    Extractor,
    FileGroup,
    Record,
    StagedFile,
    require,
)
from matterhub.connect.extractors.chemistry import PYMATGEN_BIBTEX, SPGLIB_BIBTEX, structure_blocks

__all__ = ["VaspExtractor"]

# A VASP file name, optionally with a suffix shared by one run's files (OUTCAR.relax1, …).
_NAME = re.compile(
    r"^(?P<kind>INCAR|KPOINTS|POSCAR|CONTCAR|OUTCAR|OSZICAR|vasprun\.xml|POTCAR|DOSCAR|EIGENVAL"
    r"|CHGCAR|CHG|WAVECAR|PROCAR|XDATCAR|IBZKPT|PCDAT|REPORT|LOCPOT|ELFCAR)(?P<suffix>[._-].*)?$"
)
_ANCHORS = {"INCAR", "OUTCAR", "OSZICAR", "vasprun.xml"}
_PARSED = {"INCAR", "KPOINTS", "POSCAR", "CONTCAR", "OUTCAR", "vasprun.xml"}
_OUTCAR = {
    "version": re.compile(r"^\s*vasp\.(\S+)"),
    "cores": re.compile(r"running on\s+(\d+) total cores"),
    "encut": re.compile(r"^\s*ENCUT\s*=\s*([-\d.]+)\s*eV"),
    "gga": re.compile(r"^\s*GGA\s*=\s*(\S+)\s+GGA type"),
    "lexch": re.compile(r"^\s*LEXCH\s*=\s*(\S+)"),
    "efermi": re.compile(r"E-fermi\s*:\s*([-\d.]+)"),
    "toten": re.compile(r"free\s+energy\s+TOTEN\s*=\s*([-\d.]+)\s*eV"),
    "elapsed": re.compile(r"Elapsed time \(sec\):\s*([\d.]+)"),
    "ldau": re.compile(r"LDA\+U is selected"),
}
# VASP's GGA / LEXCH tags and pymatgen's run types → the functional's usual name.
_GGA = {"PE": "PBE", "PS": "PBEsol", "RP": "revPBE", "91": "PW91", "AM": "AM05", "CA": "LDA"}
_RUN_TYPE = {"GGA": "PBE", "GGA+U": "PBE+U", "LDA": "LDA", "LDA+U": "LDA+U"}


def _key(file: StagedFile) -> tuple[str, str] | None:
    match = _NAME.match(file.name)
    if match is None:
        return None
    suffix = (match.group("suffix") or "").removesuffix(".gz").removesuffix(".bz2")
    return file.parent, suffix


def _outcar(path: Any) -> Record:
    found: dict[str, str] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            for key, pattern in _OUTCAR.items():
                if key in found and key not in {"efermi", "toten", "elapsed"}:
                    continue
                match = pattern.search(line)
                if match:
                    found[key] = match.group(1) if match.groups() else "yes"
    out: Record = {}
    if "version" in found:
        out["code_version"] = found["version"]
    if "encut" in found:
        out["cutoff_energy"] = float(found["encut"])
    gga = found.get("gga", "--")
    functional = _GGA.get(gga) if gga != "--" else _GGA.get(found.get("lexch", ""))
    if functional:
        out["exchange_correlation_functional"] = functional + ("+U" if "ldau" in found else "")
    if "toten" in found:
        out["total_energy"] = float(found["toten"])
    if "efermi" in found:
        out["fermi_energy"] = float(found["efermi"])
    if "elapsed" in found:
        out["elapsed_time_s"] = float(found["elapsed"])
        out["completed"] = True
    if "cores" in found:
        out["cores"] = int(found["cores"])
    return out


def _vasprun(path: Any) -> tuple[Record, Any]:
    vasp = require("pymatgen.io.vasp", "materials")
    run = vasp.Vasprun(
        str(path),
        parse_dos=False,
        parse_projected_eigen=False,
        parse_potcar_file=False,
        exception_on_bad_xml=False,
    )
    dft: Record = {
        "code_version": run.vasp_version,
        "converged": bool(run.converged),
        "converged_electronic": bool(run.converged_electronic),
        "converged_ionic": bool(run.converged_ionic),
        "run_type": run.run_type,
        "is_hubbard": bool(run.is_hubbard),
        "potentials": list(run.potcar_symbols),
        "ionic_steps": len(run.ionic_steps),
        "total_energy": float(run.final_energy),
        "k_points_irreducible": len(run.actual_kpoints),
    }
    functional = _RUN_TYPE.get(run.run_type, run.run_type)
    if functional:
        dft["exchange_correlation_functional"] = functional
    if run.parameters.get("ENCUT"):
        dft["cutoff_energy"] = float(run.parameters["ENCUT"])
    if run.efermi is not None:
        dft["fermi_energy"] = float(run.efermi)
    try:
        gap, cbm, vbm, direct = run.eigenvalue_band_properties
        dft.update(
            band_gap=float(gap), cbm=float(cbm), vbm=float(vbm), band_gap_direct=bool(direct)
        )
    except Exception:  # no eigenvalues written (LORBIT/NBANDS choices): no gap to report
        pass
    return dft, run.final_structure


class VaspExtractor(Extractor):
    """One VASP run (files sharing a folder and a suffix) → `dft` + the final structure."""

    name = "vasp"
    version = "0.1.0"
    priority = 20

    def accepts(self, file: StagedFile) -> bool:
        """A file named like one of VASP's inputs or outputs."""
        return _key(file) is not None

    def group(self, files: Sequence[StagedFile]) -> Iterable[FileGroup]:
        """One group per folder + suffix that holds an INCAR, OUTCAR, OSZICAR or vasprun.xml."""
        runs: dict[tuple[str, str], list[StagedFile]] = defaultdict(list)
        for file in files:
            key = _key(file)
            if key is not None:
                runs[key].append(file)
        for (folder, suffix), members in sorted(runs.items()):
            kinds = {m.group("kind") for f in members if (m := _NAME.match(f.name))}
            if kinds & _ANCHORS:
                members.sort(key=lambda f: f.relpath)
                yield FileGroup(
                    f"{folder or '.'}#{suffix}" if suffix else folder or ".", tuple(members)
                )

    def extract(self, group: FileGroup, context: ExtractionContext) -> Record:
        """`dft` (code, version, functional, cutoff, energy, gap, k-points, INCAR) + structure."""
        suffix = group.key.split("#", 1)[1] if "#" in group.key else ""
        by_kind: dict[str, StagedFile] = {}
        for file in group.files:
            match = _NAME.match(file.name)
            if match and match.group("kind") in _PARSED:
                by_kind[match.group("kind")] = file
        vasp = require("pymatgen.io.vasp", "materials")
        dft: Record = {"code": "VASP"}
        structure = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns on unconverged or unusual runs
            if "INCAR" in by_kind:
                incar = dict(vasp.Incar.from_file(by_kind["INCAR"].path))
                dft["incar"] = incar
                if "ENCUT" in incar:
                    dft["cutoff_energy"] = float(incar["ENCUT"])
                if "NSW" in incar:
                    dft["calculation"] = "relaxation" if int(incar["NSW"]) > 0 else "single point"
            if "KPOINTS" in by_kind:
                kpoints = vasp.Kpoints.from_file(by_kind["KPOINTS"].path)
                dft["k_points"] = {
                    "style": str(kpoints.style.name),
                    "grid": [list(k) for k in kpoints.kpts],
                    "shift": list(kpoints.kpts_shift),
                }
            if "OUTCAR" in by_kind:
                dft.update(_outcar(by_kind["OUTCAR"].path))
            if "vasprun.xml" in by_kind:
                from_run, structure = _vasprun(by_kind["vasprun.xml"].path)
                dft.update(from_run)
            for kind in ("CONTCAR", "POSCAR"):
                if structure is None and kind in by_kind:
                    structure = vasp.Poscar.from_file(by_kind[kind].path).structure
        if "converged" not in dft and "completed" in dft:
            dft["converged"] = dft["completed"]
        dft["cutoff_energy_units"] = "eV"
        dft["energy_units"] = "eV"
        out: Record = structure_blocks(structure) if structure is not None else {}
        out["dft"] = dft
        if suffix:
            out["dft"]["run_suffix"] = suffix
        return out

    def citations(self) -> list[str]:
        """pymatgen (VASP readers) and spglib."""
        return [PYMATGEN_BIBTEX, SPGLIB_BIBTEX]
