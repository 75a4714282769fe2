"""The blob store port: keys, blob facts, atomic writers and the `BlobStore` interface."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from matterhub.core.errors import InvalidInput

__all__ = [
    "CHUNK_SIZE",
    "BlobInfo",
    "BlobStore",
    "BlobWriter",
    "check_key",
    "check_prefix",
    "check_range",
    "iter_chunks",
    "normalize_sha512",
]

CHUNK_SIZE = 1 << 20
"""Bytes read or written per step when streaming, so no stream is ever held whole in memory."""


def iter_chunks(handle: BinaryIO, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """A binary file's contents in `size`-byte chunks (for `put`, `put_file` and friends)."""
    while chunk := handle.read(size):
        yield chunk


# Writers stage data under this name prefix; `list` hides it and keys may not use it, so a
# staged object can never be mistaken for (or overwrite) a published one.
TEMP_PREFIX = ".tmp-"

log = logging.getLogger(__name__)

_PARALLEL_HASH = 1 << 20
"""Chunks at least this large are hashed in a helper thread while they are written."""
_HASHER: ThreadPoolExecutor | None = None
_HASHER_LOCK = threading.Lock()


def _hasher() -> ThreadPoolExecutor:
    global _HASHER
    with _HASHER_LOCK:
        if _HASHER is None:
            _HASHER = ThreadPoolExecutor(
                max_workers=os.cpu_count() or 2, thread_name_prefix="blob-hash"
            )
        return _HASHER


_SHA512_HEX = re.compile(r"[0-9a-f]{128}")


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What a store knows about one stored object: its key, size and SHA-512 (hex), if computed."""

    key: str
    size: int
    sha512: str | None


def check_key(key: str) -> str:
    """Return `key` if it is a clean POSIX relative key, else raise `InvalidInput` (field "key")."""
    if not isinstance(key, str) or not key:
        raise InvalidInput("a blob key must be a non-empty string", field="key")
    if "\x00" in key or "\\" in key:
        raise InvalidInput(f"blob key {key!r} contains a NUL or a backslash", field="key")
    if key.startswith("/"):
        raise InvalidInput(f"blob key {key!r} must be relative, not absolute", field="key")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidInput(
                f"blob key {key!r} has an empty, '.' or '..' path segment", field="key"
            )
        if segment.startswith(TEMP_PREFIX):
            raise InvalidInput(
                f"blob key {key!r} uses the reserved prefix {TEMP_PREFIX!r}", field="key"
            )
    return key


def check_prefix(prefix: str) -> str:
    """Return `prefix` if some valid key could start with it, else raise on field "prefix"."""
    if prefix:
        try:
            # Any complete segment must be valid; the last one may be partial or empty ("a/").
            check_key(prefix + "x")
        except InvalidInput:
            raise InvalidInput(
                f"list prefix {prefix!r} cannot start a valid key", field="prefix"
            ) from None
    return prefix


def check_range(start: int, end: int | None, size: int) -> tuple[int, int]:
    """Clamp `[start, end)` to an object of `size` bytes; raise `InvalidInput` on field "range"."""
    if start < 0 or (end is not None and end < 0):
        raise InvalidInput(f"byte range {start}-{end} has a negative bound", field="range")
    if start > size:
        raise InvalidInput(f"byte range starts at {start}, past the end ({size})", field="range")
    stop = size if end is None else min(end, size)  # like HTTP Range: a long end is clamped
    if stop < start:
        raise InvalidInput(f"byte range {start}-{end} ends before it starts", field="range")
    return start, stop


def normalize_sha512(expected: str | None) -> str | None:
    """Return `expected` as lowercase hex, or raise `InvalidInput` on field "sha512"."""
    if expected is None:
        return None
    value = expected.strip().lower()
    if not _SHA512_HEX.fullmatch(value):
        raise InvalidInput("expected_sha512 must be 128 hexadecimal characters", field="sha512")
    return value


class BlobWriter(ABC):
    """An atomic write in progress: `write` chunks; commit on clean exit, discard on error."""

    def __init__(self, key: str, expected_sha512: str | None) -> None:
        self.key = key
        self._expected = expected_sha512
        self._hash = hashlib.sha512()
        self._size = 0
        self._info: BlobInfo | None = None
        self._closed = False

    @property
    def info(self) -> BlobInfo:
        """What was stored; only available once the write has been committed."""
        if self._info is None:
            raise RuntimeError(f"the write of {self.key!r} has not been committed")
        return self._info

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append `data` to the object being written; return the number of bytes taken."""
        if self._closed:
            raise ValueError(f"the write of {self.key!r} is already finished")
        view = memoryview(data)
        if view.nbytes >= _PARALLEL_HASH:
            # hashlib and file writes both release the GIL: hash on another core meanwhile.
            hashed = _hasher().submit(self._hash.update, view)
            try:
                self._write(view)
            finally:
                hashed.result()
        else:
            self._hash.update(view)
            self._write(view)
        self._size += view.nbytes
        return view.nbytes

    def commit(self) -> BlobInfo:
        """Check the digest and make the object visible in one step; discard it on any failure."""
        if self._closed:
            raise ValueError(f"the write of {self.key!r} is already finished")
        self._closed = True
        digest = self._hash.hexdigest()
        try:
            if self._expected is not None and digest != self._expected:
                raise InvalidInput(
                    f"SHA-512 of {self.key!r} is {digest}, expected {self._expected}",
                    field="sha512",
                )
            self._commit()
        except BaseException:
            self._discard_quietly()
            raise
        self._info = BlobInfo(self.key, self._size, digest)
        return self._info

    def discard(self) -> None:
        """Drop everything written so far; readers never see any of it."""
        if not self._closed:
            self._closed = True
            self._discard()

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        elif not self._closed:
            self._closed = True
            self._discard_quietly()

    def _discard_quietly(self) -> None:
        """Discard after another error, which must stay the one the caller sees."""
        try:
            self._discard()
        except Exception:
            log.warning("could not discard the partial write of %r", self.key, exc_info=True)

    @abstractmethod
    def _write(self, data: memoryview) -> None:
        """Stage `data` in the backend."""

    @abstractmethod
    def _commit(self) -> None:
        """Publish the staged data under the key, atomically."""

    @abstractmethod
    def _discard(self) -> None:
        """Remove the staged data; must not raise for a half-started write."""


