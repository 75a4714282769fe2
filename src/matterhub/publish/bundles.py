"""Whole versions as zip or tar streams, produced chunk by chunk with nothing built on disk."""

from __future__ import annotations

import tarfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

__all__ = ["ArchiveMember", "stream_tar", "stream_zip"]

_FLUSH = 1 << 20  # hand bytes on once this much has gathered: few, large ASGI messages


class _Source(Protocol):
    def __call__(self, key: str) -> Iterable[bytes]: ...


@dataclass(frozen=True, slots=True)
class ArchiveMember:
    """One file going into an archive: its name inside, its blob key and size.

    `data` holds the bytes of a member made for the archive (e.g. its RO-Crate metadata)
    instead of a blob; then `key` is unused.
    """

    name: str
    key: str
    size: int
    data: bytes | None = None


class _Sink:
    """A write-only, non-seekable file that hands its bytes to the generator draining it."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.pending = 0
        self.offset = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self.pending += len(chunk)
        self.offset += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        # zipfile asks for the position to fill local header offsets; it never seeks.
        return self.offset

    def flush(self) -> None:
        """Nothing is buffered below us."""

    def close(self) -> None:
        """Nothing to release."""

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        self.pending = 0
        return data


def _chunks(member: ArchiveMember, read: _Source) -> Iterable[bytes]:
    return (member.data,) if member.data is not None else read(member.key)


def stream_zip(members: Iterable[ArchiveMember], read: _Source) -> Iterator[bytes]:
    """Yield a ZIP (stored, ZIP64 when needed, data descriptors) of `members`, read by `read`."""
    sink = _Sink()
    now = time.localtime()[:6]
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for member in members:
            info = zipfile.ZipInfo(member.name, date_time=now)
            info.compress_type = zipfile.ZIP_STORED
            info.file_size = member.size
            info.external_attr = 0o644 << 16
            with zf.open(info, mode="w", force_zip64=member.size >= zipfile.ZIP64_LIMIT) as out:
                for chunk in _chunks(member, read):
                    out.write(chunk)
                    if sink.pending >= _FLUSH:
                        yield sink.drain()
            if sink.pending >= _FLUSH:
                yield sink.drain()
    if sink.pending:
        yield sink.drain()


class _ChunkReader:
    """A read() over an iterable of chunks, for tarfile.addfile."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._rest = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._rest) < size:
            nxt = next(self._it, None)
            if nxt is None:
                break
            self._rest += nxt
        if size < 0:
            data, self._rest = self._rest, b""
        else:
            data, self._rest = self._rest[:size], self._rest[size:]
        return data


def stream_tar(members: Iterable[ArchiveMember], read: _Source) -> Iterator[bytes]:
    """Yield a POSIX (pax) tar of `members`, read by `read`."""
    sink = _Sink()
    mtime = int(time.time())
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT, bufsize=_FLUSH) as tar:  # type: ignore[call-overload]
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.size = member.size
            info.mode = 0o644
            info.mtime = mtime
            tar.addfile(info, _ChunkReader(_chunks(member, read)))
            if sink.pending >= _FLUSH:
                yield sink.drain()
    if sink.pending:
        yield sink.drain()
