"""The warm worker: runs inside a servable's own environment (and sandbox); stdlib only.

`python worker.py SHIM FILES_DIR DOCUMENT MEMORY_MB` loads the servable once through the hub's
shim, then answers length-prefixed JSON frames on its inherited pipes (fd 0 in, fd 1 out):

    request  {"calls": [{"inputs", "parameters", "method"?}], "debug": bool, "cpu_s": float}
    reply    {"results": [{"ok", "output" | "error_type", "error", "traceback", "wall_s",
                           "batched"?, "stdout"?, "stderr"?}], "recycle": bool}

A frame is a 4-byte big-endian length and that many bytes: a 4-byte length of its UTF-8 JSON,
the JSON, then the raw bytes of the frame's arrays (each at an offset aligned to 8). An array
anywhere in the JSON is `{"__ndarray__": {"dtype": "<f4", "shape": [..], "buffer": [offset,
nbytes]}}`, the offset counted from the end of the JSON: numbers travel as their bytes, not as
text (a 32×32 float image is 4 kB instead of ~21 kB of JSON, and nothing formats or parses
them). Model servables (every shim but python) get such inputs as numpy arrays; python servables
get lists, as from JSON. Numeric numpy arrays (and tensors) in outputs go back the same way;
anything else is plain JSON (`shim.jsonable`). The servable's own
prints go to stderr (a log file the host keeps), or are captured per call with `debug`. Limits
are set by the sandbox before this process starts (hard rlimits it cannot lift: address space,
lifetime CPU seconds, processes, open files, file size); here the CPU soft limit is moved for
each call (SIGXCPU ends the worker when a call overspends), and the worker asks to be replaced
after a MemoryError or when its lifetime CPU is nearly spent.

Vectorized calls: when the servable's method has a batch function (`method_details.batch_function`,
see the shim) and a frame (no `debug`) holds several calls of that method with equal parameters,
they are answered by one call of the batch function with the list of their inputs, under the CPU
budget of that many calls; each result's `wall_s` is its share and `batched` how many were
folded. If the batch function raises or answers a list of the wrong length, the calls are made
one by one, so a bad input fails only its own call, with its own error.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import io
import json
import os
import resource
import struct
import sys
import time
import traceback
from typing import Any, BinaryIO

_HEADER = struct.Struct(">I")
TAG = "__ndarray__"
# numpy's dtype strings (native little-endian) → memoryview formats, for lists without numpy.
FORMATS = {
    "<f8": "d", "<f4": "f", "<i8": "q", "<i4": "i", "<i2": "h", "|i1": "b",
    "<u8": "Q", "<u4": "I", "<u2": "H", "|u1": "B", "|b1": "?",
}  # fmt: skip


def read_frame(stream: BinaryIO, arrays: bool = False) -> Any:
    """One frame from `stream` (its arrays as numpy arrays when `arrays`, else lists), or None
    at end of input."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = _HEADER.unpack(head)
    body = bytearray(size)  # writable: the arrays over it are too (torch wants that)
    view = memoryview(body)
    got = 0
    while got < size:
        n = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            return None
        got += n
    return decode(body, arrays)


def decode(body: bytearray | bytes, arrays: bool = False) -> Any:
    """A frame's body (after its length) as a value; see the module's docstring."""
    (size,) = _HEADER.unpack_from(body)
    text = bytes(body[4 : 4 + size])
    if TAG.encode() not in text:
        return json.loads(text)
    buffers = memoryview(body)[4 + size :]
    numpy = _numpy() if arrays else None

    def hook(value: dict[str, Any]) -> Any:
        spec = value.get(TAG)
        if len(value) != 1 or not isinstance(spec, dict) or "buffer" not in spec:
            return value
        offset, nbytes = spec["buffer"]
        part = buffers[offset : offset + nbytes]
        if numpy is not None:
            array = numpy.frombuffer(part, dtype=numpy.dtype(spec["dtype"]))
            return array.reshape(spec["shape"])
        shape = spec["shape"]
        if not shape:
            return part.cast(FORMATS[spec["dtype"]]).tolist()[0]  # type: ignore[call-overload]
        if 0 in shape:
            return empty_lists(shape)
        return part.cast(FORMATS[spec["dtype"]], shape).tolist()  # type: ignore[call-overload]

    return json.loads(text, object_hook=hook)


