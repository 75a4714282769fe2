"""One file of every supported format through the real Connect pipeline, then found by search."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from matterhub.bootstrap import Services, build_services
from matterhub.settings import Settings
from tests.connect.extractors.conftest import SAMPLES
from tests.connect.helpers import CIF, codes, dc, search, submit, user

# One sample per format (the VASP and QE folders are one calculation each).
SAMPLE_FILES = [
    "cif/m-HfO2.cif",
    "poscar/POSCAR-JVASP-107",
    "xyz/H2O-pos-1.xyz",
    "extxyz/explore_c-gap-20u.xyz",
    "lammps/data.hexane_cyclohexane",
    "vasp/AlN_alternative_pseudopotentials",
    "qe/TiO2_opt",
    "gaussian/dvb_gopt.out",
    "dm3/test_STEM_image.dm3",
    "dm4/EELS_SI.dm4",
    "emd/fei_example_tem_stack.emd",
    "mrc/HAADFscan.mrc",
    "tiff/FEI-Helios-Ebeam-8bits.tif",
    "image/renishaw_wire.jpg",
    "hdf5/patterns.h5",
    "tdb/alzn_mey.tdb",
    "csv/MD_properties.csv",
]
GAPS = [("Fe2O3", 2.1), ("TiO2", 3.2), ("ZnO", 3.37)]
XML = (
    '<?xml version="1.0"?><samples>'
    + "".join(
        f'<sample id="s{i}"><name>{f}</name><tc>{i * 10}</tc></sample>'
        for i, (f, _) in enumerate(GAPS)
    )
    + "</samples>"
)


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    """expected.json: per sample, the facts taken with the reference libraries."""
    facts = json.loads((SAMPLES / "expected.json").read_text())
    return {path: entry["expected"] for path, entry in facts.items()}


def _folder(root: Path) -> Path:
    folder = root / "formats"
    folder.mkdir(parents=True)
    for relpath in SAMPLE_FILES:
        source, target = SAMPLES / relpath, folder / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy(source, target)
    (folder / "made").mkdir()
    (folder / "made" / "Fe.cif").write_text(CIF)
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["formula", "gap (eV)"])
    for row in GAPS:
        sheet.append(list(row))
    book.save(folder / "made" / "gaps_batch7.xlsx")
    (folder / "made" / "tc.xml").write_text(XML)
    (folder / "made" / "run.yaml").write_text("code: demo\nsteps: 3\n")
    return folder


def _hits(services: Services, q: str) -> list[dict[str, Any]]:
    found = search(services, q)
    return [json.loads(hit.source) for hit in found.hits]


def _one(services: Services, q: str) -> dict[str, Any]:
    hits = _hits(services, q)
    assert len(hits) == 1, (q, [h["files"][0]["filename"] for h in hits])
    return hits[0]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A hub that has run the folder through Connect (module-scoped: extraction is slow)."""
    tmp = tmp_path_factory.mktemp("formats")
    folder = _folder(tmp / "incoming")
    services = build_services(
        Settings(data_dir=tmp / "hub", connect_allowed_roots=[tmp / "incoming"])
    )
    services.start()
    try:
        alice = user(services, "alice")
        index = {
            "excel": {
                "mapping": {"material.composition": "formula", "custom.band_gap": "gap (eV)"}
            },
            "xml": {
                "mapping": {
                    "material.composition": "name",
                    "custom.tc": "tc",
                    "custom.sample": "@id",
                },
                "rows": "samples.sample",
            },
            "filename": {"mapping": {"custom.batch": r"batch(?P<value>\d+)"}},
        }
        sid = submit(
            services,
            alice,
            dc=dc("Every format the extractors read"),
            data_sources=[str(folder)],
            index=index,
        )
        status = services.connect.wait(sid, timeout=600)
        yield services, sid, status
    finally:
        services.close()


def test_the_submission_succeeds_with_a_record_per_group_and_row(published: Any) -> None:
    services, sid, status = published
    assert status["flow_status"]["status"] == "SUCCEEDED", status["display_status"]
    # Extraction "S", not "M": no file gave a warning and no block failed the record schema.
    assert codes(status)[4] == "S", status["status"]["status_message"]
    records = _hits(
        services, f'mdf.source_name:"{sid.rsplit("_v", 1)[0]}" AND mdf.resource_type:record'
    )
    names = sorted(r["files"][0]["filename"] for r in records)
    # Spreadsheet and XML rows are one record each; every other group one record.
    assert names.count("gaps_batch7.xlsx") == len(GAPS)
    assert names.count("tc.xml") == len(GAPS)
    assert "INCAR" in names and "pw.in" in names and "Fe.cif" in names


