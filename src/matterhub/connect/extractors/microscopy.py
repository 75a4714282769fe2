"""Electron microscopy with RosettaSciIO: DM3/DM4, EMD, MRC and microscope TIFFs, read lazily."""

from __future__ import annotations

import gc
import io
import warnings
from collections.abc import Mapping
from typing import Any

from matterhub.connect.extractors.base import (
    WARNINGS_KEY,
    DerivedFile,
    ExtractionContext,
    Extractor,
    FileGroup,
    Record,
    StagedFile,
    clean,
    require,
)
from matterhub.connect.extractors.images import PILLOW_BIBTEX

__all__ = ["MicroscopyExtractor", "open_copy_limit"]

_READERS = {
    "dm3": "rsciio.digitalmicrograph",
    "dm4": "rsciio.digitalmicrograph",
    "emd": "rsciio.emd",
    "mrc": "rsciio.mrc",
    "tif": "rsciio.tiff",
    "tiff": "rsciio.tiff",
}
# HyperSpy-style metadata keys → MDF electron_microscopy keys.
_FIELDS = {
    "beam_energy": "beam_energy",
    "magnification": "magnification",
    "microscope": "microscope",
    "acquisition_mode": "acquisition_mode",
    "camera_length": "camera_length",
    "convergence_angle": "convergence_angle",
    "beam_current": "beam_current",
    "dwell_time": "dwell_time",
    "working_distance": "working_distance",
}
# Vendor formats that get an open copy (TIFF) beside them when previews are on.
PROPRIETARY = {"dm3", "dm4", "emd"}
# extraction_config.open_copy_max_bytes: the data size (all signals) above which no copy is
# made, since a copy is held in memory whole; the hard cap bounds what a submission may ask.
OPEN_COPY_MAX_BYTES = 64 * 1024 * 1024
OPEN_COPY_HARD_MAX = 512 * 1024 * 1024
PREVIEW_MAX_PIXELS = 64_000_000
_SLAB_BYTES = 16 * 1024 * 1024
TIFFFILE_BIBTEX = """@software{tifffile,
  title={tifffile: Read and write TIFF files}, author={Gohlke, Christoph},
  url={https://github.com/cgohlke/tifffile}, doi={10.5281/zenodo.6795860}
}"""
MRCFILE_BIBTEX = """@article{burnley2017ccpem,
  title={Recent developments in the CCP-EM software suite},
  author={Burnley, Tom and Palmer, Colin M. and Winn, Martyn},
  journal={Acta Crystallographica Section D}, volume={73}, number={6}, pages={469--477},
  year={2017}, doi={10.1107/S2059798317007859}
}"""
RSCIIO_BIBTEX = """@software{rosettasciio,
  title={RosettaSciIO}, author={{The HyperSpy developers}},
  url={https://hyperspy.org/rosettasciio}, doi={10.5281/zenodo.8011666}
}"""


