"""B3LYP/6-31G* atomization energies of the 148 G2 molecules with PySCF (the middle level).

Settings (also written to ``data/b3lyp.json`` with the PySCF version and the date):

* functional ``"b3lyp"`` in PySCF 2.14 = libxc ``HYB_GGA_XC_B3LYP`` (id 402), the **VWN-RPA**
  (VWN1RPA) variant that Gaussian calls B3LYP; PySCF's ``"b3lyp5"`` would be the VWN5 one;
* basis ``6-31G*`` (= 6-31G(d)) with PySCF's default spherical d shells (5d, ``cart=False``;
  Gaussian's default for this basis is 6d, which changes energies by ~0.1 kcal/mol);
* geometries: ASE's G2 structures (MP2(full)/6-31G(d)) as they are, not reoptimized;
* molecules: RKS if closed shell, UKS with ``spin = 2S`` otherwise (multiplicity from ASE's
  magmoms); isolated atoms: UKS with ``spin = 2S`` of the ground state (H 1, C 2, N 3, O 2, …),
  symmetry-broken (no fractional occupations);
* grid level 3 (PySCF default, NWChem pruning), ``conv_tol = 1e-9`` Eh, up to 100 cycles; an SCF
  that does not converge is retried with the second-order (Newton) solver. The ``converged``
  column says whether it did in the end;
* De = Σ E(atom) − E(mol), in kcal/mol with ASE's units (Hartree → eV → kcal/mol).

Output: ``data/b3lyp.csv`` (one row per molecule, appended as each finishes) and
``data/b3lyp.json`` (settings, versions, atom energies, timings). Resumable: molecules already in
the CSV are skipped, and the run refuses to mix settings different from the JSON's.

Run (20–60 min on 2 shared cores)::

    PYTHONPATH=$PWD nice -n 19 python -m examples.delta_learning.b3lyp [--only H2O CH4] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ase import Atoms, units
from examples.delta_learning.data import (
    ATOM_MULTIPLICITY,
    B3LYP_CSV,
    KCAL_MOL,
    g2_molecules,
    multiplicity,
)

__all__ = ["FIELDS", "SETTINGS", "atom_energy", "compute", "molecule_energy", "run"]

SETTINGS: dict[str, Any] = {
    "program": "pyscf",
    "functional": "b3lyp",
    "functional_note": "libxc HYB_GGA_XC_B3LYP (402): B3LYP with VWN-RPA (Gaussian's B3LYP)",
    "basis": "6-31g*",
    "cartesian_d": False,
    "grid_level": 3,
    "grid_prune": "nwchem",
    "conv_tol_hartree": 1e-9,
    "max_cycle": 100,
    "fallback": "newton (second-order SCF) if not converged",
    "molecules": "RKS if closed shell, else UKS with spin=2S",
    "atoms": "UKS with spin=2S of the ground state",
    "geometries": "ASE G2 (MP2(full)/6-31G(d)), not reoptimized",
}
FIELDS = [
    "name",
    "formula",
    "multiplicity",
    "method",
    "b3lyp_De_kcal_mol",
    "e_molecule_hartree",
    "e_atoms_hartree",
    "s2",
    "converged",
    "wall_s",
]
_HARTREE_KCAL = units.Hartree / KCAL_MOL


def _scf(atoms: Atoms, mult: int) -> tuple[float, str, float, bool]:
    """Energy (Eh), method, <S²> and convergence of one B3LYP SCF."""
    from pyscf import dft, gto

    mol = gto.M(
        atom=list(zip(atoms.get_chemical_symbols(), atoms.positions.tolist(), strict=True)),
        unit="Angstrom",
        basis=SETTINGS["basis"],
        cart=SETTINGS["cartesian_d"],
        spin=mult - 1,
        charge=0,
        verbose=0,
    )
    mf = dft.RKS(mol) if mult == 1 else dft.UKS(mol)
    mf.xc = SETTINGS["functional"]
    mf.grids.level = SETTINGS["grid_level"]
    mf.conv_tol = SETTINGS["conv_tol_hartree"]
    mf.max_cycle = SETTINGS["max_cycle"]
    energy = mf.kernel()
    if not mf.converged:
        mf = mf.newton()
        energy = mf.kernel(mf.mo_coeff, mf.mo_occ)
    s2 = float(mf.spin_square()[0]) if mult > 1 else 0.0
    return float(energy), "RKS" if mult == 1 else "UKS", s2, bool(mf.converged)


def atom_energy(symbol: str) -> dict[str, Any]:
    """B3LYP energy of an isolated atom in its ground-state multiplicity."""
    start = time.perf_counter()
    energy, method, s2, converged = _scf(Atoms(symbol), ATOM_MULTIPLICITY[symbol])
    return {
        "energy_hartree": energy,
        "multiplicity": ATOM_MULTIPLICITY[symbol],
        "method": method,
        "s2": s2,
        "converged": converged,
        "wall_s": round(time.perf_counter() - start, 3),
    }


def molecule_energy(atoms: Atoms, atom_energies: dict[str, float]) -> dict[str, Any]:
    """One CSV row: B3LYP De of a G2 molecule given the atoms' energies (Eh)."""
    name = atoms.info["name"]
    start = time.perf_counter()
    energy, method, s2, converged = _scf(atoms, multiplicity(name))
    e_atoms = sum(atom_energies[s] for s in atoms.get_chemical_symbols())
    return {
        "name": name,
        "formula": atoms.get_chemical_formula(),
        "multiplicity": multiplicity(name),
        "method": method,
        "b3lyp_De_kcal_mol": round((e_atoms - energy) * _HARTREE_KCAL, 6),
        "e_molecule_hartree": f"{energy:.10f}",
        "e_atoms_hartree": f"{e_atoms:.10f}",
        "s2": round(s2, 6),
        "converged": converged,
        "wall_s": round(time.perf_counter() - start, 3),
    }


