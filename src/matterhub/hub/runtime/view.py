"""What an executor shows of its workers: state, calls, latency, memory, per version.

A sandboxed worker is a process tree (bubblewrap, its pid-namespace init, the servable's
Python): its memory is the resident set of the whole tree, read from `/proc/<pid>/status`,
and its pid is that of the innermost process running the worker script.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PoolView", "WorkerView", "process_tree", "tree_cpu_ns", "tree_memory"]

_PROC = Path("/proc")


@dataclass(slots=True)
class WorkerView:
    """One worker (local process or Ray actor) of a version."""

    id: str
    state: str  # starting | idle | busy
    calls: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    memory_bytes: int | None = None
    pid: int | None = None
    started_at: float | None = None  # seconds since the epoch
    node: str | None = None  # Ray: the node the actor runs on

    def public(self) -> dict[str, Any]:
        """As JSON."""
        return asdict(self)


@dataclass(slots=True)
class PoolView:
    """A version's pool: its replicas, bounds, queue and workers."""

    version_id: str
    replicas: int
    target: int
    in_flight: int
    queue_depth: int
    bounds: dict[str, Any]
    p50_ms: float | None = None
    p99_ms: float | None = None
    restarts: int = 0
    cpu_bound: bool | None = None  # busy workers each want a core (None: not measured)
    workers: list[WorkerView] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """As JSON."""
        value = asdict(self)
        value["workers"] = [w.public() for w in self.workers]
        return value


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in (_PROC / str(pid) / "task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                text = (task / "children").read_text()
                found.extend(int(p) for p in text.split())
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, parents first."""
    tree: list[int] = []
    todo = [pid]
    while todo and len(tree) < 256:
        current = todo.pop(0)
        tree.append(current)
        todo.extend(_children(current))
    return tree


def _rss(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def tree_memory(pid: int, marker: str = "worker.py") -> tuple[int | None, int | None]:
    """(resident bytes of `pid`'s tree, the pid of its innermost process running `marker`)."""
    tree = process_tree(pid)
    if not (_PROC / str(pid)).exists():
        return None, None
    inner = pid
    for member in tree:
        with contextlib.suppress(OSError):
            if marker.encode() in (_PROC / str(member) / "cmdline").read_bytes():
                inner = member
    return sum(_rss(p) for p in tree), inner


def tree_cpu_ns(pid: int) -> int:
    """Nanoseconds `pid`'s tree ran on or waited for a CPU (every thread; /proc schedstat)."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for task in (_PROC / str(member) / "task").iterdir():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    fields = (task / "schedstat").read_text().split()
                    total += int(fields[0]) + int(fields[1])
    return total


def own_memory() -> int:
    """Resident bytes of this process (for a Ray actor reporting itself)."""
    return _rss(os.getpid())
