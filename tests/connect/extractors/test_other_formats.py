"""HDF5, CALPHAD TDB, CSV/JSON/YAML (with and without a user mapping) and the generic extractor."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from matterhub.connect.extractors import ExtractionContext, FileGroup
from matterhub.connect.extractors.calphad import TdbExtractor
from matterhub.connect.extractors.generic import GenericExtractor, describe
from matterhub.connect.extractors.hdf5 import Hdf5Extractor
from matterhub.connect.extractors.tabular import TabularExtractor

from .conftest import SAMPLES, extract_one, sample, staged


def test_hdf5_summary_and_h5ebsd_facts(expected: dict[str, Any]) -> None:
    facts = expected["hdf5/patterns.h5"]
    out = extract_one(Hdf5Extractor(), "hdf5/patterns.h5")
    summary = out["hdf5"]
    assert summary["dataset_count"] == facts["n_datasets"]
    assert summary["top_level"] == facts["top_level"]
    assert summary["values"]["manufacturer"] == facts["manufacturer"]
    patterns = next(d for d in summary["datasets"] if d["name"] == "Scan 1/EBSD/Data/patterns")
    assert (patterns["shape"], patterns["dtype"]) == (
        facts["patterns_shape"],
        facts["patterns_dtype"],
    )
    em = out["electron_microscopy"]
    assert em["beam_energy"] == facts["SEM.beam_energy"]
    assert em["magnification"] == facts["SEM.magnification"]
    assert em["microscope"] == facts["SEM.microscope"]


def test_nexus_definition(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "scan.nxs"
    with h5py.File(path, "w") as fh:
        entry = fh.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry["definition"] = "NXmx"
        data = entry.create_dataset("data", data=[[1.0, 2.0]])
        data.attrs["units"] = "counts"
    out = Hdf5Extractor().extract(
        FileGroup("scan.nxs", (staged(path, tmp_path),)), ExtractionContext()
    )
    assert out["hdf5"]["nexus_definition"] == ["NXmx"]
    assert out["hdf5"]["nexus_classes"] == ["NXentry"]
    assert {"name": "entry/data", "shape": [1, 2], "dtype": "float64", "units": "counts"} in out[
        "hdf5"
    ]["datasets"]


@pytest.mark.parametrize("relpath", ["tdb/NI_AL_DUPIN_2001.TDB", "tdb/alzn_mey.tdb"])
def test_tdb(relpath: str, expected: dict[str, Any]) -> None:
    facts = expected[relpath]
    out = extract_one(TdbExtractor(), relpath)
    assert out["calphad"]["phases"] == facts["phases"]
    assert out["calphad"]["elements"] == facts["elements"]
    assert out["calphad"]["parameter_count"] == facts["n_parameters"]
    assert out["material"]["elements"] == [e.capitalize() for e in facts["elements"]]


def test_csv_summary_without_mapping(expected: dict[str, Any]) -> None:
    facts = expected["csv/MD_properties.csv"]
    table = extract_one(TabularExtractor(), "csv/MD_properties.csv")["tabular"]
    assert [c["name"] for c in table["columns"]] == facts["columns"]
    assert table["row_count"] == facts["n_rows"]
    for column in table["columns"][1:]:
        stats = facts["numeric_columns"][column["name"]]
        assert column["type"] == "number"
        assert [column["min"], column["max"], column["mean"]] == pytest.approx(
            [stats["min"], stats["max"], stats["mean"]], rel=1e-8
        )


def test_csv_with_mapping_gives_one_record_per_row(expected: dict[str, Any]) -> None:
    index = {"csv": {"mapping": {"molecule.smiles": "SMILES", "custom.t_g": "T_g (K)"}}}
    rows = extract_one(TabularExtractor(), "csv/MD_properties.csv", index=index)
    assert len(rows) == expected["csv/MD_properties.csv"]["n_rows"]
    assert rows[0]["molecule"]["smiles"] == "C=CC(=O)OCC(CC)CCCC"
    assert rows[0]["custom"]["t_g"] == pytest.approx(224.98881544971357)


@pytest.mark.parametrize("suffix", ["json", "yaml"])
def test_json_and_yaml_with_mapping_and_na_values(tmp_path: Path, suffix: str) -> None:
    items = [{"f": "Al2O3", "gap": {"value": 8.8}}, {"f": "SiC", "gap": {"value": "n.a."}}]
    path = tmp_path / f"data.{suffix}"
    path.write_text(json.dumps(items))  # JSON is valid YAML
    index = {
        suffix: {
            "mapping": {"material.composition": "f", "custom.gap": "gap.value"},
            "na_values": ["n.a."],
        }
    }
    context = ExtractionContext(index=index)
    rows = TabularExtractor().extract(FileGroup(path.name, (staged(path, tmp_path),)), context)
    assert rows == [
        {"material": {"composition": "Al2O3"}, "custom": {"gap": 8.8}},
        {"material": {"composition": "SiC"}},
    ]


def test_generic_entry(expected: dict[str, Any]) -> None:
    (info,) = GenericExtractor().extract_files([sample("image/pattern.png")])
    raw = (SAMPLES / "image/pattern.png").read_bytes()
    assert info == {
        "filename": "pattern.png",
        "path": "image/pattern.png",
        "data_type": "PNG image data, 60 x 60, 8-bit/color RGBA",
        "mime_type": "image/png",
        "length": len(raw),
        "sha512": hashlib.sha512(raw).hexdigest(),
    }


@pytest.mark.parametrize(
    ("name", "head", "kind", "mime"),
    [
        (
            "a.h5",
            b"\x89HDF\r\n\x1a\n\x00",
            "Hierarchical Data Format (version 5) data",
            "application/x-hdf5",
        ),
        (
            "a.cif",
            b"data_x\n_cell_length_a 1\n",
            "Crystallographic Information File, ASCII text",
            "chemical/x-cif",
        ),
        ("OUTCAR", b" vasp.5.4.4\n", "VASP OUTCAR file, ASCII text", "text/plain"),
        ("a.bin", b"\x00\x01\x02\xff", "data", "application/octet-stream"),
        ("a.txt", b"", "empty", "application/x-empty"),
    ],
)
def test_describe(name: str, head: bytes, kind: str, mime: str) -> None:
    assert describe(name, head) == (kind, mime)
