"""The extractor plugin contract: staged files, groups, context, and the `Extractor` base class."""

from __future__ import annotations

import abc
import functools
import importlib
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

__all__ = [
    "WARNINGS_KEY",
    "DerivedFile",
    "ExtractionContext",
    "Extractor",
    "ExtractorUnavailable",
    "FileGroup",
    "StagedFile",
    "StagedTree",
    "clean",
    "dict_merge",
    "head",
    "require",
]

Record = dict[str, Any]
# A result may carry soft problems under this key: the facts stand, the pipeline gets a warning.
WARNINGS_KEY = "_warnings"


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A file on local disk; `relpath` is its POSIX path inside the dataset (slots: a submission
    holds one per file, 361,804 of them in the band-gap use case)."""

    path: Path
    relpath: str
    size: int

    @property
    def name(self) -> str:
        """The file's base name."""
        return PurePosixPath(self.relpath).name

    @property
    def parent(self) -> str:
        """The POSIX folder of the file inside the dataset ('' at the top)."""
        parent = str(PurePosixPath(self.relpath).parent)
        return "" if parent == "." else parent

    @property
    def suffix(self) -> str:
        """The lower-case extension without its dot ('' when there is none)."""
        return PurePosixPath(self.relpath).suffix.lower().lstrip(".")


@dataclass(frozen=True, slots=True)
class StagedTree:
    """The files staged under `root`, walked from disk whenever they are asked for and never
    held whole: a submission of 361,804 files costs one folder chunk of memory at a time.

    The order is folder by folder — a folder's files by name, then its sub-folders by name —
    so a folder's files are always together, and `chunks()` gives whole folders at a time.
    Symbolic links to files count as files; links to folders are not followed.
    """

    root: Path
    chunk_files: int = 2000

    def __iter__(self) -> Iterator[StagedFile]:
        for folder in self.folders():
            yield from folder

    def folders(self) -> Iterator[list[StagedFile]]:
        """Each folder's files (sorted by name), folder by folder; empty folders are skipped."""
        if not self.root.is_dir():
            return
        pending = [""]
        while pending:
            relative = pending.pop()
            files: list[StagedFile] = []
            subfolders: list[str] = []
            with os.scandir(self.root / relative if relative else self.root) as entries:
                for entry in entries:
                    rel = f"{relative}/{entry.name}" if relative else entry.name
                    if entry.is_dir(follow_symlinks=False):
                        subfolders.append(rel)
                    elif entry.is_file():
                        files.append(StagedFile(Path(entry.path), rel, entry.stat().st_size))
            if files:
                files.sort(key=lambda f: f.relpath)
                yield files
            pending.extend(sorted(subfolders, reverse=True))  # a stack: the first name next

    def chunks(self) -> Iterator[list[StagedFile]]:
        """Whole folders at a time, at least `chunk_files` files a chunk (but the last)."""
        chunk: list[StagedFile] = []
        for folder in self.folders():
            chunk.extend(folder)
            if len(chunk) >= self.chunk_files:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def summary(self) -> tuple[int, int]:
        """(files, bytes) of the tree, in one walk."""
        count = size = 0
        for folder in self.folders():
            count += len(folder)
            size += sum(f.size for f in folder)
        return count, size


@dataclass(frozen=True)
class FileGroup:
    """Files that describe one thing together (one calculation, one image, one table)."""

    key: str
    files: tuple[StagedFile, ...]


@dataclass
class ExtractionContext:
    """Per-submission settings: extraction_config, the MDF `index` block and the time limit."""

    config: dict[str, Any] = field(default_factory=dict)
    index: dict[str, Any] = field(default_factory=dict)
    time_limit_s: float = 30.0


@dataclass(frozen=True)
class DerivedFile:
    """A file an extractor made from a group (a preview); the pipeline decides where it goes."""

    source: str
    name: str
    media_type: str
    data: bytes


class ExtractorUnavailable(RuntimeError):
    """The science library an extractor needs is not installed; the message names the extra."""


def require(module: str, extra: str) -> ModuleType:
    """Import `module` or raise `ExtractorUnavailable` naming `matterhub[<extra>]`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ExtractorUnavailable(
            f"{module} is not installed; install it with: pip install 'matterhub[{extra}]'"
        ) from exc


@functools.lru_cache(maxsize=256)
def _head(path: Path, size: int, mtime_ns: int, n: int) -> bytes:
    with path.open("rb") as fh:
        return fh.read(n)


def head(file: StagedFile, n: int = 4096) -> bytes:
    """The first `n` bytes of a file (cached, so several `accepts` can sniff one file cheaply)."""
    try:
        stat = file.path.stat()
        return _head(file.path, stat.st_size, stat.st_mtime_ns, n)
    except OSError:
        return b""


def dict_merge(base: Mapping[str, Any], add: Mapping[str, Any]) -> Record:
    """Merge `add` into a copy of `base`: nested dicts merge, lists concatenate, `add` wins."""
    out: Record = dict(base)
    for key, value in add.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = dict_merge(old, value)
        elif isinstance(old, list) and isinstance(value, list) and key == "files":
            out[key] = old + [v for v in value if v not in old]
        else:
            out[key] = value
    return out


def clean(value: Any) -> Any:
    """Make a value JSON-safe: numpy scalars → Python, NaN/inf and empty containers dropped."""
    if isinstance(value, Mapping):
        out = {str(k): clean(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    elif hasattr(value, "tolist"):
        return clean(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").rstrip("\x00")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class Extractor(abc.ABC):
    """A metadata extractor plugin (entry point group `matterhub.extractors`).

    Subclasses import their science library inside `extract` (use `require`), never at module
    import, so loading every plugin stays cheap and a missing library only affects that plugin.
    """

    name: str = ""
    version: str = "0.1.0"
    extra: str = "materials"
    # Conflicting values from several extractors of one group: the higher priority wins.
    priority: int = 10
    # When set, the extractor runs only if the submission's `index` block has this key
    # (MDF's `filename` mapping applies to every file, so it must not run unasked).
    needs_index: str = ""
    # Whether `group` only ever puts files of one folder together (true of every built-in):
    # Connect then plans a submission a chunk of whole folders at a time, in flat memory. A
    # plugin that groups across folders says False, and submissions it reads are planned whole.
    folder_local: bool = True

    @abc.abstractmethod
    def accepts(self, file: StagedFile) -> bool:
        """Whether this extractor can read `file` (by name or a cheap look at its first bytes)."""

    def group(self, files: Sequence[StagedFile]) -> Iterable[FileGroup]:
        """Split accepted files into groups; by default one group per accepted file."""
        for file in files:
            if self.accepts(file):
                yield FileGroup(file.relpath, (file,))

    @abc.abstractmethod
    def extract(self, group: FileGroup, context: ExtractionContext) -> Record | list[Record]:
        """MDF record blocks for the group; a list means one record per element.

        Raise on a file that cannot be read; put soft problems (a truncated log whose facts
        still stand) in a list of strings under `WARNINGS_KEY`.
        """

    def derive(self, group: FileGroup, context: ExtractionContext) -> list[DerivedFile]:
        """Derived files (e.g. PNG previews) for the group; none by default."""
        return []

    def citations(self) -> list[str]:
        """BibTeX entries for the libraries this extractor relies on."""
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.version}>"
