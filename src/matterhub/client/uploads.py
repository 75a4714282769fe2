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

__all__ = ["is_local_source", "local_files", "open_parts", "split_sources", "total_bytes"]

_OCTETS = "application/octet-stream"


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
