"""The Δ-learning data (examples/delta_learning): reference, GFN2-xTB and B3LYP values."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from ase.data import g2_1
from examples.delta_learning import b3lyp, data

# Experimental De (kcal/mol) worked out by hand from ASE's G2 tables (shared/reference/science.md).
SCIENCE_MD_DE = {"CH4": 420.18, "C6H6": 1367.71, "H2O": 232.58}


@pytest.fixture(scope="module")
def committed() -> tuple[list, pd.DataFrame]:
    return data.load()


def test_reference_de_matches_the_hand_worked_values() -> None:
    for name, value in SCIENCE_MD_DE.items():
        assert data.reference_de(name) == pytest.approx(value, abs=0.01), name


def test_reference_de_is_ases_formula_on_g2_1_and_defined_for_all_148() -> None:
    names = data.molecule_names()
    assert len(names) == len(set(names)) == 148
    for name in g2_1.molecule_names:
        assert data.reference_de(name) == pytest.approx(g2_1.get_atomization_energy(name), abs=1e-9)
    values = np.array([data.reference_de(n) for n in names])
    assert np.isfinite(values).all()
    assert (values > 0).all()


def test_the_extxyz_and_the_csv_agree(committed: tuple[list, pd.DataFrame]) -> None:
    molecules, table = committed
    assert list(table.columns) == data.COLUMNS
    assert [m.info["name"] for m in molecules] == list(table["name"]) == data.molecule_names()
    assert [len(m) for m in molecules] == list(table["n_atoms"])
    assert [m.get_chemical_formula() for m in molecules] == list(table["formula"])
    for atoms, fresh in zip(molecules, data.g2_molecules(), strict=True):
        assert atoms.get_chemical_symbols() == fresh.get_chemical_symbols()
        np.testing.assert_allclose(atoms.positions, fresh.positions, atol=1e-8)
    reference = [data.reference_de(n) for n in table["name"]]
    np.testing.assert_allclose(table["reference_De_kcal_mol"], reference, atol=1e-5)
    assert np.isfinite(table["xtb_De_kcal_mol"]).all()


@pytest.mark.parametrize("name", ["CH4", "H2O", "C6H6", "O2", "CH3", "NO2", "SiCl4", "LiF"])
def test_gfn2_xtb_recomputed_matches_the_committed_table(
    name: str, committed: tuple[list, pd.DataFrame]
) -> None:
    molecules, table = committed
    atoms = molecules[data.molecule_names().index(name)]
    value = data.xtb_de(atoms)
    expected = table.set_index("name").loc[name, "xtb_De_kcal_mol"]
    assert value == pytest.approx(expected, abs=0.05)


def test_gfn2_xtb_closed_shells_match_the_hand_checked_values() -> None:
    # science.md: CH4 388.6, H2O 243.7, C6H6 1425 with spin-polarized atoms (far larger without).
    molecules = {m.info["name"]: m for m in data.g2_molecules()}
    assert data.xtb_de(molecules["CH4"]) == pytest.approx(388.6, abs=0.05)
    assert data.xtb_de(molecules["H2O"]) == pytest.approx(243.7, abs=0.05)
    assert data.xtb_de(molecules["C6H6"]) == pytest.approx(1425, abs=0.5)


def test_b3lyp_recomputed_for_three_molecules_matches_the_committed_table() -> None:
    table = pd.read_csv(data.B3LYP_CSV).set_index("name")
    names = ["H2O", "CH4", "NH3"]
    for row in b3lyp.compute(names):
        assert row["converged"]
        assert row["b3lyp_De_kcal_mol"] == pytest.approx(
            table.loc[row["name"], "b3lyp_De_kcal_mol"], abs=0.01
        )
        assert float(row["e_molecule_hartree"]) == pytest.approx(
            table.loc[row["name"], "e_molecule_hartree"], abs=1e-6
        )


def test_the_b3lyp_table_records_its_settings_and_is_merged(
    committed: tuple[list, pd.DataFrame],
) -> None:
    import pyscf

    meta = json.loads(data.B3LYP_CSV.with_suffix(".json").read_text())
    assert meta["settings"] == b3lyp.SETTINGS
    assert meta["versions"]["pyscf"] == pyscf.__version__
    table = pd.read_csv(data.B3LYP_CSV)
    assert table["name"].is_unique
    assert set(table["name"]) <= set(data.molecule_names())
    assert table["converged"].all()
    _, energies = committed
    merged = energies.set_index("name")["b3lyp_De_kcal_mol"]
    for name, value in table.set_index("name")["b3lyp_De_kcal_mol"].items():
        assert merged[name] == pytest.approx(value, abs=1e-5)
    missing = set(data.molecule_names()) - set(table["name"])
    assert all(math.isnan(merged[n]) for n in missing)


def test_generate_reproduces_the_committed_files(tmp_path) -> None:
    # All 148 GFN2-xTB energies recomputed (well under a second on a quiet machine).
    data.generate(tmp_path)
    fresh = pd.read_csv(tmp_path / "energies.csv")
    committed = pd.read_csv(data.ENERGIES_CSV)
    pd.testing.assert_frame_equal(fresh, committed, check_exact=False, atol=1e-5, rtol=0)
    assert (tmp_path / "molecules.extxyz").read_text() == data.MOLECULES_XYZ.read_text()


def test_gfn2_xtb_of_an_unnamed_structure_takes_the_multiplicity_from_its_electrons() -> None:
    molecules = {m.info["name"]: m for m in data.g2_molecules()}
    for name in ["CH3", "CH4"]:  # a doublet and a singlet, as a servable would receive them
        bare = molecules[name].copy()
        bare.info.clear()
        assert data.xtb_de(bare) == pytest.approx(data.xtb_de(molecules[name]), abs=1e-9)
    triplet = molecules["CH2_s3B1d"].copy()
    triplet.info = {}
    singlet_guess = data.xtb_de(triplet)
    triplet.info["multiplicity"] = 3
    assert data.xtb_de(triplet) == pytest.approx(data.xtb_de(molecules["CH2_s3B1d"]), abs=1e-9)
    assert singlet_guess != pytest.approx(data.xtb_de(triplet), abs=1.0)
