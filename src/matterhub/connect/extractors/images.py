"""Raster images with Pillow: size, mode, colour depth, format, EXIF/TIFF tags and a PNG preview."""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

from matterhub.connect.extractors.base import (
    WARNINGS_KEY,
    DerivedFile,
    ExtractionContext,
    Extractor,
    FileGroup,
    Record,
    StagedFile,
    require,
)

__all__ = ["ImageExtractor"]

_SUFFIXES = {"png", "jpg", "jpeg", "tif", "tiff", "bmp", "gif", "webp", "jp2", "ppm", "pgm"}
_BITS = {"1": 1, "L": 8, "P": 8, "RGB": 24, "RGBA": 32, "CMYK": 32, "YCbCr": 24, "LA": 16,
         "I": 32, "F": 32, "I;16": 16, "I;16B": 16, "I;16L": 16}  # fmt: skip
# EXIF/TIFF tags worth indexing; the rest are camera minutiae or huge private blobs.
_TAGS = {
    "Make", "Model", "Software", "DateTime", "DateTimeOriginal", "ImageDescription", "Artist",
    "XResolution", "YResolution", "ResolutionUnit", "FocalPlaneXResolution",
    "FocalPlaneYResolution", "FocalPlaneResolutionUnit", "ExposureTime", "FNumber",
    "ISOSpeedRatings", "FocalLength", "BitsPerSample", "Compression", "SamplesPerPixel",
}  # fmt: skip
PREVIEW_MAX_PIXELS = 64_000_000  # a preview decodes the whole image: bound its memory
_WIDE = {"I", "F", "I;16", "I;16B", "I;16L", "I;16N"}
PILLOW_BIBTEX = """@software{pillow,
  title={Pillow (PIL Fork)}, author={Clark, Jeffrey A. and contributors},
  url={https://python-pillow.org}
}"""


def _tag_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\x00 ")
    if isinstance(value, tuple):
        return [_tag_value(v) for v in value]
    if isinstance(value, str | int | bool):
        return value.strip("\x00 ") if isinstance(value, str) else value
    try:
        return round(float(value), 6)  # IFDRational and friends
    except (TypeError, ValueError):
        return str(value)


def _exif(image: Any) -> dict[str, Any]:
    tags = require("PIL.ExifTags", "materials")
    exif = image.getexif()
    found: dict[str, Any] = {}
    items = list(exif.items())
    with contextlib.suppress(Exception):  # no Exif sub-IFD
        items += list(exif.get_ifd(tags.IFD.Exif).items())
    for tag, value in items:
        name = tags.TAGS.get(tag, str(tag))
        if name in _TAGS:
            found[name] = _tag_value(value)
    return found


def _scaled(image: Any) -> Any:
    """An 8-bit greyscale copy of a 16/32-bit or float image, percentile-scaled."""
    np = require("numpy", "materials")
    pil = require("PIL.Image", "materials")
    array = np.asarray(image, dtype="float64")
    low, high = np.nanpercentile(array, [1, 99]) if array.size else (0.0, 1.0)
    scaled = np.nan_to_num(np.clip((array - low) / ((high - low) or 1.0), 0, 1)) * 255
    return pil.fromarray(scaled.astype("uint8"))


def _ends_with_eoi(file: StagedFile) -> bool:
    """Whether a JPEG ends with its EOI marker (some writers pad a few bytes after it)."""
    with file.path.open("rb") as fh:
        fh.seek(max(file.path.stat().st_size - 64, 0))
        return b"\xff\xd9" in fh.read()


class ImageExtractor(Extractor):
    """Images Pillow can open → `image` (width, height, shape, mode, colour depth, EXIF)."""

    name = "image"
    version = "0.1.0"
    priority = 5

    def accepts(self, file: StagedFile) -> bool:
        """Common raster formats by extension."""
        return file.suffix in _SUFFIXES and file.size > 0

    def extract(self, group: FileGroup, context: ExtractionContext) -> Record:
        """Header facts only: Pillow opens lazily and never decodes the pixels here."""
        pil = require("PIL.Image", "materials")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pil.DecompressionBombWarning)
            with pil.open(group.files[0].path) as image:
                image.verify()
            with pil.open(group.files[0].path) as image:
                width, height = image.size
                bands = len(image.getbands())
                block: Record = {
                    "width": width,
                    "height": height,
                    "shape": [height, width, bands] if bands > 1 else [height, width],
                    "megapixels": round(width * height / 1e6, 4),
                    "format": image.format,
                    "mode": image.mode,
                    "color_depth": _BITS.get(image.mode, 8 * bands),
                    "frame_count": getattr(image, "n_frames", 1),
                }
                exif = _exif(image)
        block["has_exif"] = bool(exif)
        if exif:
            block["exif"] = exif
        out: Record = {"image": block}
        if block["format"] == "JPEG" and not _ends_with_eoi(group.files[0]):
            out[WARNINGS_KEY] = ["JPEG has no end-of-image marker (truncated?)"]
        return out

    def derive(self, group: FileGroup, context: ExtractionContext) -> list[DerivedFile]:
        """A PNG thumbnail, at most 256 px on a side; 16-bit and float images are scaled
        between their 1st and 99th percentiles instead of being clipped to white."""
        pil = require("PIL.Image", "materials")
        file = group.files[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pil.DecompressionBombWarning)
            with pil.open(file.path) as image:
                image.draft("RGB", (256, 256))  # JPEG decodes at a reduced scale: much faster
                if image.width * image.height > PREVIEW_MAX_PIXELS:
                    raise ValueError(
                        f"no preview: {image.width}x{image.height} pixels is over the "
                        f"{PREVIEW_MAX_PIXELS}-pixel limit"
                    )
                if image.mode in _WIDE:
                    thumb = _scaled(image)
                else:
                    thumb = image.convert("RGBA" if "A" in image.getbands() else "RGB")
                thumb.thumbnail((256, 256))
                buffer = io.BytesIO()
                thumb.save(buffer, format="PNG")
        return [
            DerivedFile(file.relpath, file.name + ".preview.png", "image/png", buffer.getvalue())
        ]

    def citations(self) -> list[str]:
        """Pillow."""
        return [PILLOW_BIBTEX]
