"""Derived files: PNG previews, TIFF copies of vendor microscopy formats, CIF/extended XYZ."""

from __future__ import annotations

import io
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from matterhub.connect.extractors import (
    DerivedFile,
    ExtractionContext,
    Extractor,
    FileGroup,
    StagedFile,
    run_extractors,
)
from matterhub.connect.extractors.images import ImageExtractor
from matterhub.connect.extractors.microscopy import MicroscopyExtractor
from matterhub.connect.extractors.pool import ExtractorPool
from matterhub.connect.extractors.structures import StructureExtractor

from .conftest import SAMPLES, sample, staged

PNG = b"\x89PNG\r\n\x1a\n"
PREVIEWS = ExtractionContext(config={"previews": True})


@pytest.fixture(scope="module")
def pool() -> Iterator[ExtractorPool]:
    pool = ExtractorPool(2)
    yield pool
    pool.close()


def derive(extractor: Extractor, relpath: str, context: ExtractionContext = PREVIEWS) -> Any:
    file = sample(relpath)
    group = FileGroup(relpath, (file,))
    extractor.extract(group, context)
    return {d.name: d for d in extractor.derive(group, context)}


def _png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    assert data.startswith(PNG)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


@pytest.mark.parametrize(
    ("extractor", "relpath"),
    [
        (ImageExtractor(), "image/renishaw_wire.jpg"),
        (ImageExtractor(), "image/pattern.png"),
        (MicroscopyExtractor(), "dm3/test_STEM_image.dm3"),
        (MicroscopyExtractor(), "tiff/FEI-Helios-Ebeam-8bits.tif"),
        (MicroscopyExtractor(), "mrc/HAADFscan.mrc"),
        (MicroscopyExtractor(), "emd/fei_example_tem_stack.emd"),
        (StructureExtractor(), "poscar/POSCAR-JVASP-107"),
        (StructureExtractor(), "xyz/H2O-pos-1.xyz"),
    ],
)
def test_every_image_micrograph_and_structure_has_a_small_png(
    extractor: Extractor, relpath: str
) -> None:
    name = relpath.rsplit("/", 1)[-1]
    preview = derive(extractor, relpath)[f"{name}.preview.png"]
    assert (preview.source, preview.media_type) == (relpath, "image/png")
    width, height = _png_size(preview.data)
    assert 0 < width <= 256 and 0 < height <= 256


@pytest.mark.parametrize(
    "relpath", ["dm3/test_STEM_image.dm3", "dm4/EELS_SI.dm4", "emd/fei_example_tem_stack.emd"]
)
def test_vendor_microscopy_gets_a_readable_tiff_copy_with_the_same_data(
    relpath: str, expected: dict[str, Any]
) -> None:
    import json

    import numpy as np
    import tifffile
    from rsciio.digitalmicrograph import file_reader as dm_reader
    from rsciio.emd import file_reader as emd_reader

    name = relpath.rsplit("/", 1)[-1]
    copy = derive(MicroscopyExtractor(), relpath)[f"{name}.tif"]
    assert copy.media_type == "image/tiff"
    with tifffile.TiffFile(io.BytesIO(copy.data)) as tif:
        data = tif.asarray()
        description = json.loads(tif.pages[0].description)
    assert list(data.shape) == expected[relpath]["data_shape"]
    assert str(data.dtype) == expected[relpath]["dtype"]
    reader = emd_reader if relpath.endswith(".emd") else dm_reader
    original = reader(str(SAMPLES / relpath))[0]["data"]
    assert np.array_equal(data, original)
    assert description["source_format"] == name.rsplit(".", 1)[1]
    assert [a["size"] for a in description["axes_calibration"]] == list(original.shape)


def test_open_formats_get_no_copy() -> None:
    for relpath in ["tiff/FEI-Helios-Ebeam-8bits.tif", "mrc/HAADFscan.mrc"]:
        assert not [n for n in derive(MicroscopyExtractor(), relpath) if n.endswith(".tif")]


def test_a_copy_over_the_size_limit_is_skipped_with_the_reason(
    tmp_path: Path, pool: ExtractorPool
) -> None:
    shutil.copy(SAMPLES / "dm4/EELS_SI.dm4", tmp_path / "EELS_SI.dm4")
    context = ExtractionContext(config={"previews": True, "open_copy_max_bytes": 10_000})
    result = run_extractors([staged(tmp_path / "EELS_SI.dm4", tmp_path)], context, pool=pool)
    names = {d.name for d in result.derived}
    assert "EELS_SI.dm4.preview.png" in names
    assert "EELS_SI.dm4.tif" not in names
    (warning,) = [w for w in result.warnings if w["extractor"] == "microscopy"]
    assert "32768 bytes of data is over the 10000-byte limit" in warning["message"]
    assert result.records[0]["electron_microscopy"]["beam_energy"] > 0  # the facts still stand


