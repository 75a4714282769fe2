"""Electron microscopy through RosettaSciIO (lazy reads) and images through Pillow."""

from __future__ import annotations

from typing import Any

import pytest

from matterhub.connect.extractors import ExtractionContext, FileGroup
from matterhub.connect.extractors.images import ImageExtractor
from matterhub.connect.extractors.microscopy import MicroscopyExtractor

from .conftest import extract_one, sample

EM = MicroscopyExtractor()
EM_FILES = [
    "dm3/test_STEM_image.dm3",
    "dm4/EELS_SI.dm4",
    "emd/fei_example_tem_stack.emd",
    "tiff/FEI-Helios-Ebeam-8bits.tif",
    "mrc/HAADFscan.mrc",
]


@pytest.mark.parametrize("relpath", EM_FILES)
def test_microscopy_facts(relpath: str, expected: dict[str, Any]) -> None:
    facts = expected[relpath]
    out = extract_one(EM, relpath)
    em, image = out["electron_microscopy"], out["image"]
    assert image["shape"] == facts["data_shape"]
    assert image["dtype"] == facts["dtype"]
    assert [a["size"] for a in em["axes"]] == [a["size"] for a in facts["axes"]]
    assert [a["units"] for a in em["axes"]] == [a["units"] for a in facts["axes"]]
    checks = {
        "instrument_type": "instrument_type",
        "acquisition_mode": "acquisition_mode",
        "beam_energy": "beam_energy_kV",
        "magnification": "magnification",
        "camera_length": "camera_length_mm",
        "convergence_angle": "convergence_angle_mrad",
        "working_distance": "working_distance_mm",
        "beam_current": "beam_current_nA",
        "acquisition_date": "acquisition_date",
        "acquisition_time": "acquisition_time",
    }
    for ours, theirs in checks.items():
        if theirs in facts:
            assert em[ours] == pytest.approx(facts[theirs]), ours
    microscope = facts.get("microscope") or facts.get("microscope_info_name")
    if microscope:
        assert em["microscope"] == microscope
    if facts.get("signal_type"):
        assert em["signal_type"] == facts["signal_type"]


def test_dm4_detector_and_collection_angle(expected: dict[str, Any]) -> None:
    em = extract_one(EM, "dm4/EELS_SI.dm4")["electron_microscopy"]
    assert em["detectors"] == expected["dm4/EELS_SI.dm4"]["detector"]
    assert em["collection_angle"] == 62.0
    assert em["operation_mode"] == "GIF SCANNING"


def test_fei_tiff_detector_and_magnification_from_the_data_bar(expected: dict[str, Any]) -> None:
    facts = expected["tiff/FEI-Helios-Ebeam-8bits.tif"]
    em = extract_one(EM, "tiff/FEI-Helios-Ebeam-8bits.tif")["electron_microscopy"]
    assert em["detector"] == f"{facts['fei.Detectors.Name']} ({facts['fei.Detectors.Mode']})"
    assert em["magnification"] == pytest.approx(
        facts["magnification_from_MagCanvasRealWidth_over_HFW"]
    )


def test_mrc_fei_extended_header(expected: dict[str, Any]) -> None:
    facts = expected["mrc/HAADFscan.mrc"]
    em = extract_one(EM, "mrc/HAADFscan.mrc")["electron_microscopy"]
    assert em["microscope"] == facts["fei_ext.Microscope_type"]
    assert em["beam_energy"] == facts["fei_ext.HT_V"] / 1000
    assert em["software"] == facts["fei_ext.Application"]
    assert em["detector"] == facts["fei_ext.Camera_name"]
    assert em["spot_size"] == facts["fei_ext.Spot_index"]


@pytest.mark.parametrize("relpath", ["image/renishaw_wire.jpg", "image/pattern.png"])
def test_image_facts(relpath: str, expected: dict[str, Any]) -> None:
    facts = expected[relpath]
    image = extract_one(ImageExtractor(), relpath)["image"]
    assert (image["format"], image["width"], image["height"], image["mode"]) == (
        facts["image_format"],
        facts["width_px"],
        facts["height_px"],
        facts["mode"],
    )
    assert image["has_exif"] is facts["has_exif"]
    for key, value in facts.items():
        if key.startswith("exif."):
            assert (
                image["exif"][key[5:]] == pytest.approx(value)
                if isinstance(value, float)
                else value
            )


@pytest.mark.parametrize(
    ("extractor", "relpath"),
    [(ImageExtractor(), "image/renishaw_wire.jpg"), (EM, "dm3/test_STEM_image.dm3")],
)
def test_previews_are_small_pngs(extractor: Any, relpath: str) -> None:
    file = sample(relpath)
    derived = extractor.derive(FileGroup(relpath, (file,)), ExtractionContext())
    (preview,) = [d for d in derived if d.name.endswith(".png")]
    assert preview.data.startswith(b"\x89PNG")
    assert preview.media_type == "image/png"
    assert preview.source == relpath