def test_structures_and_dft_fields_are_searchable(published: Any, expected: dict[str, Any]) -> None:
    services, _, _ = published
    iron = _one(services, "material.elements:Fe AND crystal_structure.space_group_number:229")
    assert iron["files"][0]["filename"] == "Fe.cif"
    assert (
        _one(services, "crystal_structure.space_group_number:14")["material"]["reduced_formula"]
        == "HfO2"
    )
    vasp_facts = expected["vasp/AlN_alternative_pseudopotentials/vasprun.xml"]
    vasp = _one(services, "dft.code:VASP AND dft.converged:true AND dft.cutoff_energy:500")
    assert vasp["dft"]["exchange_correlation_functional"] == vasp_facts["xc_functional"]
    assert len(vasp["files"]) == 5
    qe = _one(services, "dft.code:*ESPRESSO* AND crystal_structure.space_group_number:136")
    assert qe["material"]["reduced_formula"] == "TiO2"
    gaussian = _one(services, "dft.code:Gaussian AND dft.basis_set:STO-3G")
    assert gaussian["material"]["elements"] == expected["gaussian/dvb_gopt.out"]["elements"]
    assert _one(services, "md.atom_style:full")["files"][0]["filename"] == "data.hexane_cyclohexane"


def test_microscopy_image_hdf5_calphad_and_tabular_fields_are_searchable(
    published: Any, expected: dict[str, Any]
) -> None:
    services, _, _ = published
    dm3 = expected["dm3/test_STEM_image.dm3"]
    micrograph = _one(
        services,
        f"electron_microscopy.beam_energy:{dm3['beam_energy_kV']:g} AND "
        f"electron_microscopy.magnification:{dm3['magnification']:g} AND image.dtype:{dm3['dtype']}",
    )
    assert micrograph["files"][0]["filename"] == "test_STEM_image.dm3"
    assert micrograph["image"]["shape"] == dm3["data_shape"]
    assert (
        _one(services, "electron_microscopy.acquisition_mode:EBSD")["hdf5"]["values"][
            "manufacturer"
        ]
        == "kikuchipy"
    )
    photo = _one(services, "image.format:JPEG AND image.exif.Make:Renishaw")
    assert photo["image"]["width"] == expected["image/renishaw_wire.jpg"]["width_px"]
    tdb = _one(services, "calphad.phases:HCP_A3 AND material.elements:Zn")
    assert tdb["calphad"]["phases"] == expected["tdb/alzn_mey.tdb"]["phases"]
    row = _one(services, "material.composition:TiO2 AND custom.band_gap:[3 TO 3.5]")
    assert row["files"][0]["filename"] == "gaps_batch7.xlsx"
    assert row["custom"]["batch"] == 7  # from the file name, merged into every row
    assert _one(services, "custom.sample:s2")["custom"]["tc"] == 20
    table = _one(services, "tabular.format:csv")
    assert table["tabular"]["row_count"] == expected["csv/MD_properties.csv"]["n_rows"]
    assert _one(services, "tabular.format:yaml")["tabular"]["keys"] == ["code", "steps"]


def test_previews_and_copies_are_linked_from_the_records(published: Any) -> None:
    services, _, _ = published

    def derived(record: dict[str, Any]) -> set[str]:
        names = set()
        for entry in record["files"]:
            for value in entry.values():
                if isinstance(value, list):
                    names |= {
                        str(v.get("path", "")).rsplit("/", 1)[-1]
                        for v in value
                        if isinstance(v, dict)
                    }
        return names

    dm4 = _one(services, 'electron_microscopy.operation_mode:"GIF SCANNING"')
    assert {"EELS_SI.dm4.preview.png", "EELS_SI.dm4.tif"} <= derived(dm4)
    poscar = _one(services, "crystal_structure.stoichiometry:AB AND material.elements:Si")
    assert {"POSCAR-JVASP-107.cif", "POSCAR-JVASP-107.extxyz"} <= derived(poscar)