def compute(names: list[str]) -> list[dict[str, Any]]:
    """Rows for the named molecules, atoms computed as needed (no files; what the test uses)."""
    molecules = [m for m in g2_molecules() if m.info["name"] in names]
    symbols = sorted({s for m in molecules for s in m.get_chemical_symbols()})
    atoms = {s: atom_energy(s)["energy_hartree"] for s in symbols}
    return [molecule_energy(m, atoms) for m in molecules]


def _versions() -> dict[str, str]:
    import numpy
    import pyscf
    import scipy

    return {
        "pyscf": pyscf.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }


def run(out_csv: Path = B3LYP_CSV, only: list[str] | None = None) -> None:
    """Compute the missing molecules, appending to ``out_csv``; settings in a JSON beside it."""
    from pyscf import lib

    out_json = out_csv.with_suffix(".json")
    meta: dict[str, Any] = json.loads(out_json.read_text()) if out_json.exists() else {}
    if meta and meta["settings"] != SETTINGS:
        raise SystemExit(f"{out_json} was made with other settings; move it away to start over")
    meta.setdefault("settings", SETTINGS)
    meta.setdefault("versions", _versions())
    if meta["versions"]["pyscf"] != _versions()["pyscf"]:
        raise SystemExit(f"{out_json} was made with PySCF {meta['versions']['pyscf']}")
    meta.setdefault("started", datetime.now(UTC).isoformat(timespec="seconds"))
    meta["threads"] = lib.num_threads()
    meta.setdefault("atoms", {})
    for symbol in sorted(ATOM_MULTIPLICITY):
        if symbol not in meta["atoms"]:
            meta["atoms"][symbol] = atom_energy(symbol)
            print(f"atom {symbol}: {meta['atoms'][symbol]}", flush=True)
    _write_json(out_json, meta)
    atom_energies = {s: a["energy_hartree"] for s, a in meta["atoms"].items()}

    done: set[str] = set()
    if out_csv.exists():
        with out_csv.open() as f:
            done = {row["name"] for row in csv.DictReader(f)}
    todo = [m for m in g2_molecules() if m.info["name"] not in done]
    if only:
        todo = [m for m in todo if m.info["name"] in only]
    new_file = not out_csv.exists()
    with out_csv.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
        for i, atoms in enumerate(todo, 1):
            row = molecule_energy(atoms, atom_energies)
            writer.writerow(row)
            f.flush()
            print(
                f"[{i}/{len(todo)}] {row['name']}: {row['b3lyp_De_kcal_mol']:.2f} kcal/mol "
                f"{row['method']} {row['wall_s']:.1f} s converged={row['converged']}",
                flush=True,
            )
    with out_csv.open() as f:
        rows = list(csv.DictReader(f))
    meta["n_molecules"] = len(rows)
    meta["molecule_wall_s_total"] = round(sum(float(r["wall_s"]) for r in rows), 1)
    meta["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    _write_json(out_json, meta)


def _write_json(path: Path, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def main() -> None:
    """Command line: compute the missing rows of the B3LYP table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=B3LYP_CSV, help="CSV to fill (resumable)")
    parser.add_argument("--only", nargs="*", help="only these G2 names")
    args = parser.parse_args()
    run(args.out, args.only)


if __name__ == "__main__":
    main()
