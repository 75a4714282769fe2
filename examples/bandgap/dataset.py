"""The simulated films as files for ONE Connect submission: a folder per sample, one record each.

Layout (`write(samples, root)`)::

    <root>/b0000/s000000/image.png       the sample's sRGB image (lossless PNG)
    <root>/b0000/s000000/spectrum.json   its absorbance spectrum, with the sample's facts
    <root>/b0000/s000001/…
    <root>/b0001/s001000/…               (1,000 sample folders per batch folder)

Two files per sample (361,804 files for 180,902 samples). The submission's `index.json`
mapping (`MAPPING`, `UNITS`: the "mapping" half of "files plus a mapping") turns the facts of
each `spectrum.json` into record fields, and `extraction_config.group_by_dir` makes each sample
folder one record holding both files. Why this layout and not one CSV row per sample that names
its two files: Connect groups files into records by folder (`group_by_dir`) or by extractor;
a CSV row cannot pull other files into its record, so the images and spectra would become
361,804 records of their own beside the 180,902 rows. A folder per sample needs nothing new in
Connect, keeps each sample's record self-contained (its facts travel with its spectrum, which is
how an instrument writes them), and streams: no file holds all samples.

Record fields (per sample): `material.composition` (cation fractions and O, e.g.
`Bi0.25Fe0.5Cu0.25O1.625`; the O count from nominal cation valences, `VALENCE`),
`material.elements` (the cations present and O), `custom.index`, `custom.sample`,
`custom.print` (the composition's number on the grid, when the simulation gives one),
`custom.thickness_nm`, `custom.gap_ev` (the true gap), and one numeric `custom.x_<El>` per
cation (its cation fraction), so that Forge cuts composition ranges with `match_range`.

Only the `generic` and `tabular` extractors run (`EXTRACTION`): the images' pixel facts (size,
mode) are the same for every sample, and skipping the image extractor saves 180,902 worker calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ARCHIVE_BYTES",
    "BATCH",
    "EXTRACTION",
    "MAPPING",
    "UNITS",
    "VALENCE",
    "archives",
    "facts",
    "formula",
    "mapping",
    "sample_dir",
    "units",
    "write",
]

BATCH = 1000  # sample folders per batch folder
ARCHIVE_BYTES = 30 * 1024 * 1024  # files per zip at most (`archives`): one upload request each
# Nominal cation valences (for the O count of the formula only; stated, not fitted).
VALENCE = {
    "Al": 3, "Bi": 3, "Ca": 2, "Ce": 4, "Co": 2, "Cr": 3, "Cu": 2, "Fe": 3, "Ga": 3, "Gd": 3,
    "In": 3, "La": 3, "Mg": 2, "Mn": 2, "Mo": 6, "Nb": 5, "Ni": 2, "Sb": 3, "Sn": 4, "Sr": 2,
    "Ta": 5, "Ti": 4, "V": 5, "W": 6, "Y": 3, "Zn": 2, "Zr": 4, "Ba": 2, "Er": 3, "Eu": 3,
}  # fmt: skip
EXTRACTION = {"group_by_dir": True, "previews": False, "extractors": ["generic", "tabular"]}
# Same mapping shape as the CDI and Δ use cases: flat MDF paths → source paths in the JSON file.
MAPPING = {
    "material.composition": "sample.composition",
    "material.elements": "sample.elements",
    "custom.index": "sample.index",
    "custom.sample": "sample.id",
    "custom.print": "sample.print",
    "custom.thickness_nm": "sample.thickness_nm",
    "custom.gap_ev": "sample.gap_ev",
}
UNITS = {"custom.thickness_nm": "nm", "custom.gap_ev": "eV"}


def mapping(elements: list[str]) -> dict[str, str]:
    """`MAPPING` plus one `custom.x_<El>` (cation fraction) per cation."""
    return MAPPING | {f"custom.x_{el}": f"sample.x_{el}" for el in elements}


def units(elements: list[str]) -> dict[str, str]:
    """`UNITS` plus the fractions' unit."""
    return UNITS | {f"custom.x_{el}": "cation fraction" for el in elements}


def formula(fractions: np.ndarray, elements: list[str], digits: int = 4) -> str:
    """`Bi0.25Fe0.5Cu0.25O1.625`: the cations present (rounded fractions) and O for charge
    balance with `VALENCE` (fractions that round to 0 are left out)."""
    parts, oxygen = [], 0.0
    for el, x in zip(elements, fractions, strict=True):
        x = round(float(x), digits)
        if x <= 0:
            continue
        parts.append(f"{el}{x:g}")
        oxygen += x * VALENCE.get(el, 2) / 2
    return "".join(parts) + f"O{round(oxygen, digits):g}"


def sample_dir(i: int) -> str:
    """The folder of sample `i` inside the dataset: `b0000/s000000`."""
    return f"b{i // BATCH:04d}/s{i:06d}"