class BlobStore(ABC):
    """Immutable-friendly object storage: keys are POSIX relative paths under one root."""

    url: str
    """Where the store lives (no credentials), for messages."""

    @abstractmethod
    def open_write(self, key: str, *, expected_sha512: str | None = None) -> BlobWriter:
        """Start an atomic write of `key`; use as a context manager, read `.info` afterwards."""

    def put(
        self,
        key: str,
        data: bytes | BinaryIO | Iterable[bytes],
        *,
        expected_sha512: str | None = None,
    ) -> BlobInfo:
        """Store `data` (bytes, a binary file or an iterable of chunks) under `key`, atomically."""
        if isinstance(data, str):
            raise TypeError("put() takes bytes, a binary file or an iterable of bytes, not str")
        with self.open_write(key, expected_sha512=expected_sha512) as writer:
            if isinstance(data, bytes | bytearray | memoryview):
                writer.write(data)
            elif hasattr(data, "read"):
                # Read bounded chunks so a large upload never sits whole in memory.
                while chunk := data.read(CHUNK_SIZE):
                    writer.write(chunk)
            else:
                for chunk in data:
                    writer.write(chunk)

        return writer.info

    def put_files(self, pairs: Iterable[tuple[str, Path]]) -> list[BlobInfo]:
        """Store many local files (key, path), each atomically; stores may batch the syncing.

        Unlike `put`, a store may make the objects durable together at the end (one sync for
        all of them), so the caller must record them only after this returns.
        """
        out = []
        for key, path in pairs:
            with path.open("rb") as handle:
                out.append(self.put(key, handle))
        return out

    @abstractmethod
    def stream(
        self, key: str, *, start: int = 0, end: int | None = None, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Yield bytes `[start, end)` of `key` in chunks; raise before the first one if invalid."""

    def get(self, key: str) -> bytes:
        """Return the whole content of `key`."""
        return b"".join(self.stream(key))

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Return bytes `[start, end)` of `key` (a long `end` is clamped to the size)."""
        return b"".join(self.stream(key, start=start, end=end))

    @abstractmethod
    def size(self, key: str) -> int:
        """Return the size of `key` in bytes."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Tell whether an object is stored under `key`."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key`; raise `NotFound` if it is not there."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every key that starts with `prefix`, sorted, recursively."""

    @abstractmethod
    def local_path(self, key: str) -> Path | None:
        """Return the real file behind `key` when the store is a local folder, else None."""

    def copy(self, src: str, dst: str) -> BlobInfo:
        """Copy `src` to `dst` atomically; `sha512` is None if the backend copied server-side."""
        with self.open_write(dst) as writer:
            for chunk in self.stream(src):
                writer.write(chunk)
        return writer.info

    def sha512(self, key: str) -> str:
        """Return the SHA-512 (hex) of `key`, read as a stream."""
        digest = hashlib.sha512()
        for chunk in self.stream(key):
            digest.update(chunk)
        return digest.hexdigest()
