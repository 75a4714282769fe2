"""Memoization: results keyed on servable version + canonical input hash + parameters.

DLHub's paper credits memoization for much of its speed; its code lost it. Here a successful
result is kept in a bounded in-memory LRU (by entries and by bytes) keyed on the version id,
the canonical hash of the inputs and the hash of the merged parameters; a hit never touches a
worker. A servable opts out with `servable.options.memoize = false` (non-deterministic ones).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["CachedResult", "ResultCache", "digest", "measure", "memo_key"]


def digest(value: Any) -> str:
    """`sha256:<hex>` of a value's canonical JSON (the input, parameter and output hashes).

    A numpy array counts as its dtype, shape and the sha256 of its bytes (not its numbers as
    text: hashing a 32×32 image that way is ~50 times faster), so an array and the same
    numbers as lists hash differently, and equal arrays equally.
    """
    return measure(value)[0]


def measure(value: Any) -> tuple[str, int]:
    """`(digest(value), its size in bytes)` in one pass: the canonical JSON's length, an array
    counted by its bytes (what the result cache's byte bound weighs)."""
    arrays = 0

    def array_digest(item: Any) -> Any:
        nonlocal arrays
        dtype = getattr(item, "dtype", None)
        if dtype is None or not hasattr(item, "tobytes"):
            raise TypeError(f"{type(item).__name__} is not JSON serializable")
        if getattr(item, "ndim", 0) == 0 or dtype.kind not in "biufc":
            return item.tolist()
        found = hashlib.sha256()
        if item.size:
            contiguous = item.flags.c_contiguous
            found.update(memoryview(item).cast("B") if contiguous else item.tobytes())
        arrays += item.nbytes
        shape = list(item.shape)
        return {"__ndarray__": {"dtype": dtype.str, "shape": shape, "sha256": found.hexdigest()}}

    text = orjson.dumps(value, default=array_digest, option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(text).hexdigest(), len(text) + arrays


def memo_key(version_id: str, input_hash: str, parameters_hash: str) -> str:
    """The cache key of one call of one version."""
    return f"{version_id}|{input_hash}|{parameters_hash}"


@dataclass(frozen=True, slots=True)
class CachedResult:
    """A remembered output, its JSON size, and the task that computed it."""

    output: Any
    output_hash: str
    size: int
    task_id: str


class ResultCache:
    """A thread-safe LRU of results, bounded by `max_entries` and `max_bytes`."""

    def __init__(self, *, max_entries: int = 100_000, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, CachedResult] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> CachedResult | None:
        """The remembered result, or None (counted as a miss)."""
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: str, output: Any, output_hash: str, size: int, task_id: str) -> None:
        """Remember a successful output (too-large outputs are not kept)."""
        if self.max_entries <= 0 or size > self.max_bytes // 4:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._items[key] = CachedResult(output, output_hash, size, task_id)
            self._bytes += size
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.size

    def forget_version(self, version_id: str) -> int:
        """Drop every result of one version; returns how many."""
        prefix = f"{version_id}|"
        with self._lock:
            keys = [k for k in self._items if k.startswith(prefix)]
            for key in keys:
                self._bytes -= self._items.pop(key).size
        return len(keys)

    def stats(self) -> dict[str, int]:
        """Entries, bytes, hits and misses."""
        with self._lock:
            return {
                "entries": len(self._items),
                "bytes": self._bytes,
                "hits": self.hits,
                "misses": self.misses,
            }