def empty_lists(shape: list[int]) -> Any:
    """Nested lists of `shape`, which has a zero (memoryview cannot cast to it)."""
    return [] if shape[0] == 0 else [empty_lists(shape[1:]) for _ in range(shape[0])]


class Buffers:
    """The raw bytes that follow a frame's JSON: `add` appends an array's (8-byte aligned) and
    returns the reference that stands for it in the JSON. The host's frames.py uses it too."""

    def __init__(self) -> None:
        self.parts: list[bytes | memoryview] = []
        self.end = 0

    def add(self, array: Any) -> dict[str, Any]:
        flat = array if array.flags.c_contiguous else array.copy(order="C")
        data = memoryview(flat).cast("B") if flat.size else memoryview(b"")
        pad = -self.end % 8
        if pad:
            self.parts.append(bytes(pad))
            self.end += pad
        spec = {"dtype": array.dtype.str, "shape": list(array.shape)}
        spec["buffer"] = [self.end, data.nbytes]
        self.parts.append(data)
        self.end += data.nbytes
        return {TAG: spec}

    def frame(self, text: bytes) -> list[bytes | memoryview]:
        """The whole frame's parts: its length, the JSON's length, the JSON, the bytes."""
        head = _HEADER.pack(4 + len(text) + self.end) + _HEADER.pack(len(text))
        return [head, text, *self.parts]


def encode(value: Any, jsonable: Any = None) -> list[bytes | memoryview]:
    """A value as a frame's parts (length, JSON length, JSON, array bytes…), numeric numpy
    arrays and tensors as raw bytes; the rest through `jsonable` (the shim's) when given.

    A value that JSON writes as it is — only dicts with str keys, lists, tuples, str, int,
    float, bool and None (and their subclasses json writes natively) — goes straight to
    `json.dumps` (most replies: no array to take out, nothing to convert); anything else (an
    array, a tensor, a numpy scalar, a non-str key, a dict or list subclass) is walked as
    below. Both give the same JSON, non-finite floats (`NaN`) included.
    """
    if _plain_containers(value):
        try:
            text = json.dumps(value, separators=(",", ":"), default=_needs_walk).encode()
        except (_NeedsWalk, ValueError, RecursionError):
            pass  # the walk converts it, or raises as it always did
        else:
            return Buffers().frame(text)
    return _walked(value, jsonable)


