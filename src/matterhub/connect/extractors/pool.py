"""Warm worker processes that run extractor calls under a time limit and survive hung parsers."""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import pickle
import queue
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any

from matterhub.connect.extractors.base import (
    DerivedFile,
    ExtractionContext,
    Extractor,
    ExtractorUnavailable,
    FileGroup,
    Record,
)

__all__ = ["ExtractorPool", "Outcome", "Task", "default_pool"]


@dataclass(frozen=True)
class Task:
    """One extractor call on one group."""

    extractor: Extractor
    group: FileGroup
    context: ExtractionContext
    derive: bool = False
    # The second call of a derive task: previews only, made after the extraction succeeded
    # and under its own time limit, so a slow renderer never costs the extracted facts.
    derive_only: bool = False


@dataclass
class Outcome:
    """What one call gave: a result, or an error (`unavailable`: a library is missing)."""

    task: Task
    result: Record | list[Record] | None = None
    derived: list[DerivedFile] = field(default_factory=list)
    error: str | None = None
    unavailable: bool = False
    # Soft problems of the call that are not part of the result (a preview that failed).
    notes: list[str] = field(default_factory=list)


Reply = tuple[str, Any, Any, list[str]]


def _derive(task: Task) -> tuple[list[DerivedFile], list[str]]:
    """The task's derived files; a failing preview is a note, never a lost extraction."""
    if not task.derive:
        return [], []
    try:
        return list(task.extractor.derive(task.group, task.context)), []
    except Exception as exc:
        return [], [f"derived files: {type(exc).__name__}: {exc}"]


def _call(task: Task) -> Reply:
    if task.derive_only:
        derived, notes = _derive(task)
        return ("ok", None, derived, notes)
    try:
        result = task.extractor.extract(task.group, task.context)
    except ExtractorUnavailable as exc:
        return ("unavailable", str(exc), None, [])
    except Exception as exc:  # a plugin's failure is data for the warnings list, not a crash
        return ("error", f"{type(exc).__name__}: {exc}", None, [])
    return ("ok", result, [], [])


def _worker_main(conn: Connection) -> None:
    # Libraries warn freely about the files they read; nobody sees a worker's stderr.
    warnings.simplefilter("ignore")
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        reply = _call(task)
        try:
            conn.send(reply)
        except Exception as exc:
            conn.send(("error", f"result could not be sent back: {exc}", None, []))


class _Worker:
    def __init__(self, ctx: Any) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()

    def call(self, payload: bytes, timeout: float) -> Reply | None:
        """Send a pickled task; None when the worker timed out or died (it is then dead)."""
        try:
            self.conn.send_bytes(payload)
            if not self.conn.poll(timeout):
                self.kill()
                return None
            reply: Reply = self.conn.recv()
            return reply
        except (EOFError, OSError):
            self.kill()
            return ("error", "the worker process died (crash in a native library?)", None, [])

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()

    @property
    def alive(self) -> bool:
        return self.process.is_alive() and not self.conn.closed


def _in_thread(task: Task, timeout: float) -> Reply | None:
    box: list[Reply] = []
    thread = threading.Thread(target=lambda: box.append(_call(task)), daemon=True)
    thread.start()
    thread.join(timeout)
    return box[0] if box else None


class ExtractorPool:
    """A few warm worker processes; a call that runs past its limit has its worker replaced.

    Workers start from a fork server, so they are cheap to replace and never inherit the
    pipeline's threads or open connections; each keeps its imported science libraries warm.
    """

    def __init__(self, workers: int | None = None, *, isolation: str = "process") -> None:
        self.size = max(1, workers or min(2, os.cpu_count() or 1))
        self.isolation = isolation
        method = (
            "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        )
        self._ctx = multiprocessing.get_context(method)
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def _checkout(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                worker = _Worker(self._ctx)
                self._all.append(worker)
                return worker

    def _checkin(self, worker: _Worker) -> None:
        if worker.alive and not self._closed:
            self._idle.put(worker)
        else:
            with self._lock:
                if worker in self._all:
                    self._all.remove(worker)

    def _send(
        self, task: Task, worker: _Worker | None, limit: float, payload: bytes | None = None
    ) -> Reply | None:
        if worker is None:
            return _in_thread(task, limit)
        return worker.call(payload or pickle.dumps(task), limit)

    def _run_one(self, task: Task) -> Outcome:
        limit = task.context.time_limit_s
        worker: _Worker | None = None
        payload: bytes | None = None
        if self.isolation == "process":
            try:
                payload = pickle.dumps(task)
                worker = self._checkout()
            except Exception:
                pass  # a class defined in a closure or __main__: fall back to a thread
        try:
            reply = self._send(task, worker, limit, payload)
            if reply is None:
                return Outcome(task, error=f"timed out after {limit:g} s")
            status, value, _, _ = reply
            if status != "ok":
                return Outcome(task, error=str(value), unavailable=status == "unavailable")
            outcome = Outcome(task, result=value)
            if task.derive:
                # The same worker: it still holds what extract read (structures keep it).
                derived = self._send(replace(task, derive_only=True), worker, limit)
                if derived is None:
                    outcome.notes.append(f"derived files: timed out after {limit:g} s")
                elif derived[0] != "ok":
                    outcome.notes.append(f"derived files: {derived[1]}")
                else:
                    outcome.derived = list(derived[2] or [])
                    outcome.notes.extend(derived[3])
            return outcome
        finally:
            if worker is not None:
                self._checkin(worker)

    def run(self, tasks: Sequence[Task]) -> list[Outcome]:
        """Run the tasks on the workers, in parallel, and return their outcomes in order."""
        if not tasks:
            return []
        if len(tasks) == 1 or self.size == 1:
            return [self._run_one(t) for t in tasks]
        with ThreadPoolExecutor(self.size, thread_name_prefix="extractor") as threads:
            return list(threads.map(self._run_one, tasks))

    def close(self) -> None:
        """Stop every worker."""
        self._closed = True
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
            worker.process.join(1)
            worker.kill()


_DEFAULT: dict[str, ExtractorPool] = {}
_DEFAULT_LOCK = threading.Lock()


def default_pool(isolation: str = "process") -> ExtractorPool:
    """The process-wide pool `run_extractors` uses unless it is given one."""
    with _DEFAULT_LOCK:
        pool = _DEFAULT.get(isolation)
        if pool is None:
            pool = _DEFAULT[isolation] = ExtractorPool(isolation=isolation)
            atexit.register(pool.close)
        return pool
