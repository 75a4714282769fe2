"""The warm worker: runs inside a servable's own environment (and sandbox); stdlib only.

`python worker.py SHIM FILES_DIR DOCUMENT MEMORY_MB` loads the servable once through the hub's
shim, then answers length-prefixed JSON frames on its inherited pipes (fd 0 in, fd 1 out):

    request  {"calls": [{"inputs", "parameters", "method"?}], "debug": bool, "cpu_s": float}
    reply    {"results": [{"ok", "output" | "error_type", "error", "traceback", "wall_s",
                           "batched"?, "stdout"?, "stderr"?}], "recycle": bool}

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON. The servable's own
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


def read_frame(stream: BinaryIO) -> Any:
    """One frame from `stream`, or None at end of input."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = _HEADER.unpack(head)
    body = stream.read(size)
    return json.loads(body)


def write_frame(stream: BinaryIO, value: Any) -> None:
    """One frame to `stream`, flushed."""
    body = json.dumps(value, separators=(",", ":")).encode()
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


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
            reply: dict[str, Any] = {"ok": True, "output": shim.jsonable(value)}
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
        values = shim.jsonable(
            runner.batch([c.get("inputs") for c in calls], calls[0].get("parameters") or {})
        )
    except Exception:
        return None
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
            request = read_frame(stdin)
            if request is None:
                return 0
            write_frame(stdout, _frame(request, runner, runners, failed, shim, batched))
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
