"""LocalExecutor: warm worker processes per servable version, sandboxed, pooled and recycled.

Each ready version gets a pool of up to `target` workers (the autoscaler moves it within the
version's bounds, autoscale.py), started lazily or ahead of calls from the version's own
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

from matterhub.core.errors import ExecutorError, InvalidInput
from matterhub.hub.inputs import localize
from matterhub.hub.runtime import frames
from matterhub.hub.runtime.autoscale import Bounds, LatencyWindow, Observation
from matterhub.hub.runtime.base import (
    Call,
    CallResult,
    Executor,
    ExecutorContext,
    WorkerCrashed,
    WorkerSpec,
    WorkerTimeout,
    in_thread,
)
from matterhub.hub.runtime.lanes import Lane, lane_for
from matterhub.hub.runtime.view import PoolView, WorkerView, tree_cpu_ns, tree_memory
from matterhub.plugins import PluginSettings
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
# Workers the autoscaler starts ahead of calls: waiting for them to load is not on a call's path.
_GROWER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hub-worker-grow")


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
        self.started_at = time.time()
        self.calls = 0
        self.latency = LatencyWindow(512)
        self.id = scratch.name
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
        """One request frame (worker.py's format: numpy arrays travel as their bytes)."""
        return frames.encode(
            {
                "calls": [
                    {"inputs": c.inputs, "parameters": c.parameters, "method": c.method}
                    for c in calls
                ],
                "debug": debug,
                "cpu_s": self.spec.cpu_s,
            }
        )

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
        reply: dict[str, Any] = frames.decode(memoryview(raw)[4:])
        return reply

    def _read(self, deadline: float) -> dict[str, Any]:
        head = self._exact(4, deadline)
        (size,) = _HEADER.unpack(head)
        if size > self.max_reply:
            raise self._too_large(size)
        value: dict[str, Any] = frames.decode(self._exact(size, deadline))
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
    """The workers of one version: idle ones ready, a count of all, a condition to wait on.

    `target` is how many workers the pool may have now (the autoscaler moves it within the
    spec's bounds); a call finding none idle starts one while `count < target`, else waits.
    """

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.idle: list[_Worker] = []
        self.live: set[_Worker] = set()  # every started worker, idle or busy
        self.count = 0  # started or starting
        self.starting = 0
        self.target = max(1, spec.scaling.min_replicas)
        self.in_flight = 0  # calls on a worker now
        self.queued = 0  # calls whose caller waits for a worker
        self.cond = threading.Condition()
        self.last_used = time.monotonic()
        self.restarts = 0
        self.latency = LatencyWindow()  # end to end, queue included
        self.cpu_seen: dict[str, int] = {}  # worker id → CPU run + wait ns at cpu_at
        self.cpu_at: float | None = None
        self.cpu_busy = 0  # busy workers at cpu_at
        self.cpu_bound: bool | None = None
        self.lanes: weakref.WeakKeyDictionary[Any, Lane] = weakref.WeakKeyDictionary()

    def flight(self, calls: int) -> None:
        """Count calls going onto (or, negative, coming off) a worker (threads and the loop)."""
        with self.cond:
            self.in_flight += calls

    def waiting(self) -> int:
        """Calls waiting for a worker: queued in lanes and held by blocked callers."""
        for _ in range(3):  # the lanes may change under this (another thread) read
            try:
                return self.queued + sum(lane.pending for lane in list(self.lanes.values()))
            except RuntimeError:
                continue
        return self.queued


class LocalExecutor(Executor):
    """Warm, sandboxed worker processes on this machine (the default executor)."""

    name = "local"

    @classmethod
    def check_target(cls, target: str) -> None:
        """Only `local`."""
        if target != "local":
            raise InvalidInput(
                f"the local executor is named 'local', not {target!r}", field="executor"
            )

    @classmethod
    def open(cls, target: str, context: ExecutorContext, settings: PluginSettings) -> LocalExecutor:
        """Workers on this machine."""
        return cls(
            context.scratch_dir,
            context.sandbox,
            max_workers=context.max_workers,
            idle_s=context.idle_s,
            inputs_dir=context.inputs_dir,
        )

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
        self._cores = len(os.sched_getaffinity(0))
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
        began = time.perf_counter()
        worker = self._acquire(pool, len(calls))
        healthy = False
        pool.flight(len(calls))
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
            sent = time.perf_counter()
            reply = worker.call(calls, debug)
            self._served(pool, worker, len(calls), began, sent)
            healthy = not reply.get("recycle")
            return [CallResult.from_reply(r) for r in reply["results"]]
        finally:
            pool.flight(-len(calls))
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
        began = time.perf_counter()

        async def exchange(batch: list[Call], debug: bool) -> list[CallResult]:
            return await self._exchange(pool, batch, debug)

        lane = lane_for(pool.lanes)
        results = await lane.submit(list(calls), debug, max(1, pool.target), exchange)
        pool.latency.add((time.perf_counter() - began) * 1000.0)
        return results

    async def _exchange(self, pool: _Pool, calls: list[Call], debug: bool) -> list[CallResult]:
        """One frame on one worker of `pool`: an idle one at once, else wait in a thread."""
        worker = None
        with pool.cond:
            if pool.idle and not self._closed.is_set():
                worker = pool.idle.pop()
        if worker is None:
            worker = await in_thread(self._acquire, pool, len(calls))
        healthy = False
        pool.flight(len(calls))
        try:
            sent = time.perf_counter()
            reply = await worker.call_async(calls, debug)
            self._served(pool, worker, len(calls), None, sent)
            healthy = not reply.get("recycle")
            return [CallResult.from_reply(r) for r in reply["results"]]
        finally:
            pool.flight(-len(calls))
            if healthy and worker.alive():
                self._release(pool, worker, healthy=True)
            else:  # killing waits for the process: not on the event loop
                await in_thread(self._release, pool, worker, healthy=False)

    @staticmethod
    def _served(pool: _Pool, worker: _Worker, calls: int, began: float | None, sent: float) -> None:
        """Count a frame's calls on its worker and record their latencies."""
        now = time.perf_counter()
        worker.calls += calls
        frame_ms = (now - sent) * 1000.0
        for _ in range(min(calls, 64)):
            worker.latency.add(frame_ms)
            if began is not None:  # the lane path records its own, queue included
                pool.latency.add((now - began) * 1000.0)

    def warm(self, spec: WorkerSpec) -> float:
        """Start a worker now (cold start); returns its start-up seconds."""
        pool = self._pool(spec)
        worker = self._acquire(pool)
        self._release(pool, worker, healthy=True)
        return worker.start_s

    def _pool(self, spec: WorkerSpec) -> _Pool:
        with self._lock:
            pool = self._pools.get(spec.key)
            fresh = pool is None
            if pool is None:
                pool = self._pools[spec.key] = _Pool(spec)
                pool.target = self._first_target(spec.scaling)
            elif pool.spec.scaling != spec.scaling:
                self._bound(pool, spec.scaling, fixed=self._scaler is None)
            pool.spec = spec  # bounds and limits follow the latest document and settings
            pool.last_used = time.monotonic()
        if fresh and spec.scaling.min_replicas > 0:
            self._grow(pool)
        return pool

    @staticmethod
    def _bound(pool: _Pool, bounds: Bounds, *, fixed: bool) -> None:
        """Keep the pool's target within new bounds (the autoscaler moves it from there;
        without one, `fixed`, the pool may grow to the maximum)."""
        with pool.cond:
            current = bounds.max_replicas if fixed else pool.target
            pool.target = max(bounds.min_replicas, min(current, bounds.max_replicas), 1)
            pool.cond.notify_all()

    def _acquire(self, pool: _Pool, calls: int = 0) -> _Worker:
        if self._closed.is_set():
            raise ExecutorError("the executor is stopped")
        with pool.cond:
            pool.queued += calls
            try:
                while not pool.idle and pool.count >= max(1, pool.target):
                    pool.cond.wait()
            finally:
                pool.queued -= calls
            if pool.idle:
                return pool.idle.pop()
            pool.count += 1
            pool.starting += 1
        return self._start(pool)

    def _start(self, pool: _Pool) -> _Worker:
        """A new worker for `pool`, whose count already includes it."""
        self._make_room(pool)
        try:
            scratch = self.scratch_dir / f"{pool.spec.key[:12]}-{os.getpid()}-{next(_counter)}"
            worker = _Worker(pool.spec, self.sandbox, scratch)
        except BaseException:
            with pool.cond:
                pool.count -= 1
                pool.starting -= 1
                pool.cond.notify()
            raise
        with pool.cond:
            pool.starting -= 1
            pool.live.add(worker)
        return worker

    def _grow(self, pool: _Pool) -> None:
        """Start workers ahead of calls until the pool has `target` (in the background)."""
        with pool.cond:
            more = max(0, pool.target - pool.count)
            pool.count += more
            pool.starting += more
        for _ in range(more):
            _GROWER.submit(self._grow_one, pool)

    def _grow_one(self, pool: _Pool) -> None:
        if self._closed.is_set():
            with pool.cond:
                pool.count -= 1
                pool.starting -= 1
            return
        try:
            worker = self._start(pool)
        except Exception:
            log.warning("could not start a worker of %s ahead of calls", pool.spec.key)
            return
        self._release(pool, worker, healthy=True)

    def _release(self, pool: _Pool, worker: _Worker, *, healthy: bool) -> None:
        if healthy and worker.alive() and not self._closed.is_set():
            with pool.cond:
                if pool.count <= max(1, pool.target):
                    pool.idle.append(worker)
                    pool.cond.notify()
                    return
                pool.count -= 1  # scaled down while it was busy: retired now
                pool.live.discard(worker)
            worker.kill()
            return
        worker.kill()
        with pool.cond:
            pool.count -= 1
            pool.live.discard(worker)
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
                pool.live.discard(worker)
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
                    # min_replicas stay warm however long they are idle
                    keep = pool.count - pool.spec.scaling.min_replicas
                    stale = [w for w in pool.idle if w.last_used < cutoff][: max(0, keep)]
                    for worker in stale:
                        pool.idle.remove(worker)
                        pool.live.discard(worker)
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
                    "target": p.target,
                    "restarts": p.restarts,
                    "pids": [w.proc.pid for w in p.idle],
                }
                for key, p in pools.items()
            },
        }

    # scaling ---------------------------------------------------------------------------------

    def observe(self) -> dict[str, tuple[Bounds, Observation]]:
        """Per pool: its bounds, replicas, calls in flight and waiting, recent latency."""
        with self._lock:
            pools = dict(self._pools)
        seen = {}
        for key, pool in pools.items():
            p50, p99 = pool.latency.percentiles()
            self._measure_cpu(pool)
            seen[key] = (
                pool.spec.scaling,
                Observation(
                    pool.target, pool.in_flight, pool.waiting(), p50, p99,
                    cpu_bound=pool.cpu_bound, cores=self._cores,
                ),
            )  # fmt: skip
        return seen

    @staticmethod
    def _measure_cpu(pool: _Pool) -> None:
        """Whether the pool's busy workers each ran on or waited for a core most of the time.

        Over the time since the last look: above 0.6 of a core per busy worker is CPU-bound,
        below 0.25 is not (it waits on something else: I/O, sleep), in between keeps the last
        verdict. Only a look with workers busy at both ends counts, and workers not seen at the
        last look (just started) are left out.
        """
        now = time.monotonic()
        with pool.cond:
            live = list(pool.live)
            busy = len(live) - len(pool.idle)
        totals = {w.id: tree_cpu_ns(w.proc.pid) for w in live if w.alive()}
        before, since, was_busy = pool.cpu_seen, pool.cpu_at, pool.cpu_busy
        pool.cpu_seen, pool.cpu_at, pool.cpu_busy = totals, now, busy
        busy = min(busy, was_busy)  # judged only over a look busy from start to end
        if since is None or busy <= 0 or now <= since:
            return
        used = sum(ns - before[k] for k, ns in totals.items() if k in before) / 1e9
        share = used / (now - since) / busy
        if share >= 0.6:
            pool.cpu_bound = True
        elif share <= 0.25:
            pool.cpu_bound = False

    def resize(self, key: str, replicas: int) -> None:
        """Move a pool's target: start workers up to it, retire idle ones past it.

        The last worker of a pool whose minimum is 0 is left to the idle reaper (`idle_s`).
        """
        with self._lock:
            pool = self._pools.get(key)
        if pool is None or self._closed.is_set():
            return
        bounds = pool.spec.scaling
        retired: list[_Worker] = []
        with pool.cond:
            pool.target = max(bounds.min_replicas, min(replicas, bounds.max_replicas))
            floor = max(1, pool.target)
            while pool.count > floor and pool.idle:
                worker = min(pool.idle, key=lambda w: w.last_used)
                pool.idle.remove(worker)
                pool.live.discard(worker)
                pool.count -= 1
                retired.append(worker)
            pool.cond.notify_all()
        for worker in retired:
            worker.kill()
        if pool.target > pool.count:
            self._grow(pool)

    def apply(self, spec: WorkerSpec) -> None:
        """New bounds for `spec`'s pool now (the pool is made, and min_replicas started)."""
        pool = self._pool(spec)
        if pool.target > pool.count:
            self._grow(pool)
        elif pool.count > max(1, pool.spec.scaling.max_replicas):
            self.resize(spec.key, pool.spec.scaling.max_replicas)

    def workers(self, keys: Sequence[str]) -> list[PoolView]:
        """The pools of `keys` with each worker's state, calls, latency and memory."""
        with self._lock:
            pools = [(k, self._pools[k]) for k in keys if k in self._pools]
        views = []
        for key, pool in pools:
            with pool.cond:
                live, idle, starting = list(pool.live), set(pool.idle), pool.starting
            rows = []
            for worker in sorted(live, key=lambda w: w.started_at):
                memory, pid = tree_memory(worker.proc.pid) if worker.alive() else (None, None)
                p50, p99 = worker.latency.percentiles(window_s=None)
                rows.append(
                    WorkerView(
                        id=worker.id,
                        state="idle" if worker in idle else "busy",
                        calls=worker.calls,
                        p50_ms=p50,
                        p99_ms=p99,
                        memory_bytes=memory,
                        pid=pid,
                        started_at=worker.started_at,
                    )
                )
            rows += [WorkerView(id=f"starting-{i}", state="starting") for i in range(starting)]
            p50, p99 = pool.latency.percentiles()
            views.append(
                PoolView(
                    version_id=key,
                    replicas=pool.count,
                    target=pool.target,
                    in_flight=pool.in_flight,
                    queue_depth=pool.waiting(),
                    bounds=pool.spec.scaling.public(),
                    p50_ms=p50,
                    p99_ms=p99,
                    restarts=pool.restarts,
                    cpu_bound=pool.cpu_bound,
                    workers=rows,
                )
            )
        return views

    def close(self) -> None:
        """Kill every worker."""
        self._stop_scaling()
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
