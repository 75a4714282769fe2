"""The generic extractor: name, size, type description, MIME type and SHA-512 of every file."""

from __future__ import annotations

import hashlib
import mimetypes
import struct
from collections.abc import Sequence
from typing import Any

from matterhub.connect.extractors.base import (
    ExtractionContext,
    Extractor,
    FileGroup,
    Record,
    StagedFile,
)

__all__ = ["GenericExtractor", "describe"]

_CHUNK = 1 << 20
_SNIFF = 2048
_PNG_COLOUR = {0: "grayscale", 2: "RGB", 3: "colormap", 4: "gray+alpha", 6: "RGBA"}
# (magic prefix, libmagic-like description, MIME type); first match wins.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89HDF\r\n\x1a\n", "Hierarchical Data Format (version 5) data", "application/x-hdf5"),
    (b"\x0e\x03\x13\x01", "Hierarchical Data Format (version 4) data", "application/x-hdf"),
    (b"CDF\x01", "NetCDF Data Format data", "application/x-netcdf"),
    (b"\xff\xd8\xff", "JPEG image data", "image/jpeg"),
    (b"GIF8", "GIF image data", "image/gif"),
    (b"II*\x00", "TIFF image data, little-endian", "image/tiff"),
    (b"MM\x00*", "TIFF image data, big-endian", "image/tiff"),
    (b"BM", "PC bitmap", "image/bmp"),
    (b"%PDF-", "PDF document", "application/pdf"),
    (b"PK\x03\x04", "Zip archive data", "application/zip"),
    (b"\x1f\x8b", "gzip compressed data", "application/gzip"),
    (b"BZh", "bzip2 compressed data", "application/x-bzip2"),
    (b"\xfd7zXZ\x00", "XZ compressed data", "application/x-xz"),
    (b"\x93NUMPY", "NumPy data file", "application/octet-stream"),
    (b"\x00\x00\x00\x03", "Gatan DigitalMicrograph 3 data", "application/octet-stream"),
    (b"\x00\x00\x00\x04", "Gatan DigitalMicrograph 4 data", "application/octet-stream"),
)
_BY_SUFFIX = {
    "cif": ("Crystallographic Information File, {text}", "chemical/x-cif"),
    "mrc": ("MRC image data", "application/octet-stream"),
    "xyz": ("XYZ coordinates, {text}", "chemical/x-xyz"),
    "extxyz": ("extended XYZ coordinates, {text}", "chemical/x-xyz"),
    "tdb": ("Thermo-Calc database, {text}", "text/plain"),
    "csv": ("CSV text", "text/csv"),
    "json": ("JSON data", "application/json"),
    "yaml": ("YAML document, {text}", "application/yaml"),
    "yml": ("YAML document, {text}", "application/yaml"),
    "xml": ("XML document, {text}", "application/xml"),
    "lammpstrj": ("LAMMPS trajectory, {text}", "text/plain"),
}
_NAMES = {"POSCAR", "CONTCAR", "INCAR", "KPOINTS", "OUTCAR", "OSZICAR", "POTCAR", "XDATCAR"}


def _png(header: bytes) -> str:
    if len(header) < 26 or header[12:16] != b"IHDR":
        return "PNG image data"
    width, height, depth, colour = struct.unpack(">IIBB", header[16:26])
    kind = _PNG_COLOUR.get(colour, "unknown")
    return f"PNG image data, {width} x {height}, {depth}-bit/color {kind}"


def _text_kind(header: bytes) -> str | None:
    if b"\x00" in header:
        return None
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut by the sniff window is still text.
        try:
            text = header[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return None
    kind = "ASCII text" if text.isascii() else "Unicode text, UTF-8 text"
    if "\r\n" in text:
        kind += ", with CRLF line terminators"
    return kind


def describe(name: str, header: bytes) -> tuple[str, str]:
    """A libmagic-like description and a MIME type from the name and the first bytes."""
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    guessed = mimetypes.guess_type(name, strict=False)[0]
    if header.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png(header), "image/png"
    for magic, description, mime in _MAGIC:
        if header.startswith(magic):
            if magic.startswith(b"\x00\x00\x00") and suffix not in {"dm3", "dm4"}:
                continue
            return description, guessed or mime
    if not header:
        return "empty", "application/x-empty"
    text = _text_kind(header)
    if suffix in _BY_SUFFIX:
        description, mime = _BY_SUFFIX[suffix]
        if text is not None or "{text}" not in description:
            return description.format(text=text or "data"), mime
    if text is None:
        return "data", guessed or "application/octet-stream"
    if header.lstrip().startswith(b"<?xml"):
        return f"XML 1.0 document, {text}", "text/xml"
    if name.split(".")[0].upper() in _NAMES:
        return f"VASP {name.split('.')[0].upper()} file, {text}", "text/plain"
    return text, guessed or "text/plain"


def file_info(file: StagedFile) -> dict[str, Any]:
    """The MDF `files[]` entry of one file: name, type, MIME type, length and SHA-512."""
    digest = hashlib.sha512()
    with file.path.open("rb") as fh:
        first = fh.read(_CHUNK)
        digest.update(first)
        length = len(first)
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            length += len(chunk)
    data_type, mime = describe(file.name, first[:_SNIFF])
    return {
        "filename": file.name,
        "path": file.relpath,
        "data_type": data_type,
        "mime_type": mime,
        "length": length,
        "sha512": digest.hexdigest(),
    }


class GenericExtractor(Extractor):
    """Runs on every file, in the pipeline's own process: it reads only bytes and hashes them."""

    name = "generic"
    version = "0.1.0"
    extra = ""
    priority = 0

    def accepts(self, file: StagedFile) -> bool:
        """Every file."""
        return True

    def extract(self, group: FileGroup, context: ExtractionContext) -> Record:
        """`{"files": [...]}` with one entry per file of the group."""
        return {"files": [file_info(f) for f in group.files]}

    def extract_files(self, files: Sequence[StagedFile]) -> list[dict[str, Any]]:
        """`files[]` entries for many files (what the pipeline calls for a whole group)."""
        return [file_info(f) for f in files]
