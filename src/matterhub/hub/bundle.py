"""A servable bundle being received: files staged in a temporary folder under a size limit.

A bundle is a document plus files, sent either as separate files or as one zip (with the
document as `dlhub.json` or `document.json` at its root). Paths are relative POSIX paths; absolute
paths, `..`, and links are refused, and bytes are counted while written, so a lying header or a
zip bomb stops at the limit with `PayloadTooLarge`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

from matterhub.core.errors import InvalidInput, PayloadTooLarge

__all__ = ["DOCUMENT_NAMES", "StagedBundle", "safe_path"]

DOCUMENT_NAMES = ("dlhub.json", "document.json")
_CHUNK = 1 << 20


def safe_path(path: str, *, field: str = "files") -> str:
    """A clean relative POSIX path, or InvalidInput naming `field`."""
    clean = path.replace("\\", "/").strip()
    parts = PurePosixPath(clean).parts
    if not clean or clean.startswith("/") or any(p in ("..", "") for p in parts):
        raise InvalidInput(f"{path!r} is not a relative path inside the bundle", field=field)
    if len(clean) > 1000 or any(ord(c) < 32 for c in clean):
        raise InvalidInput(f"{path!r} is not an acceptable file name", field=field)
    return str(PurePosixPath(*parts))


class Readable(Protocol):
    """What a file is staged from: anything with `read(size)` returning bytes."""

    def read(self, size: int = -1, /) -> bytes: ...


class StagedBundle:
    """Files received so far, in a private temporary folder; `close()` removes it."""

    def __init__(self, max_bytes: int, *, parent: Path | None = None) -> None:
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="bundle-", dir=parent))
        self.max_bytes = max_bytes
        self.total = 0
        self.files: dict[str, int] = {}
        self.document: dict[str, Any] | None = None

    def __enter__(self) -> StagedBundle:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the staged files."""
        shutil.rmtree(self.root, ignore_errors=True)

    def _count(self, size: int) -> None:
        self.total += size
        if self.total > self.max_bytes:
            raise PayloadTooLarge(
                f"the bundle is larger than the limit of {self.max_bytes} bytes", field="bundle"
            )

    def add_file(self, path: str, handle: Readable) -> None:
        """Stage one file from a binary handle; a document name at the root sets the document."""
        rel = safe_path(path, field=f"files[{path}]")
        if rel in self.files:
            raise InvalidInput(f"{rel!r} appears twice in the bundle", field=f"files[{rel}]")
        target = self.root / "files" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        with target.open("wb") as out:
            while chunk := handle.read(_CHUNK):
                size += len(chunk)
                self._count(len(chunk))
                out.write(chunk)
        self.files[rel] = size

    def set_document(self, raw: bytes | str, *, field: str = "document") -> None:
        """The servable document, as JSON text."""
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise InvalidInput(f"the document is not JSON: {exc}", field=field) from None
        if not isinstance(document, dict):
            raise InvalidInput("the document is a JSON object", field=field)
        self.document = document

    def add_zip(self, handle: IO[bytes]) -> None:
        """Stage every file of a zip; a root `dlhub.json` or `document.json` is the document."""
        spooled = self.root / "upload.zip"
        with spooled.open("wb") as out:
            while chunk := handle.read(_CHUNK):
                self._count(len(chunk))
                out.write(chunk)
        self.total = 0  # the archive's members are what count from here on
        try:
            archive = zipfile.ZipFile(spooled)
        except zipfile.BadZipFile:
            raise InvalidInput("the bundle is not a zip archive", field="bundle") from None
        with archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise InvalidInput(f"{info.filename!r} is a link", field="bundle")
                if info.filename in DOCUMENT_NAMES and self.document is None:
                    self._count(info.file_size)
                    self.set_document(archive.read(info), field=f"bundle:{info.filename}")
                    continue
                with archive.open(info) as member:
                    self.add_file(info.filename, member)
        spooled.unlink()

    def path(self, rel: str) -> Path:
        """Where a staged file is on disk."""
        return self.root / "files" / rel
