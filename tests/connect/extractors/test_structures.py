"""Structures: CIF (declared vs detected symmetry, partial occupancy), POSCAR, XYZ, LAMMPS."""

from __future__ import annotations

from typing import Any

import pytest

from matterhub.connect.extractors.structures import StructureExtractor

from .conftest import extract_one

STRUCTURE = StructureExtractor()
CIFS = ["cif/1548397.cif", "cif/1000052.cif", "cif/m-HfO2.cif"]
POSCARS = [
    "poscar/POSCAR-JVASP-107",
    "poscar/CONTCAR",
    "vasp/AlN_alternative_pseudopotentials/POSCAR",
]


@pytest.mark.parametrize("relpath", CIFS + POSCARS)
def test_crystal_facts(relpath: str, expected: dict[str, Any]) -> None:
    facts = expected[relpath]
    out = extract_one(STRUCTURE, relpath)
    material, crystal = out["material"], out["crystal_structure"]
    assert material["reduced_formula"] == facts["reduced_formula"]
    assert material["formula"] == facts["formula"]
    assert material["elements"] == facts["elements"]
    assert crystal["number_of_atoms"] == facts["nsites"]
    assert [crystal["lattice"][k] for k in "abc"] == pytest.approx(facts["lattice_abc_A"], abs=1e-3)
    assert sum(material["elemental_proportions"].values()) == pytest.approx(1.0, abs=1e-4)
    if "spacegroup_number" in facts:
        assert crystal["space_group_number"] == facts["spacegroup_number"]
        assert crystal["space_group_symbol"] == facts["spacegroup_symbol"]
        assert crystal["space_group_source"] == "spglib"
    if "volume_A3" in facts:
        assert crystal["volume"] == pytest.approx(facts["volume_A3"], abs=1e-2)
    if "cif_declared_spacegroup_number" in facts:
        assert crystal["declared_space_group_number"] == facts["cif_declared_spacegroup_number"]
        assert crystal["has_partial_occupancy"] is facts["has_partial_occupancy"]
    if "cod_database_code" in facts:
        assert out["cross_reference"]["cod"] == facts["cod_database_code"]


def test_disordered_cif_reports_declared_formula_and_space_group(expected: dict[str, Any]) -> None:
    facts = expected["cif/1548397.cif"]
    crystal = extract_one(STRUCTURE, "cif/1548397.cif")["crystal_structure"]
    assert crystal["is_ordered"] is False
    assert crystal["space_group_number"] == 227
    assert crystal["space_group_source"] == "declared"
    assert crystal["declared_formula"] == facts["cif_chemical_formula_sum"]


def test_xyz_trajectory_is_one_molecule_record_with_frames(expected: dict[str, Any]) -> None:
    facts = expected["xyz/H2O-pos-1.xyz"]
    out = extract_one(STRUCTURE, "xyz/H2O-pos-1.xyz")
    assert out["molecule"]["formula"] == facts["formula"]
    assert out["molecule"]["molecular_weight"] == pytest.approx(18.015, abs=1e-2)
    assert out["material"]["elements"] == facts["elements"]
    assert out["md"]["frame_count"] == facts["n_frames"]
    assert "crystal_structure" not in out


def test_extended_xyz(expected: dict[str, Any]) -> None:
    facts = expected["extxyz/explore_c-gap-20u.xyz"]
    out = extract_one(STRUCTURE, "extxyz/explore_c-gap-20u.xyz")
    assert out["md"]["frame_count"] == facts["n_frames"]
    assert out["material"]["formula"] == facts["formula_first_frame"]
    assert out["material"]["elements"] == facts["elements_all_frames"]
    assert out["crystal_structure"]["number_of_atoms"] == facts["natoms_first_frame"]
    assert out["md"]["energy_first_frame_eV"] == pytest.approx(facts["energy_first_frame_eV"])


def test_lammps_data(expected: dict[str, Any]) -> None:
    facts = expected["lammps/data.hexane_cyclohexane"]
    out = extract_one(STRUCTURE, "lammps/data.hexane_cyclohexane")
    assert out["crystal_structure"]["number_of_atoms"] == facts["natoms"]
    assert out["md"]["atom_style"] == "full"
    lattice = out["crystal_structure"]["lattice"]
    assert [lattice[k] for k in "abc"] == pytest.approx(facts["cell_lengths_A"], abs=1e-3)


def test_lammps_dump_is_one_record_with_a_frame_count(expected: dict[str, Any]) -> None:
    facts = expected["lammps/naph_298_eq.lammpstrj"]
    md = extract_one(STRUCTURE, "lammps/naph_298_eq.lammpstrj")["md"]
    assert md["frame_count"] == facts["n_frames"]
    assert md["particle_count"] == facts["natoms"]
    assert md["atom_columns"] == facts["atom_columns"]
    assert [md["first_timestep"], md["last_timestep"]] == [
        facts["timesteps"][0],
        facts["timesteps"][-1],
    ]
    assert [md["box"][k] for k in "abc"] == pytest.approx(
        facts["cell_lengths_first_frame_A"], abs=1e-3
    )


def test_a_structure_with_zero_atoms_is_refused(tmp_path: Any) -> None:
    from matterhub.connect.extractors import ExtractionContext, FileGroup

    from .conftest import staged

    path = tmp_path / "empty.xyz"
    path.write_text("0\nnothing here\n")
    file = staged(path, tmp_path)
    with pytest.raises(ValueError, match="no atoms"):
        STRUCTURE.extract(FileGroup(file.relpath, (file,)), ExtractionContext())