def _get(tree: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(tree, Mapping) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def _mapped(signal: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the reader's `mapping` (original → HyperSpy metadata) as HyperSpy does."""
    metadata: dict[str, Any] = dict(signal.get("metadata") or {})
    original = signal.get("original_metadata") or {}
    for source, (target, function) in (signal.get("mapping") or {}).items():
        value = _get(original, source)
        if value is None:
            continue
        if function is not None:
            try:
                value = function(value)
            except Exception:  # one odd tag must not lose the others
                continue
        if value is not None:
            _set(metadata, target, value)
    return metadata


def _first(tree: Any, *paths: str) -> Any:
    for path in paths:
        value = _get(tree, path)
        if value not in (None, ""):
            return value
    return None


def _from_original(ext: str, original: Mapping[str, Any], em: Record) -> None:
    """Facts the readers leave in original_metadata: DM microscope info, FEI TIFF detectors."""
    if ext in {"dm3", "dm4"}:
        groups = _get(original, "ImageList") or {}
        for group in reversed(list(groups.values()) if isinstance(groups, Mapping) else []):
            info = _get(group, "ImageTags.Microscope Info") or {}
            if info:
                em.setdefault("microscope", info.get("Name"))
                em.setdefault("operation_mode", info.get("Operation Mode"))
                em.setdefault("illumination_mode", info.get("Illumination Mode"))
                em.setdefault("emission_current", info.get("Emission Current (µA)"))
                break
    fei = original.get("fei_metadata") if isinstance(original, Mapping) else None
    if isinstance(fei, Mapping):
        name, mode = _get(fei, "Detectors.Name"), _get(fei, "Detectors.Mode")
        if name:
            em["detector"] = f"{name} ({mode})" if mode else str(name)
        hfw, canvas = _get(fei, "EBeam.HFW"), _get(fei, "Image.MagCanvasRealWidth")
        if hfw and canvas and not em.get("magnification"):
            em["magnification"] = round(float(canvas) / float(hfw), 3)
        if spot := _get(fei, "EBeam.Spot") or _get(fei, "Beam.Spot"):
            em["spot_size"] = spot
        em.setdefault("operation_mode", _get(fei, "EBeam.BeamMode") or None)


def _mrc_header(path: Any) -> Record:
    """The FEI extended header of an MRC file (microscope, voltage, camera), given mrcfile."""
    try:
        import mrcfile
    except ImportError:
        return {}
    with mrcfile.open(path, permissive=True, header_only=True) as mrc:
        ext = mrc.indexed_extended_header
        if ext is None or not len(ext) or not ext.dtype.names:
            return {}
        row = ext[0]

        def field(name: str) -> Any:
            if name not in ext.dtype.names:
                return None
            value = row[name].item() if hasattr(row[name], "item") else row[name]
            return (
                value.decode(errors="replace").strip("\x00") if isinstance(value, bytes) else value
            )

        out: Record = {
            "microscope": field("Microscope type"),
            "beam_energy": (field("HT") or 0) / 1000.0 or None,
            "software": " ".join(
                str(x) for x in (field("Application"), field("Application version")) if x
            ),
            "illumination_mode": field("Illumination mode"),
            "detector": field("Camera name") or field("STEM Detector name"),
            "spot_size": field("Spot index"),
            "magnification": field("Magnification") or None,
            "camera_length": field("Camera length") or None,
        }
    return out


class MicroscopyExtractor(Extractor):
    """Microscope files through RosettaSciIO's readers → `electron_microscopy` + `image`."""

    name = "microscopy"
    version = "0.1.0"
    priority = 15

    def accepts(self, file: StagedFile) -> bool:
        """DM3, DM4, EMD, MRC and TIFF files."""
        return file.suffix in _READERS and file.size > 0

    def _signals(self, file: StagedFile) -> list[dict[str, Any]]:
        reader = require(_READERS[file.suffix], "materials").file_reader
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            signals: list[dict[str, Any]] = reader(str(file.path), lazy=True)
        return signals

    def extract(self, group: FileGroup, context: ExtractionContext) -> Record:
        """Instrument facts (HyperSpy's mapping applied) and the data's shape, never its pixels."""
        file = group.files[0]
        with warnings.catch_warnings():
            # Lazy readers hold the file open until their arrays are freed, which happens here.
            warnings.simplefilter("ignore")
            signals = self._signals(file)
            try:
                out = self._describe(file, signals)
                if context.config.get("previews"):
                    _, skipped = _copy_plan(file, signals, context)
                    if skipped:
                        out[WARNINGS_KEY] = skipped
                return out
            finally:
                signals.clear()
                gc.collect()

    def _describe(self, file: StagedFile, signals: list[dict[str, Any]]) -> Record:
        if not signals:
            raise ValueError("no signal in file")
        signal = signals[0]
        metadata = _mapped(signal)
        instrument = metadata.get("Acquisition_instrument") or {}
        kind = next(iter(instrument), None)
        block = instrument.get(kind, {}) if kind else {}
        em: Record = {"instrument_type": kind} if kind else {}
        for source, target in _FIELDS.items():
            if block.get(source) not in (None, ""):
                em[target] = block[source]
        if detector := block.get("Detector"):
            em["detectors"] = detector
            for name, values in detector.items():
                if isinstance(values, Mapping) and "collection_angle" in values:
                    em["collection_angle"] = values["collection_angle"]
                em.setdefault("detector", name)
        _from_original(file.suffix, signal.get("original_metadata") or {}, em)
        if file.suffix == "mrc":
            for key, value in _mrc_header(file.path).items():
                if value not in (None, "") and not em.get(key):
                    em[key] = value
        general = metadata.get("General") or {}
        em["acquisition_date"] = general.get("date")
        em["acquisition_time"] = general.get("time")
        em["signal_type"] = _get(metadata, "Signal.signal_type") or None
        em["title"] = general.get("title")
        em["axes"] = [
            {k: a.get(k) for k in ("name", "units", "scale", "offset", "size", "navigate")}
            for a in signal.get("axes") or []
        ]
        em["signal_count"] = len(signals)
        data = signal["data"]
        image: Record = {"shape": list(data.shape), "dtype": str(data.dtype)}
        image["color_depth"] = data.dtype.itemsize * 8
        if kind is None and file.suffix in {"tif", "tiff"} and len(em) <= 6:
            return {"image": image}  # a plain TIFF: the image extractor says the rest
        return {
            "electron_microscopy": {k: v for k, v in em.items() if v is not None},
            "image": image,
        }

    def derive(self, group: FileGroup, context: ExtractionContext) -> list[DerivedFile]:
        """A PNG preview (≤ 256 px) of the first 2-D image (navigation axes take index 0) and,
        for vendor formats, a TIFF copy of each signal (skipped above the size limit)."""
        file = group.files[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            signals = self._signals(file)
            try:
                out = _preview(file, signals[0]["data"])
                copies, _ = _copy_plan(file, signals, context)
                for index in copies:
                    out.append(_tiff_copy(file, signals[index], index))
                return out
            finally:
                signals.clear()
                gc.collect()

    def citations(self) -> list[str]:
        """RosettaSciIO (readers), mrcfile (MRC headers), tifffile and Pillow (derived files)."""
        return [RSCIIO_BIBTEX, MRCFILE_BIBTEX, TIFFFILE_BIBTEX, PILLOW_BIBTEX]


def open_copy_limit(context: ExtractionContext) -> int:
    """The submission's `open_copy_max_bytes`, within the hard cap."""
    asked = context.config.get("open_copy_max_bytes", OPEN_COPY_MAX_BYTES)
    try:
        return max(0, min(int(asked), OPEN_COPY_HARD_MAX))
    except (TypeError, ValueError):
        return OPEN_COPY_MAX_BYTES


def _copy_plan(
    file: StagedFile, signals: list[dict[str, Any]], context: ExtractionContext
) -> tuple[list[int], list[str]]:
    """Which signals get a TIFF copy, and why the others do not (for the warnings)."""
    if file.suffix not in PROPRIETARY:
        return [], []
    limit = open_copy_limit(context)
    total = sum(int(s["data"].nbytes) for s in signals)
    if total > limit:
        return [], [
            f"open-format copy skipped: {total} bytes of data is over the {limit}-byte limit "
            "(extraction_config.open_copy_max_bytes)"
        ]
    copies, skipped = [], []
    for index, signal in enumerate(signals):
        dtype = signal["data"].dtype
        if dtype.names or dtype.kind not in "biufc":
            skipped.append(f"open-format copy of signal {index} skipped: TIFF cannot hold {dtype}")
        else:
            copies.append(index)
    return copies, skipped


def _preview(file: StagedFile, data: Any) -> list[DerivedFile]:
    np = require("numpy", "materials")
    pil = require("PIL.Image", "materials")
    while data.ndim > 2:
        data = data[0]
    if data.size > PREVIEW_MAX_PIXELS or data.dtype.names:
        return []
    array = np.asarray(data.compute() if hasattr(data, "compute") else data)
    array = np.abs(array) if array.dtype.kind == "c" else array.astype("float64")
    array = np.atleast_2d(array)
    low, high = np.nanpercentile(array, [1, 99]) if array.size else (0.0, 1.0)
    scaled = np.nan_to_num(np.clip((array - low) / ((high - low) or 1.0), 0, 1)) * 255
    image = pil.fromarray(scaled.astype("uint8"))
    image.thumbnail((256, 256))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return [DerivedFile(file.relpath, file.name + ".preview.png", "image/png", buffer.getvalue())]


def _tiff_copy(file: StagedFile, signal: Mapping[str, Any], index: int) -> DerivedFile:
    """The signal's data as a TIFF, frame by frame from the lazy array, with its calibration.

    tifffile's shaped format keeps the N-D shape; the JSON description also carries each
    axis's name, units, scale and offset and the HyperSpy-style metadata.
    """
    np = require("numpy", "materials")
    tifffile = require("tifffile", "materials")
    data = signal["data"]
    shape = tuple(int(n) for n in data.shape)
    page = shape[-2:] if len(shape) >= 2 else (1, shape[0] if shape else 1)
    lead = shape[:-2] if len(shape) >= 2 else ()

    count = int(np.prod(lead)) if lead else 1
    flat = data.reshape((count, *page))
    # Read slabs of whole frames (~16 MB): memory stays bounded, and many tiny frames (an
    # EELS spectrum image's pages) do not cost one lazy-array computation each.
    per = max(1, _SLAB_BYTES // max(1, int(np.prod(page)) * data.dtype.itemsize))

    def frames() -> Any:
        for start in range(0, count, per):
            slab = flat[start : start + per]
            yield from np.asarray(slab.compute() if hasattr(slab, "compute") else slab)

    axes = [
        {k: a.get(k) for k in ("name", "units", "scale", "offset", "size", "navigate")}
        for a in signal.get("axes") or []
    ]
    metadata = {
        "source": file.name,
        "source_format": file.suffix,
        "signal_index": index,
        "axes_calibration": clean(axes),
        "metadata": clean(_mapped(signal)),
    }
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer, bigtiff=int(data.nbytes) > 2**31 - 2**25) as tif:
        tif.write(
            frames(),
            shape=(*lead, *page),
            dtype=data.dtype,
            photometric="minisblack",
            metadata=metadata,
            software="matterhub",
        )
    name = f"{file.name}.tif" if index == 0 else f"{file.name}.signal{index}.tif"
    return DerivedFile(file.relpath, name, "image/tiff", buffer.getvalue())
