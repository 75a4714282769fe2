"""The collector port, the registry of collectors and safe archive unpacking."""

from __future__ import annotations

import tarfile
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from matterhub.core.errors import InvalidInput
from matterhub.netguard import NetGuard
from matterhub.plugins import iter_plugins

__all__ = [
    "Collector",
    "CollectorContext",
    "OverBudget",
    "load_collectors",
    "over_budget",
    "safe_unpack",
    "stage_path",
]

_ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


@dataclass(frozen=True)
class CollectorContext:
    """What collectors may rely on: where to write, the operator's limits and the outbound guard.

    `max_bytes` is what this collection may still add: the pipeline hands each source what is
    left of the submission's budget (`budget_bytes`, named in refusals).
    """

    allowed_roots: Sequence[Path] = ()
    allow_private_addresses: bool = False
    max_bytes: int = 50 * 1024**3
    timeout_s: float = 60.0
    options: dict[str, object] = field(default_factory=dict)
    # Every request and local path goes through it; built from the two fields above if not given.
    guard: NetGuard | None = None
    budget_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.guard is None:
            guard = NetGuard.build(
                allow_private=self.allow_private_addresses, allowed_roots=self.allowed_roots
            )
            object.__setattr__(self, "guard", guard)
        if self.budget_bytes is None:
            object.__setattr__(self, "budget_bytes", self.max_bytes)

    @property
    def net(self) -> NetGuard:
        """The outbound guard (always set)."""
        assert self.guard is not None
        return self.guard


class OverBudget(InvalidInput):
    """Data past the byte budget (callers with their own limit, such as the hub, tell it apart)."""


def over_budget(source: str, context: CollectorContext) -> InvalidInput:
    """The refusal for data past the submission's byte budget, naming the limit."""
    return OverBudget(
        f"{source}: the submission's data is larger than its limit of {context.budget_bytes} "
        "bytes (setting MATTERHUB_CONNECT_MAX_BYTES), counting every source and upload",
        field="data_sources",
    )


class Collector(ABC):
    """Copies the data behind one data-source URL into a staging folder."""

    name: str = ""
    # Lower runs first: specific collectors (Zenodo URLs) before generic ones (any http URL).
    priority: int = 0

    @abstractmethod
    def accepts(self, source: str) -> bool:
        """Whether this collector understands the URL."""

    @abstractmethod
    def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
        """Copy the data into `dest` (created); returns the bytes written.

        Raises:
            InvalidInput: the source is malformed or not allowed (naming `data_sources`).
            StorageError: it could not be reached or read (transient: the pipeline retries).
        """


def load_collectors() -> list[Collector]:
    """Every collector registered under the `matterhub.collectors` entry point, built-ins too."""
    out: list[Collector] = [plugin() for _name, plugin in iter_plugins("matterhub.collectors")]
    return sorted(out, key=lambda c: (c.priority, c.name))


def stage_path(dest: Path, relpath: str) -> Path:
    """A path inside `dest` for `relpath`, refusing absolute paths and `..` escapes."""
    parts = PurePosixPath(relpath.replace("\\", "/")).parts
    if not parts or any(p in ("..", "") for p in parts) or parts[0] == "/":
        raise InvalidInput(f"unsafe path {relpath!r} in the data", field="data_sources")
    target = dest.joinpath(*parts).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise InvalidInput(f"unsafe path {relpath!r} in the data", field="data_sources")
    return target


def is_archive(name: str) -> bool:
    """Whether a file name looks like an archive we unpack."""
    return name.lower().endswith(_ARCHIVES)


def safe_unpack(
    archive: Path, dest: Path, *, max_bytes: int, context: CollectorContext | None = None
) -> int:
    """Unpack zip/tar archives without path escapes, links or decompression bombs.

    Raises:
        InvalidInput: a member escapes the folder, is a link or device, or the total
            unpacked size exceeds `max_bytes`.
    """
    total = 0
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                total += info.file_size
                if total > max_bytes:
                    raise _too_big(archive, context)
                target = stage_path(dest, info.filename)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as out:
                    written = _copy_limited(src, out, info.file_size)
                    if written != info.file_size:
                        raise InvalidInput(
                            "an archive member is larger than it declares", field="data_sources"
                        )
        return total
    with tarfile.open(archive) as tf:
        for member in tf:
            if member.isdir():
                continue
            if not member.isfile():
                raise InvalidInput(
                    f"archive member {member.name!r} is a link or device", field="data_sources"
                )
            total += member.size
            if total > max_bytes:
                raise _too_big(archive, context)
            target = stage_path(dest, member.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tf.extractfile(member)
            assert source is not None
            with source, target.open("wb") as out:
                _copy_limited(source, out, member.size)
    return total


def _too_big(archive: Path, context: CollectorContext | None) -> InvalidInput:
    if context is not None:
        return over_budget(f"the archive {archive.name}", context)
    return InvalidInput("the archive unpacks to more than the size limit", field="data_sources")


def _copy_limited(src: IO[bytes], out: IO[bytes], limit: int) -> int:
    written = 0
    while chunk := src.read(1 << 20):
        written += len(chunk)
        if written > limit:
            raise InvalidInput("an archive member is larger than it declares", field="data_sources")
        out.write(chunk)
    return written
