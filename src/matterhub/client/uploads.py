"""Local files sent to the hub as multipart parts, streamed from disk (Connect and run uploads).

`local_files` names each file as it will be stored (a directory keeps its own name as the first
path segment, a file its name); `open_parts` opens them for httpx, which reads each part in
64 KiB chunks while sending (and rewinds them when a request is retried).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "PART_BYTES",
    "PART_FILES",
    "in_parts",
    "is_local_source",
    "local_files",
    "open_parts",
    "split_sources",
    "total_bytes",
]

_OCTETS = "application/octet-stream"
# One upload request's share of the files: at most this many (the server's multipart forms
# take up to 1,000 parts) and about this many bytes (its default request limit is 64 MiB).
PART_FILES = 1000
PART_BYTES = 32 * 1024 * 1024
# What a part costs in the multipart body besides its bytes (headers, boundary), at most.
_PART_OVERHEAD = 512


def is_local_source(source: str) -> bool:
    """A data source that is a path on this machine (no URL scheme, and it exists here)."""
    if not source or "://" in source:
        return False
    return Path(source).expanduser().exists()


def split_sources(sources: Iterable[str]) -> tuple[list[str], list[str]]:
    """`(local paths, everything else)`, order kept."""
    local: list[str] = []
    remote: list[str] = []
    for source in sources:
        (local if is_local_source(source) else remote).append(source)
    return local, remote


def local_files(paths: Iterable[str | Path]) -> list[tuple[str, Path]]:
    """`(stored path, file)` for every regular file under the given files and directories.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: two files would be stored under the same path.
    """
    out: dict[str, Path] = {}
    for given in paths:
        root = Path(given).expanduser().resolve()
        if root.is_file():
            found = [(root.name, root)]
        elif root.is_dir():
            found = [
                (f"{root.name}/{path.relative_to(root).as_posix()}", path)
                for path in sorted(root.rglob("*"))
                if path.is_file()
            ]
        else:
            raise FileNotFoundError(f"no such file or directory: {given}")
        for name, path in found:
            if name in out and out[name] != path:
                raise ValueError(f"{out[name]} and {path} would both be uploaded as {name!r}")
            out[name] = path
    return list(out.items())


def total_bytes(files: Iterable[tuple[str, Path]]) -> int:
    """The size of the files, for progress and limits."""
    return sum(os.path.getsize(path) for _, path in files)


@contextmanager
def open_parts(
    field: str | None, files: Iterable[tuple[str, Path]]
) -> Iterator[list[tuple[str, Any]]]:
    """httpx `files=` parts, each named `field` (or by its stored path when None), closed after."""
    with ExitStack() as stack:
        parts = []
        for name, path in files:
            handle = stack.enter_context(path.open("rb"))
            parts.append((field or name, (name, handle, _OCTETS)))
        yield parts


def in_parts(
    files: Iterable[tuple[str, Path]], *, max_files: int = PART_FILES, max_bytes: int = PART_BYTES
) -> list[list[tuple[str, Path]]]:
    """The files split, in order, into request-sized parts: at most `max_files` each and, but
    for a part of one larger file, at most `max_bytes` of body each (a file is never split; the
    hub refuses one beyond its request limit with a 413 naming the limit)."""
    parts: list[list[tuple[str, Path]]] = [[]]
    size = 0
    for name, path in files:
        cost = os.path.getsize(path) + len(name) + _PART_OVERHEAD
        if parts[-1] and (len(parts[-1]) == max_files or size + cost > max_bytes):
            parts.append([])
            size = 0
        parts[-1].append((name, path))
        size += cost
    return parts if parts[0] else []