def test_structure_copies_parse_back_to_the_same_composition(expected: dict[str, Any]) -> None:
    from ase.io import read
    from pymatgen.io.cif import CifParser

    derived = derive(StructureExtractor(), "poscar/POSCAR-JVASP-107")
    cif = derived["POSCAR-JVASP-107.cif"].data.decode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen notes the coordinates it rounds
        structure = CifParser.from_str(cif).parse_structures(primitive=False)[0]
    facts = expected["poscar/POSCAR-JVASP-107"]
    assert structure.composition.formula == facts["formula"]
    assert len(structure) == facts["nsites"]
    atoms = read(io.StringIO(derived["POSCAR-JVASP-107.extxyz"].data.decode()), format="extxyz")
    assert atoms.get_chemical_formula() == "C4Si4"
    assert atoms.pbc.all()


def test_a_cif_gets_no_cif_copy_and_a_disordered_one_no_extxyz() -> None:
    ordered = derive(StructureExtractor(), "cif/m-HfO2.cif")
    assert set(ordered) == {"m-HfO2.cif.extxyz", "m-HfO2.cif.preview.png"}
    disordered = derive(StructureExtractor(), "cif/1548397.cif")
    assert "1548397.cif.extxyz" not in disordered  # partial occupancy has no XYZ form
    assert "1548397.cif.cif" not in disordered


def test_molecules_get_no_cif_and_a_dump_without_elements_nothing() -> None:
    molecule = derive(StructureExtractor(), "xyz/H2O-pos-1.xyz")
    assert set(molecule) == {"H2O-pos-1.xyz.preview.png"}
    periodic_xyz = derive(StructureExtractor(), "extxyz/explore_c-gap-20u.xyz")
    assert "explore_c-gap-20u.xyz.cif" in periodic_xyz
    assert derive(StructureExtractor(), "lammps/naph_298_eq.lammpstrj") == {}


class BrokenPreview(Extractor):
    """A test-only extractor whose previews fail."""

    name = "broken-preview"

    def accepts(self, file: StagedFile) -> bool:
        return file.suffix == "txt"

    def extract(self, group: FileGroup, context: ExtractionContext) -> dict[str, Any]:
        return {"custom": {"seen": "yes"}}

    def derive(self, group: FileGroup, context: ExtractionContext) -> list[DerivedFile]:
        raise RuntimeError("renderer exploded")


def test_a_failing_preview_is_a_warning_and_keeps_the_facts(
    tmp_path: Path, pool: ExtractorPool
) -> None:
    (tmp_path / "a.txt").write_text("x")
    result = run_extractors(
        [staged(tmp_path / "a.txt", tmp_path)], PREVIEWS, extractors=[BrokenPreview()], pool=pool
    )
    assert result.records[0]["custom"] == {"seen": "yes"}
    (warning,) = result.warnings
    assert warning["message"] == "derived files: RuntimeError: renderer exploded"


def test_a_16_bit_image_preview_is_scaled_not_clipped(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    ramp = (1000 + np.arange(64 * 64, dtype="uint16").reshape(64, 64) // 4).astype("uint16")
    Image.fromarray(ramp).save(tmp_path / "ramp.tif")
    file = staged(tmp_path / "ramp.tif", tmp_path)
    (preview,) = ImageExtractor().derive(FileGroup(file.relpath, (file,)), PREVIEWS)
    with Image.open(io.BytesIO(preview.data)) as image:
        pixels = np.asarray(image)
    assert image.mode == "L"
    assert pixels.min() < 10 and pixels.max() > 245  # Pillow's own convert() gives all 255


def test_an_image_too_large_for_a_preview_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matterhub.connect.extractors import images

    monkeypatch.setattr(images, "PREVIEW_MAX_PIXELS", 1000)
    file = sample("image/pattern.png")
    with pytest.raises(ValueError, match="60x60 pixels is over the 1000-pixel limit"):
        ImageExtractor().derive(FileGroup(file.relpath, (file,)), PREVIEWS)


class SlowPreview(BrokenPreview):
    """A test-only extractor whose previews hang."""

    name = "slow-preview"

    def derive(self, group: FileGroup, context: ExtractionContext) -> list[DerivedFile]:
        import time

        time.sleep(60)
        return []


def test_a_hanging_preview_is_cut_off_and_keeps_the_facts(
    tmp_path: Path, pool: ExtractorPool
) -> None:
    import time

    (tmp_path / "a.txt").write_text("x")
    context = ExtractionContext(config={"previews": True}, time_limit_s=1.0)
    started = time.monotonic()
    result = run_extractors(
        [staged(tmp_path / "a.txt", tmp_path)], context, extractors=[SlowPreview()], pool=pool
    )
    assert time.monotonic() - started < 10
    assert result.records[0]["custom"] == {"seen": "yes"}
    assert result.warnings == [
        {
            "path": "a.txt",
            "extractor": "slow-preview",
            "message": "derived files: timed out after 1 s",
        }
    ]
