"""LocalExecutor: warm worker processes per servable version, sandboxed, pooled and recycled.

Each ready version gets a pool of up to `replicas` workers, started lazily from the version's own
interpreter (`sandbox.py` builds the command, `worker.py` runs inside). A call takes an idle
worker, sends one frame and waits for one frame with a deadline; a worker that dies or overruns
is killed and dropped, and the next call starts a fresh one. Idle workers are evicted after
`idle_s`, and the least recently used idle worker makes room when `max_workers` are running.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import select
import shutil
import signal
import struct
import subprocess
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from matterhub.core.errors import ExecutorError
from matterhub.hub.inputs import localize
from matterhub.hub.runtime.base import (
    Call,
    CallResult,
    Executor,
    WorkerCrashed,
    WorkerSpec,
    WorkerTimeout,
    in_thread,
)
from matterhub.hub.runtime.lanes import Lane, lane_for
from matterhub.sandbox import Sandbox, View, kill

__all__ = ["LocalExecutor"]

log = logging.getLogger(__name__)
WORKER_SCRIPT = Path(__file__).with_name("worker.py")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_HEADER = struct.Struct(">I")
_LOAD_TIMEOUT_S = 300.0
_PIPE_BYTES = 60 * 1024  # frames up to this size are written from the event loop (pipe: 64 KiB)
_counter = itertools.count(1)
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-worker-spawn")


class _Worker:
    """One worker process and its pipes; used by one call at a time."""

    def __init__(self, spec: WorkerSpec, sandbox: Sandbox, scratch: Path) -> None:
        self.spec = spec
        self.sandbox = sandbox
        # The host's side of the scratch: staged file inputs, bound read-only into the sandbox
        # (the worker's own writable scratch is its private, size-limited /tmp).
        self.scratch = scratch
        (scratch / "inputs").mkdir(parents=True, exist_ok=True)
        self.uid = sandbox.uid()
        sandbox.give(scratch, self.uid)
        self.log_path = scratch.with_suffix(".log")
        self.killed_for: str | None = None
        self.last_used = time.monotonic()
        self.max_reply = spec.limits.output_mb * 1024 * 1024
        started = time.perf_counter()
        inner = [
            str(spec.python),
            "-u",
            str(WORKER_SCRIPT),
            str(spec.shim),
            str(spec.files_dir),
            str(spec.document_path),
            str(spec.memory_mb),
        ]
        view = View(
            read_only=(spec.env_dir, spec.files_dir, spec.document_path, WORKER_SCRIPT, scratch),
            python=spec.python,
            cwd="/tmp",
        )
        limits = dataclasses.replace(spec.limits, cpu_total_s=spec.limits.cpu_s * 100)
        env = {name: str(spec.threads) for name in _THREAD_VARS}
        env["PATH"] = f"{spec.python.parent}:/usr/local/bin:/usr/bin:/bin"
        with self.log_path.open("wb") as log_file:
            # Started from one thread that lives as long as the process: bwrap's
            # --die-with-parent is PR_SET_PDEATHSIG, which fires when the *thread* that started
            # it ends — a request thread (anyio's idle out after 10 s) would take the worker
            # with it.
            self.proc = _SPAWNER.submit(
                sandbox.popen,
                inner,
                view,
                limits,
                env=env,
                uid=self.uid,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
            ).result()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        try:
            ready = self._read(time.monotonic() + _LOAD_TIMEOUT_S)
        except ExecutorError:
            self.kill()
            raise
        if not ready.get("ready"):
            self.kill()
            raise ExecutorError(
                f"the servable failed to load: {ready.get('error_type')}: {ready.get('error')}"
            )
        self.start_s = time.perf_counter() - started

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc.poll() is None

    def frame(self, calls: Sequence[Call], debug: bool) -> bytes:
        """One request frame: the length header and the JSON body."""
        body = orjson.dumps(
            {
                "calls": [
                    {"inputs": c.inputs, "parameters": c.parameters, "method": c.method}
                    for c in calls
                ],
                "debug": debug,
                "cpu_s": self.spec.cpu_s,
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        return _HEADER.pack(len(body)) + body

    def call(
        self, calls: Sequence[Call], debug: bool, frame: bytes | None = None
    ) -> dict[str, Any]:
        """Send one request frame and wait for its reply (timeout per call in the batch)."""
        try:
            _write_all(self._in, frame or self.frame(calls, debug))
        except OSError as exc:
            raise self._crashed(f"the worker closed its input ({exc})") from None
        deadline = time.monotonic() + self.spec.timeout_s * max(1, len(calls))
        reply = self._read(deadline)
        self.last_used = time.monotonic()
        return reply

    async def call_async(self, calls: Sequence[Call], debug: bool) -> dict[str, Any]:
        """`call` from the event loop: the reply is awaited on the pipe, no thread waits.

        The frame is written at once when it fits the pipe (the worker is idle, so the pipe
        is empty and the write cannot block); a larger one goes through `call` in a thread.
        """
        frame = self.frame(calls, debug)
        if len(frame) > _PIPE_BYTES:
            return await in_thread(self.call, calls, debug, frame)
        try:
            _write_all(self._in, frame)
        except OSError as exc:
            crash = await in_thread(self._crashed, f"the worker closed its input ({exc})")
            raise crash from None
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bytes] = loop.create_future()
        got = bytearray()

        def readable() -> None:
            try:
                chunk = os.read(self._out, 1 << 20)
            except OSError:
                chunk = b""
            got.extend(chunk)
            size = _HEADER.unpack_from(got)[0] if len(got) >= 4 else 0
            whole = len(got) >= 4 and len(got) >= 4 + size
            if size > self.max_reply and not done.done():
                done.set_result(b"too large")
            if (whole or not chunk) and not done.done():
                done.set_result(bytes(got) if whole else b"")

        loop.add_reader(self._out, readable)
        try:
            raw = await asyncio.wait_for(done, self.spec.timeout_s * max(1, len(calls)))
        except TimeoutError:
            self.killed_for = "timeout"
            await in_thread(self.kill)
            raise WorkerTimeout(
                f"the servable ran past its timeout of {self.spec.timeout_s:g} s and was killed"
            ) from None
        finally:
            loop.remove_reader(self._out)
        if not raw:
            raise await in_thread(self._crashed, "the worker exited")
        if raw == b"too large":
            raise await in_thread(self._too_large, _HEADER.unpack_from(got)[0])
        self.last_used = time.monotonic()
        reply: dict[str, Any] = orjson.loads(memoryview(raw)[4:])
        return reply

    def _read(self, deadline: float) -> dict[str, Any]:
        head = self._exact(4, deadline)
        (size,) = _HEADER.unpack(head)
        if size > self.max_reply:
            raise self._too_large(size)
        value: dict[str, Any] = orjson.loads(self._exact(size, deadline))
        return value

    def _exact(self, size: int, deadline: float) -> bytes:
        chunks, need = [], size
        while need:
            left = deadline - time.monotonic()
            if left <= 0:
                self.killed_for = "timeout"
                self.kill()
                raise WorkerTimeout(
                    f"the servable ran past its timeout of {self.spec.timeout_s:g} s and was killed"
                )
            ready, _, _ = select.select([self._out], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._out, min(need, 1 << 20))
            if not chunk:
                raise self._crashed("the worker exited")
            chunks.append(chunk)
            need -= len(chunk)
        return b"".join(chunks)

    def _too_large(self, size: int) -> WorkerCrashed:
        self.killed_for = "output"
        self.kill()
        return WorkerCrashed(
            f"the servable's reply of {size} bytes is larger than the limit of "
            f"{self.spec.limits.output_mb} MiB; the worker was killed and will be replaced"
        )

    def _crashed(self, what: str) -> WorkerCrashed:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.wait()
        self.kill()
        return WorkerCrashed(f"{what}: {self.reason(code)}; it will be replaced")

    def reason(self, code: int) -> str:
        """Why the process ended, in words (bwrap reports a child's signal as 128 + n)."""
        signum = -code if code < 0 else code - 128 if code > 128 else 0
        tail = self.log_tail()
        if signum == signal.SIGXCPU:
            text = f"it used up its CPU-time limit of {self.spec.cpu_s:g} s per call"
        elif signum == signal.SIGXFSZ:
            text = f"it wrote past its file-size limit of {self.spec.limits.output_mb} MiB"
        elif signum == signal.SIGKILL:
            text = (
                f"it was killed (SIGKILL; most often the memory limit of "
                f"{self.spec.memory_mb} MiB or the system's OOM killer)"
            )
        elif signum:
            text = f"it was killed by {signal.Signals(signum).name}"
        else:
            text = f"it exited with code {code}"
        if "MemoryError" in tail:
            text += f" after running out of memory (limit {self.spec.memory_mb} MiB)"
        return text + (f"; last output: {tail[-300:]}" if tail else "")

    def log_tail(self) -> str:
        """The end of the worker's stderr."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(max(0, self.log_path.stat().st_size - 2000))
                return handle.read().decode(errors="replace").strip()
        except OSError:
            return ""

    def kill(self) -> None:
        """End the process group now and remove the scratch folder."""
        kill(self.proc)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                if stream is not None:
                    stream.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Pool:
    """The workers of one version: idle ones ready, a count of all, a condition to wait on."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.idle: list[_Worker] = []
        self.count = 0
        self.cond = threading.Condition()
        self.last_used = time.monotonic()
        self.restarts = 0
        self.lanes: weakref.WeakKeyDictionary[Any, Lane] = weakref.WeakKeyDictionary()


class LocalExecutor(Executor):
    """Warm, sandboxed worker processes on this machine (the default executor)."""

    name = "local"

    def __init__(
        self,
        scratch_dir: Path,
        sandbox: Sandbox,
        *,
        max_workers: int = 8,
        idle_s: float = 600.0,
        inputs_dir: Path | None = None,
    ) -> None:
        self.scratch_dir = scratch_dir
        self.inputs_dir = inputs_dir  # staged file inputs (hub/inputs.py)
        self.sandbox = sandbox
        self.max_workers = max_workers
        self.idle_s = idle_s
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        scratch_dir.mkdir(parents=True, exist_ok=True)
        self._reaper = threading.Thread(target=self._reap, name="hub-workers-idle", daemon=True)
        self._reaper.start()

    def run(
        self, spec: WorkerSpec, calls: Sequence[Call], *, debug: bool = False
    ) -> list[CallResult]:
        """Run `calls` on one warm worker of `spec` (started if none is idle)."""
        pool = self._pool(spec)
        worker = self._acquire(pool)
        healthy = False
        try:
            if not calls:
                healthy = True
                return []
            inbox = worker.scratch / "inputs"
            if spec.files and self.inputs_dir is not None:
                calls = [
                    dataclasses.replace(c, inputs=localize(c.inputs, inbox, self.inputs_dir))
                    for c in calls
                ]
                if inbox.exists():
                    self.sandbox.give(inbox, worker.uid)
            reply = worker.call(calls, debug)
            healthy = not reply.get("recycle")
            return [CallResult.from_reply(r) for r in reply["results"]]
        finally:
            if spec.files:
                shutil.rmtree(worker.scratch / "inputs", ignore_errors=True)
            self._release(pool, worker, healthy=healthy)

    async def run_async(
        self, spec: WorkerSpec, calls: Sequence[Call], *, debug: bool = False
    ) -> list[CallResult]:
        """`run` from the event loop: queued in the version's lane, sent in shared frames.

        Calls that arrive while the worker is busy go in its next frame together (lanes.py).
        File inputs (copied into the scratch first) take the thread path.
        """
        if spec.files or not calls:
            return await super().run_async(spec, calls, debug=debug)
        pool = self._pool(spec)

        async def exchange(batch: list[Call], debug: bool) -> list[CallResult]:
            return await self._exchange(pool, batch, debug)

        return await lane_for(pool.lanes).submit(list(calls), debug, spec.replicas, exchange)

    async def _exchange(self, pool: _Pool, calls: list[Call], debug: bool) -> list[CallResult]:
        """One frame on one worker of `pool`: an idle one at once, else wait in a thread."""
        worker = None
        with pool.cond:
            if pool.idle and not self._closed.is_set():
                worker = pool.idle.pop()
        if worker is None:
            worker = await in_thread(self._acquire, pool)
        healthy = False
        try:
            reply = await worker.call_async(calls, debug)
            healthy = not reply.get("recycle")
            return [CallResult.from_reply(r) for r in reply["results"]]
        finally:
            if healthy and worker.alive():
                self._release(pool, worker, healthy=True)
            else:  # killing waits for the process: not on the event loop
                await in_thread(self._release, pool, worker, healthy=False)

    def warm(self, spec: WorkerSpec) -> float:
        """Start a worker now (cold start); returns its start-up seconds."""
        pool = self._pool(spec)
        worker = self._acquire(pool)
        self._release(pool, worker, healthy=True)
        return worker.start_s

    def _pool(self, spec: WorkerSpec) -> _Pool:
        with self._lock:
            pool = self._pools.get(spec.key)
            if pool is None:
                pool = self._pools[spec.key] = _Pool(spec)
            pool.spec = spec  # replicas and limits follow the latest document
            pool.last_used = time.monotonic()
            return pool

    def _acquire(self, pool: _Pool) -> _Worker:
        if self._closed.is_set():
            raise ExecutorError("the executor is stopped")
        with pool.cond:
            while not pool.idle and pool.count >= max(1, pool.spec.replicas):
                pool.cond.wait()
            if pool.idle:
                return pool.idle.pop()
            pool.count += 1
        self._make_room(pool)
        try:
            scratch = self.scratch_dir / f"{pool.spec.key[:12]}-{os.getpid()}-{next(_counter)}"
            return _Worker(pool.spec, self.sandbox, scratch)
        except BaseException:
            with pool.cond:
                pool.count -= 1
                pool.cond.notify()
            raise

    def _release(self, pool: _Pool, worker: _Worker, *, healthy: bool) -> None:
        if healthy and worker.alive() and not self._closed.is_set():
            with pool.cond:
                pool.idle.append(worker)
                pool.cond.notify()
            return
        worker.kill()
        with pool.cond:
            pool.count -= 1
            pool.restarts += 1
            pool.cond.notify()

    def _make_room(self, keep: _Pool) -> None:
        """Evict least recently used idle workers of other versions past `max_workers`."""
        while True:
            with self._lock:
                pools = list(self._pools.values())
            if sum(p.count for p in pools) <= self.max_workers:
                return
            candidates = [(w.last_used, p, w) for p in pools if p is not keep for w in list(p.idle)]
            if not candidates:
                return  # everything else is busy; run over the limit rather than deadlock
            _, pool, worker = min(candidates, key=lambda c: c[0])
            with pool.cond:
                if worker not in pool.idle:
                    continue
                pool.idle.remove(worker)
                pool.count -= 1
            log.info("evicting an idle worker of %s to make room", pool.spec.key)
            worker.kill()

    def _reap(self) -> None:
        while not self._closed.wait(min(30.0, max(0.5, self.idle_s / 4))):
            cutoff = time.monotonic() - self.idle_s
            with self._lock:
                pools = list(self._pools.values())
            for pool in pools:
                with pool.cond:
                    stale = [w for w in pool.idle if w.last_used < cutoff]
                    for worker in stale:
                        pool.idle.remove(worker)
                        pool.count -= 1
                for worker in stale:
                    worker.kill()

    def stats(self) -> dict[str, Any]:
        """Per version: workers running, idle, replicas and restarts; plus the sandbox."""
        with self._lock:
            pools = dict(self._pools)
        return {
            "executor": self.name,
            "sandbox": self.sandbox.describe(),
            "versions": {
                key: {
                    "workers": p.count,
                    "idle": len(p.idle),
                    "replicas": p.spec.replicas,
                    "restarts": p.restarts,
                    "pids": [w.proc.pid for w in p.idle],
                }
                for key, p in pools.items()
            },
        }

    def close(self) -> None:
        """Kill every worker."""
        self._closed.set()
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            with pool.cond:
                idle, pool.idle = pool.idle, []
                pool.count -= len(idle)
                pool.cond.notify_all()
            for worker in idle:
                worker.kill()