def facts(samples: Mapping[str, Any], i: int) -> dict[str, Any]:
    """The `sample` object of sample `i`'s spectrum.json (what the mapping reads)."""
    elements = [str(e) for e in samples["elements"]]
    x = np.asarray(samples["composition"][i], dtype=float)
    present = [el for el, v in zip(elements, x, strict=True) if round(float(v), 4) > 0]
    out: dict[str, Any] = {
        "id": f"s{int(samples['index'][i]):06d}",
        "index": int(samples["index"][i]),
        "composition": formula(x, elements),
        "elements": [*present, "O"],
        "thickness_nm": round(float(samples["thickness_nm"][i]), 3),
        "gap_ev": round(float(samples["gap_ev"][i]), 5),
    }
    if "print" in samples:
        out["print"] = int(samples["print"][i])
    out |= {f"x_{el}": round(float(v), 6) for el, v in zip(elements, x, strict=True)}
    return out


def _png(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def _spectrum_key(samples: Mapping[str, Any]) -> str:
    return "absorbance" if "absorbance" in samples else "absorption_coefficient"


def write(samples: Mapping[str, Any], root: Path) -> int:
    """Write every sample of `samples` (the `simulate.simulate` dict) under `root`, in the folder
    its `index` names (so a large set can be written in chunks). Returns the files written."""
    key = _spectrum_key(samples)
    wavelength = [round(float(w), 3) for w in samples["wavelength_nm"]]
    n = len(samples["index"])
    for j in range(n):
        where = root / sample_dir(int(samples["index"][j]))
        where.mkdir(parents=True, exist_ok=True)
        (where / "image.png").write_bytes(_png(samples["image"][j]))
        spectrum = {
            "sample": facts(samples, j),
            "wavelength_nm": wavelength,
            key: [round(float(a), 6) for a in samples[key][j]],
        }
        (where / "spectrum.json").write_text(json.dumps(spectrum, separators=(",", ":")))
    return 2 * n


def read(root: Path) -> Iterator[tuple[str, np.ndarray, dict[str, Any]]]:
    """(sample folder, image, spectrum.json) for each sample folder under `root`, in order."""
    from PIL import Image

    for spectrum in sorted(root.glob("b*/s*/spectrum.json")):
        with Image.open(spectrum.parent / "image.png") as img:
            image = np.asarray(img.convert("RGB"))
        yield spectrum.parent.name, image, json.loads(spectrum.read_text())


def archives(root: Path, folder: Path, *, part_bytes: int = ARCHIVE_BYTES) -> list[Path]:
    """`root`'s batch folders as zips of whole batches, each about `part_bytes` of files at
    most (an upload request takes 1,000 files and 64 MiB; the client sends a zip a request, and
    Connect unpacks them all into one dataset). PNGs are stored as they are, the JSON files
    deflated (level 1)."""
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    samples = sorted(p for p in root.iterdir() if p.is_dir())
    out: list[Path] = []
    zf: zipfile.ZipFile | None = None
    size = 0
    try:
        for sample in samples:
            files = sorted(p for p in sample.rglob("*") if p.is_file())
            grows = sum(p.stat().st_size for p in files)
            if zf is None or (size and size + grows > part_bytes):
                if zf is not None:
                    zf.close()
                out.append(folder / f"{root.name}-{len(out):04d}.zip")
                zf = zipfile.ZipFile(out[-1], "w", zipfile.ZIP_DEFLATED, compresslevel=1)
                size = 0
            for path in files:
                kind = zipfile.ZIP_STORED if path.suffix == ".png" else zipfile.ZIP_DEFLATED
                zf.write(path, path.relative_to(root).as_posix(), compress_type=kind)
            size += grows
    finally:
        if zf is not None:
            zf.close()
    return out


def submission(
    connect: Any, data_sources: str | list[str], elements: list[str], *, source_name: str, n: int
) -> None:
    """Fill a `ConnectClient` with the submission: dc block, the data, the mapping, the config."""
    system = "-".join(elements)
    connect.create_dc_block(
        title=f"Simulated optical images and absorption spectra of {system} oxide films",
        authors=["MatterHub, band-gap use case"],
        description=(
            f"{n} simulated metal-oxide film samples on a quaternary composition grid "
            f"({', '.join(elements)}): per sample an sRGB image (D65 light through the film, CIE "
            "1931) and an absorbance spectrum (Tauc edge, Urbach tail), with composition, film "
            "thickness and the true band gap; made by MatterHub's examples/bandgap/simulate.py."
        ),
        subjects=["band gap", "optical images", "high-throughput", "metal oxides", "simulation"],
    )
    connect.set_source_name(source_name)
    for source in [data_sources] if isinstance(data_sources, str) else data_sources:
        connect.add_data_source(source)
    connect.add_index("json", mapping(elements), units=units(elements))
    connect.set_extraction_config(dict(EXTRACTION))
    connect.set_custom_block({"generator": "examples/bandgap/simulate.py", "samples": n})
