"""Quantum ESPRESSO pw.x: inputs and outputs of one calculation folder → `dft` + final structure."""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from matterhub.connect.extractors.base import (
    WARNINGS_KEY,
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
)

__all__ = ["EspressoExtractor"]

RY_TO_EV = 13.605693122994
_OUT = {
    "version": re.compile(r"Program PWSCF (v\.\S+)"),
    "xc": re.compile(r"Exchange-correlation\s*=\s*(.+?)\s*(?:\(|$)"),
    "ecutwfc": re.compile(r"kinetic-energy cutoff\s*=\s*([\d.]+)\s*Ry"),
    "ecutrho": re.compile(r"charge density cutoff\s*=\s*([\d.]+)\s*Ry"),
    "energy": re.compile(r"^!\s+total energy\s*=\s*([-\d.]+)\s*Ry"),
    "kpoints": re.compile(r"number of k points\s*=\s*(\d+)"),
    "fermi": re.compile(r"the Fermi energy is\s+([-\d.]+)\s*ev"),
    "homo_lumo": re.compile(
        r"highest occupied, lowest unoccupied level \(ev\):\s*([-\d.]+)\s+([-\d.]+)"
    ),
    "calculation": re.compile(r"^\s*calculation\s*=\s*'?([\w-]+)"),
}  # fmt: skip
_FLAGS = {
    "scf_converged": "convergence has been achieved",
    "bfgs_converged": "bfgs converged",
    "job_done": "JOB DONE",
}
# QE's short names for its exchange-correlation building blocks → the functional's usual name.
_XC = {
    "SLA PW PBX PBC": "PBE",
    "SLA PW PSX PSC": "PBEsol",
    "SLA PZ NOGX NOGC": "LDA",
    "SLA PW NOGX NOGC": "LDA",
    "SLA PW RPB PBC": "revPBE",
    "SLA PW GGX GGC": "PW91",
    "SLA PW B3LP B3LP": "B3LYP",
    "PBE0": "PBE0",
    "HSE": "HSE06",
}
_NAMELIST = re.compile(r"^\s*(\w+)(?:\(\d+\))?\s*=\s*('[^']*'|\"[^\"]*\"|[^,\s!]+)", re.MULTILINE)
_PSEUDO = re.compile(r"^\s*\w+\s+[\d.Ee+-]+\s+(\S+\.(?:upf|UPF|psp8|vdb|pz-\S+))", re.MULTILINE)


def _kind(file: StagedFile) -> str | None:
    start = head(file, 8192)
    if b"Program PWSCF" in start:
        return "output"
    lower = start.lower()
    if b"&control" in lower or (b"&system" in lower and b"atomic_species" in lower):
        return "input"
    return None


def _value(raw: str) -> str | int | float | bool:
    raw = raw.strip().strip("'\"")
    low = raw.lower()
    if low in {".true.", "true", ".t."}:
        return True
    if low in {".false.", "false", ".f."}:
        return False
    for cast in (int, float):
        try:
            return cast(low.replace("d", "e")) if cast is float else cast(low)
        except ValueError:
            continue
    return raw


def _input(path: Path) -> Record:
    text = path.read_text(errors="replace")
    body = text.split("ATOMIC_SPECIES")[0] if "ATOMIC_SPECIES" in text else text
    params = {k.lower(): _value(v) for k, v in _NAMELIST.findall(body)}
    out: Record = {"input_parameters": params}
    if isinstance(params.get("ecutwfc"), int | float):
        out["cutoff_energy"] = round(float(params["ecutwfc"]) * RY_TO_EV, 4)
        out["cutoff_energy_Ry"] = float(params["ecutwfc"])
    if "calculation" in params:
        out["calculation"] = params["calculation"]
    if pseudos := _PSEUDO.findall(text):
        out["potentials"] = pseudos
    match = re.search(r"K_POINTS\s*[({]?\s*(\w+)\s*[)}]?\s*\n([^\n]*)", text, re.IGNORECASE)
    if match:
        style, numbers = match.group(1).lower(), match.group(2).split()
        out["k_points"] = {"style": style, "values": numbers}
        if style == "automatic" and len(numbers) == 6 and all(n.isdigit() for n in numbers):
            out["k_points"] = {"style": style, "grid": [int(n) for n in numbers[:3]]}
            out["k_points"]["shift"] = [int(n) for n in numbers[3:]]
    return out