def _walked(value: Any, jsonable: Any = None) -> list[bytes | memoryview]:
    """`encode` by walking the value: arrays out as bytes, every other leaf through
    `jsonable`, every dict key through str()."""
    buffers = Buffers()

    def walk(item: Any) -> Any:
        if hasattr(item, "detach") and hasattr(item, "numpy"):  # a torch tensor
            item = item.detach().cpu().numpy()
        dtype = getattr(item, "dtype", None)
        if (
            dtype is not None
            and hasattr(item, "tobytes")
            and getattr(item, "ndim", 0) >= 1
            and dtype.kind in "biuf"
            and dtype.str in FORMATS
        ):
            return buffers.add(item)
        if isinstance(item, dict):
            return {str(k): walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        return jsonable(item) if jsonable is not None else item

    text = json.dumps(walk(value), separators=(",", ":"), default=_plain).encode()
    return buffers.frame(text)


class _NeedsWalk(Exception):
    """A value json cannot write as it is: `encode` walks it instead."""


def _needs_walk(item: Any) -> Any:
    raise _NeedsWalk


_CONTAINERS = (dict, list, tuple)
_MAX_CONTAINERS = 100_000  # past this (or a cycle), the walk decides


def _plain_containers(value: Any) -> bool:
    """Whether every container in `value` is exactly a dict with str keys, a list or a tuple
    (then json writes the keys, and iterates, as the walk does)."""
    stack, seen = [value], 0
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            if any(type(k) is not str for k in item):
                return False
            children = item.values()
        elif kind is list or kind is tuple:
            children = item
        elif isinstance(item, _CONTAINERS):
            return False  # a subclass: it may iterate or name its keys its own way
        else:
            continue
        seen += 1
        if seen > _MAX_CONTAINERS:
            return False
        stack.extend([c for c in children if isinstance(c, _CONTAINERS)])
    return True


def _plain(item: Any) -> Any:
    """numpy scalars and other arrays, when no `jsonable` was given."""
    if hasattr(item, "tolist"):
        return item.tolist()
    raise TypeError(f"Object of type {type(item).__name__} is not JSON serializable")


def write_frame(stream: BinaryIO, value: Any, jsonable: Any = None) -> None:
    """One frame to `stream`, flushed."""
    for part in encode(value, jsonable):
        stream.write(part)
    stream.flush()


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def _limit_memory(memory_mb: int) -> None:
    if memory_mb > 0:
        cap = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _cpu_budget(seconds: float) -> float:
    """Let the next call use `seconds` more CPU time (SIGXCPU, fatal, when it uses more).

    Returns the CPU seconds left under the hard limit the sandbox set for this worker's life.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    left = float("inf") if hard == resource.RLIM_INFINITY else hard - used
    if seconds <= 0:
        return left
    soft = int(used + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    return left


def _load_shim(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("matterhub_shim", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "ok": False,
        "error_type": type(exc).__name__,
        "error": str(exc),
        "traceback": traceback.format_exc(limit=20),
    }


def _call(runner: Any, shim: Any, call: dict[str, Any], debug: bool) -> dict[str, Any]:
    start = time.perf_counter()
    out, err = io.StringIO(), io.StringIO()
    capture = (
        (contextlib.redirect_stdout(out), contextlib.redirect_stderr(err))
        if debug
        else (contextlib.nullcontext(), contextlib.nullcontext())
    )
    try:
        with capture[0], capture[1]:
            value = runner(call.get("inputs"), call.get("parameters") or {})
            reply: dict[str, Any] = {"ok": True, "output": value}  # encoded with the frame
    except MemoryError as exc:
        reply = _error(exc)
        reply["error"] = str(exc) or "the servable ran out of memory"
    except Exception as exc:
        reply = _error(exc)
    reply["wall_s"] = time.perf_counter() - start
    if debug:
        reply["stdout"], reply["stderr"] = out.getvalue(), err.getvalue()
    return reply


def _call_many(runner: Any, shim: Any, calls: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Calls of one method with equal parameters through its batch function, or None when it
    raised or answered other than one output per input (the caller then calls one by one)."""
    start = time.perf_counter()
    try:
        values = runner.batch([c.get("inputs") for c in calls], calls[0].get("parameters") or {})
    except Exception:
        return None
    if hasattr(values, "detach") and hasattr(values, "numpy"):  # a torch tensor: its rows
        values = values.detach().cpu().numpy()
    if isinstance(values, tuple) or getattr(values, "ndim", 0) >= 1:
        values = list(values)  # a tuple of outputs, or an array's rows: one output each
    if not isinstance(values, list) or len(values) != len(calls):
        return None
    share = (time.perf_counter() - start) / len(calls)
    return [{"ok": True, "output": v, "wall_s": share, "batched": len(calls)} for v in values]


def _foldable(calls: list[dict[str, Any]], batched: Any) -> list[list[int]]:
    """Indices of calls to fold: per method with a batch function and equal parameters, 2+."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, call in enumerate(calls):
        method = call.get("method") or "run"
        if batched(method):
            key = (method, json.dumps(call.get("parameters") or {}, sort_keys=True))
            groups.setdefault(key, []).append(i)
    return [indices for indices in groups.values() if len(indices) > 1]


def main(argv: list[str]) -> int:
    """Load the servable, say ready, then answer frames until stdin closes."""
    shim_path, files_dir, document_path, memory_mb = argv[0], argv[1], argv[2], int(argv[3])
    stdin = os.fdopen(os.dup(0), "rb")
    stdout = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the servable cannot read the protocol…
    os.dup2(2, 1)  # …nor write into it: its prints go to stderr
    _limit_memory(memory_mb)
    start = time.perf_counter()
    runners: dict[str, Any] = {}
    try:
        shim = _load_shim(shim_path)
        with open(document_path) as handle:
            document = json.load(handle)
        runners["run"] = shim.load(document, _path(files_dir))
        # Model servables take arrays; python functions get lists, as JSON would give them.
        arrays = shim.takes_arrays(document)
    except BaseException as exc:
        write_frame(stdout, {"ready": False, **_error(exc)})
        return 1
    # The loaded model (a framework's modules, layers, weights) lives as long as the worker: keep
    # it out of the cyclic collector's scans, which otherwise walk it again and again.
    gc.freeze()
    write_frame(stdout, {"ready": True, "load_s": time.perf_counter() - start, "pid": os.getpid()})
    failed: dict[str, BaseException] = {}

    def runner(method: str) -> Any:
        if method not in runners and method not in failed:
            try:
                runners[method] = shim.load(document, _path(files_dir), method)
            except Exception as exc:
                failed[method] = exc
        return runners.get(method)

    def batched(method: str) -> bool:
        return getattr(runner(method), "batch", None) is not None

    while True:
        # No cyclic collection while a frame is read, answered and written: JSON and arrays
        # turned into lists make many small objects, and the collector's passes over them cost
        # more than a small model (docs/usecases/cdi.md "Throughput"). Reference counting still
        # frees all that is not in a cycle; the collector runs between frames; memory stays
        # under the sandbox's RLIMIT_AS.
        gc.disable()
        try:
            request = read_frame(stdin, arrays)
            if request is None:
                return 0
            reply = _frame(request, runner, runners, failed, shim, batched)
            write_frame(stdout, reply, shim.jsonable)
        finally:
            gc.enable()


def _frame(
    request: dict[str, Any],
    runner: Any,
    runners: dict[str, Any],
    failed: dict[str, BaseException],
    shim: Any,
    batched: Any,
) -> dict[str, Any]:
    """The reply to one frame: its calls, folded where a batch function can answer them."""
    debug = bool(request.get("debug"))
    cpu_s = float(request.get("cpu_s") or 0)
    calls = request.get("calls", [])
    results: list[dict[str, Any] | None] = [None] * len(calls)
    recycle = False
    # Calls a batch function can answer together (never with debug: output is per call).
    for indices in [] if debug else _foldable(calls, batched):
        method = calls[indices[0]].get("method") or "run"
        _cpu_budget(cpu_s * len(indices))  # the CPU time the calls had one by one
        replies = _call_many(runners[method], shim, [calls[i] for i in indices])
        recycle = recycle or _cpu_budget(0) < 2 * cpu_s  # what it has left after
        for i, reply in zip(indices, replies or [], strict=False):
            results[i] = reply
    for i, call in enumerate(calls):
        if results[i] is not None:
            continue
        method = call.get("method") or "run"
        found = runner(method)
        if found is None:
            results[i] = _error_of(failed[method])
            continue
        left = _cpu_budget(cpu_s)
        reply = _call(found, shim, call, debug)
        recycle = recycle or reply.get("error_type") == "MemoryError"
        recycle = recycle or left < 2 * cpu_s  # its lifetime CPU limit is near
        results[i] = reply
    return {"results": results, "recycle": recycle}


def _error_of(exc: BaseException) -> dict[str, Any]:
    """A failed load's reply (the exception is not being handled any more: no traceback)."""
    return {"ok": False, "error_type": type(exc).__name__, "error": str(exc), "traceback": ""}


def _path(text: str) -> Any:
    from pathlib import Path

    return Path(text)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
