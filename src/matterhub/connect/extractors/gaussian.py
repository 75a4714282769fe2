"""Gaussian output logs: route, method, basis, charge, SCF energies, termination and geometry."""

from __future__ import annotations

import re

from matterhub.connect.extractors.base import (
    WARNINGS_KEY,
    ExtractionContext,
    Extractor,
    FileGroup,
    Record,
    StagedFile,
    head,
)
from matterhub.connect.extractors.chemistry import PYMATGEN_BIBTEX, molecule_block

__all__ = ["GaussianExtractor"]

HARTREE_TO_EV = 27.211386245988
_VERSION = re.compile(r"^\s*Gaussian (\d+):\s+\S+-G\d+Rev([A-Z]\.\d+)")
_SCF = re.compile(r"SCF Done:\s+E\((\S+)\)\s*=\s*([-\d.]+)")
_CHARGE = re.compile(r"Charge\s*=\s*(-?\d+)\s+Multiplicity\s*=\s*(\d+)")
_BASIS = re.compile(r"Standard basis:\s*(\S+)")
_ATOM_ROW = re.compile(r"^\s*\d+\s+(\d+)\s+-?\d+\s+[-\d.]+\s+[-\d.]+\s+[-\d.]+\s*$")
_HOMO = re.compile(r"Alpha\s+occ\. eigenvalues --(.*)")
_LUMO = re.compile(r"Alpha virt\. eigenvalues --(.*)")
_METHODS = ("HF", "MP2", "MP3", "MP4", "CCSD", "CCSD(T)", "CISD", "CASSCF", "AM1", "PM3", "PM6")
_PERIODIC_TABLE = """
X H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br
Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er
Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn
"""
_SYMBOLS = _PERIODIC_TABLE.split()


def _route_method(route: str) -> tuple[str | None, str | None]:
    """(method, basis) from a route line such as '#p b3lyp/sto-3g opt'."""
    for token in route.replace("#", " ").split():
        if "/" in token and not set("(=") & set(token.split("/")[0]):
            method, basis = token.split("/", 1)
            return method.upper(), basis
    for token in route.replace("#", " ").split():
        if token.upper() in _METHODS:
            return token.upper(), None
    return None, None


class GaussianExtractor(Extractor):
    """Gaussian logs (any extension) recognised by their banner."""

    name = "gaussian"
    version = "0.1.0"
    priority = 20

    def accepts(self, file: StagedFile) -> bool:
        """A text file whose first bytes carry Gaussian's banner."""
        start = head(file, 8192)
        return b"Gaussian, Inc." in start and (
            b"Entering Gaussian System" in start or b"Gaussian(R)" in start
        )

    def extract(self, group: FileGroup, context: ExtractionContext) -> Record:
        """`dft` (method, basis, energies, termination) and the last geometry as a `molecule`."""
        path = group.files[0].path
        dft: Record = {"code": "Gaussian"}
        route: list[str] | None = None
        scf: list[tuple[str, float]] = []
        geometry: list[int] = []
        reading_geometry = 0
        homo = lumo = None
        normal = False
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if route is not None and not route and line.startswith(" #"):
                    route.append(line.strip())
                    continue
                if route and len(route) >= 1 and not route[-1].startswith("---"):
                    if line.startswith(" ---"):
                        route.append("---")
                    else:
                        route.append(line.strip())
                    continue
                if match := _VERSION.match(line):
                    dft["code_version"] = f"{match.group(1)} Rev. {match.group(2)}"
                    route = []
                elif match := _SCF.search(line):
                    scf.append((match.group(1), float(match.group(2))))
                elif match := _CHARGE.search(line):
                    dft["charge"], dft["multiplicity"] = int(match.group(1)), int(match.group(2))
                elif match := _BASIS.search(line):
                    dft["basis_set"] = match.group(1)
                elif "orientation:" in line:
                    reading_geometry, geometry = 1, []
                elif reading_geometry:
                    if match := _ATOM_ROW.match(line):
                        geometry.append(int(match.group(1)))
                    elif line.startswith(" ---") and geometry:
                        reading_geometry = 0
                elif match := _HOMO.search(line):
                    homo, lumo = float(match.group(1).split()[-1]), None
                elif (match := _LUMO.search(line)) and lumo is None:
                    lumo = float(match.group(1).split()[0])
                elif "Normal termination of Gaussian" in line:
                    normal = True
                elif "Optimization completed" in line or "Stationary point found" in line:
                    dft["optimization_completed"] = True
        if route is None and not scf:
            raise ValueError("not a Gaussian log: no version banner and no SCF energy")
        route_text = "".join(r for r in (route or []) if r != "---")
        if route_text:
            dft["route"] = route_text
            method, basis = _route_method(route_text)
            if scf:  # the SCF label names the method Gaussian ran: RB3LYP, UHF, ROB3LYP …
                method = re.sub(r"^(RO|R|U)(?=[A-Z0-9])", "", scf[-1][0])
            if method:
                dft["exchange_correlation_functional"] = method
            if basis and "basis_set" not in dft:
                dft["basis_set"] = basis
        if scf:
            label, hartree = scf[-1]
            dft["total_energy"] = round(hartree * HARTREE_TO_EV, 6)
            dft["total_energy_Hartree"] = hartree
            dft["scf_label"] = label
            dft["scf_energy_count"] = len(scf)
        if homo is not None and lumo is not None:
            dft["band_gap"] = round((lumo - homo) * HARTREE_TO_EV, 6)
        dft["normal_termination"] = normal
        dft["converged"] = normal and bool(scf)
        dft["energy_units"] = "eV"
        out: Record = {"dft": dft}
        if not normal:
            out[WARNINGS_KEY] = ["log ends without 'Normal termination' (truncated or failed job)"]
        if geometry:
            out.update(molecule_block([_SYMBOLS[z] for z in geometry if 0 < z < len(_SYMBOLS)]))
            if "charge" in dft:
                out["molecule"]["charge"] = dft["charge"]
        return out

    def citations(self) -> list[str]:
        """pymatgen (composition and molecular weight)."""
        return [PYMATGEN_BIBTEX]