def _output(path: Path) -> Record:
    found: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    flags = dict.fromkeys(_FLAGS, False)
    scf_cycles = 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            for key, pattern in _OUT.items():
                if match := pattern.search(line):
                    found[key].append(match.groups())
            for key, needle in _FLAGS.items():
                if needle in line:
                    flags[key] = True
                    scf_cycles += key == "scf_converged"
    out: Record = {"code": "Quantum ESPRESSO"}
    if found["version"]:
        out["code_version"] = found["version"][0][0]
    if found["xc"]:
        xc = found["xc"][-1][0].strip()
        out["exchange_correlation"] = xc
        out["exchange_correlation_functional"] = _XC.get(" ".join(xc.split()), xc)
    if found["ecutwfc"]:
        ry = float(found["ecutwfc"][-1][0])
        out["cutoff_energy"] = round(ry * RY_TO_EV, 4)
        out["cutoff_energy_Ry"] = ry
    if found["ecutrho"]:
        out["charge_density_cutoff_Ry"] = float(found["ecutrho"][-1][0])
    if found["energy"]:
        ry = float(found["energy"][-1][0])
        out["total_energy"] = round(ry * RY_TO_EV, 6)
        out["total_energy_Ry"] = ry
    if found["kpoints"]:
        out["k_points_irreducible"] = int(found["kpoints"][-1][0])
    if found["fermi"]:
        out["fermi_energy"] = float(found["fermi"][-1][0])
    if found["homo_lumo"]:
        homo, lumo = (float(x) for x in found["homo_lumo"][-1])
        out["band_gap"] = round(max(lumo - homo, 0.0), 6)
    out.update(flags)
    out["scf_cycles"] = scf_cycles
    relax = flags["bfgs_converged"] or "relax" in str(out.get("calculation", ""))
    out["converged"] = (
        flags["scf_converged"] and flags["job_done"] and (flags["bfgs_converged"] or not relax)
    )
    return out


class EspressoExtractor(Extractor):
    """pw.x inputs and outputs of one folder → one `dft` block and the final structure (ASE)."""

    name = "espresso"
    version = "0.1.0"
    priority = 20

    def accepts(self, file: StagedFile) -> bool:
        """A pw.x output ('Program PWSCF') or input (namelists) by its first bytes."""
        return file.size > 0 and _kind(file) is not None

    def group(self, files: Sequence[StagedFile]) -> Iterable[FileGroup]:
        """All pw.x files of one folder form one group."""
        folders: dict[str, list[StagedFile]] = defaultdict(list)
        for file in files:
            if self.accepts(file):
                folders[file.parent].append(file)
        for folder, members in sorted(folders.items()):
            yield FileGroup(folder or ".", tuple(sorted(members, key=lambda f: f.relpath)))

    def extract(self, group: FileGroup, context: ExtractionContext) -> Record:
        """`dft` from the output (energy, functional, cutoffs, convergence) and the input."""
        dft: Record = {"code": "Quantum ESPRESSO"}
        out: Record = {}
        outputs = [f for f in group.files if _kind(f) == "output"]
        for file in group.files:
            if _kind(file) == "input":
                dft.update({k: v for k, v in _input(file.path).items() if k not in dft})
        for file in outputs:
            dft.update(_output(file.path))
        if outputs:
            ase_io = require("ase.io", "materials")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    atoms = ase_io.read(outputs[-1].path, format="espresso-out", index=-1)
                    out.update(atoms_blocks(atoms))
                    if atoms.calc is not None and "energy" in atoms.calc.results:
                        dft["total_energy"] = round(float(atoms.calc.results["energy"]), 6)
                except Exception as exc:  # a truncated output still has its text facts
                    out[WARNINGS_KEY] = [f"no final structure: {type(exc).__name__}: {exc}"]
        if len(dft) <= 1:
            raise ValueError("no pw.x facts found")
        dft["energy_units"] = "eV"
        dft["cutoff_energy_units"] = "eV"
        if outputs and not dft.get("job_done"):
            out.setdefault(WARNINGS_KEY, []).append("pw.x output ends before JOB DONE (truncated?)")
        out["dft"] = dft
        return out

    def citations(self) -> list[str]:
        """ASE (reads the final structure), pymatgen (its blocks) and spglib."""
        return [ASE_BIBTEX, PYMATGEN_BIBTEX, SPGLIB_BIBTEX]
