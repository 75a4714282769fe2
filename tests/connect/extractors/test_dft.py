"""DFT outputs: a VASP run folder, a Quantum ESPRESSO folder and Gaussian logs."""

from __future__ import annotations

from typing import Any

import pytest

from matterhub.connect.extractors import ExtractionContext
from matterhub.connect.extractors.espresso import EspressoExtractor
from matterhub.connect.extractors.gaussian import GaussianExtractor
from matterhub.connect.extractors.vasp import VaspExtractor

from .conftest import SAMPLES, extract_one, staged

VASP_DIR = "vasp/AlN_alternative_pseudopotentials"


def _groups(extractor: Any, folder: str) -> list[Any]:
    files = [staged(p) for p in sorted((SAMPLES / folder).iterdir())]
    return list(extractor.group(files))


def test_vasp_folder_is_one_group_with_dft_and_final_structure(expected: dict[str, Any]) -> None:
    (group,) = _groups(VaspExtractor(), VASP_DIR)
    assert {f.name for f in group.files} == {"INCAR", "KPOINTS", "POSCAR", "OUTCAR", "vasprun.xml"}
    out = VaspExtractor().extract(group, ExtractionContext())
    run, outcar, incar = (expected[f"{VASP_DIR}/{n}"] for n in ("vasprun.xml", "OUTCAR", "INCAR"))
    dft = out["dft"]
    assert dft["code"] == "VASP"
    assert dft["code_version"] == run["vasp_version"]
    assert dft["exchange_correlation_functional"] == run["xc_functional"] == outcar["xc_functional"]
    assert dft["cutoff_energy"] == run["ENCUT_eV"] == incar["INCAR.ENCUT"]
    assert dft["converged"] is run["converged"]
    assert dft["total_energy"] == pytest.approx(run["final_energy_eV"], abs=1e-5)
    assert dft["potentials"] == run["potcar_symbols"]
    assert dft["ionic_steps"] == run["n_ionic_steps"]
    assert dft["k_points_irreducible"] == run["n_kpoints_irreducible"]
    assert dft["k_points"]["style"] == expected[f"{VASP_DIR}/KPOINTS"]["style"]
    assert dft["k_points"]["grid"] == expected[f"{VASP_DIR}/KPOINTS"]["kpts"]
    assert dft["incar"]["ISMEAR"] == incar["INCAR.ISMEAR"]
    assert dft["cores"] == outcar["cores"]
    assert out["material"]["reduced_formula"] == run["final_structure.reduced_formula"]
    assert out["crystal_structure"]["number_of_atoms"] == run["final_structure.nsites"]
    assert (
        out["crystal_structure"]["space_group_number"] == run["final_structure.spacegroup_number"]
    )


def test_vasp_needs_an_anchor_file_to_group() -> None:
    assert _groups(VaspExtractor(), "poscar") == []


def test_quantum_espresso_folder(expected: dict[str, Any]) -> None:
    (group,) = _groups(EspressoExtractor(), "qe/TiO2_opt")

    out = EspressoExtractor().extract(group, ExtractionContext())
    facts, inputs = expected["qe/TiO2_opt/pw.out"], expected["qe/TiO2_opt/pw.in"]
    dft = out["dft"]
    assert dft["code_version"] == facts["pwscf_version"]
    assert dft["exchange_correlation_functional"] == facts["xc_functional"]
    assert dft["exchange_correlation"] == facts["exchange_correlation"]
    assert dft["cutoff_energy_Ry"] == facts["ecutwfc_Ry"]
    assert dft["charge_density_cutoff_Ry"] == facts["ecutrho_Ry"]
    assert dft["total_energy_Ry"] == facts["final_total_energy_Ry"]
    assert dft["total_energy"] == pytest.approx(facts["final_energy_eV"], abs=1e-3)
    assert dft["converged"] is True
    assert dft["bfgs_converged"] is facts["bfgs_converged"]
    assert dft["scf_cycles"] == facts["n_scf_cycles"]
    assert dft["calculation"] == inputs["namelist.calculation"]
    assert dft["potentials"] == inputs["pseudopotentials"]
    assert dft["input_parameters"]["vdw_corr"] == inputs["namelist.vdw_corr"]
    assert dft["k_points"]["grid"] == [7, 7, 12]
    assert out["material"]["reduced_formula"] == facts["final_structure.reduced_formula"]
    assert (
        out["crystal_structure"]["space_group_number"] == facts["final_structure.spacegroup_number"]
    )
    lattice = out["crystal_structure"]["lattice"]
    assert [lattice[k] for k in "abc"] == pytest.approx(
        facts["final_structure.lattice_abc_A"], abs=1e-3
    )


@pytest.mark.parametrize("relpath", ["gaussian/Mo4OCl4-sp.log", "gaussian/dvb_gopt.out"])
def test_gaussian_log(relpath: str, expected: dict[str, Any]) -> None:
    facts = expected[relpath]
    out = extract_one(GaussianExtractor(), relpath)
    dft = out["dft"]
    assert dft["route"] == facts["route_line"]
    assert dft["exchange_correlation_functional"] == facts["functional"]
    assert dft["charge"] == facts["charge"]
    assert dft["multiplicity"] == facts["multiplicity"]
    assert dft["total_energy_Hartree"] == facts["final_scf_energy_Hartree"]
    assert dft["total_energy"] == pytest.approx(facts["final_scf_energy_eV"], abs=1e-3)
    assert dft["scf_energy_count"] == facts["n_scf_energies"]
    assert dft["normal_termination"] is facts["normal_termination"]
    assert dft["code_version"].replace(" Rev. ", "+") == "16+A.03"
    if "basis_set" in facts:
        assert dft["basis_set"] == facts["basis_set"]
    assert out["molecule"]["number_of_atoms"] == facts["natom"]
    assert out["material"]["elements"] == sorted(facts["formula_counts"])


def test_gaussian_is_recognised_by_content_not_extension() -> None:
    from .conftest import sample

    assert not GaussianExtractor().accepts(sample("qe/TiO2_opt/pw.out"))
    assert not EspressoExtractor().accepts(sample("gaussian/dvb_gopt.out"))
