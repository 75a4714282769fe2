"""The worker loop: threads that claim jobs of given kinds and run their handlers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from matterhub.jobs.queue import Job, JobQueue

__all__ = ["Handler", "JobWorker"]

log = logging.getLogger(__name__)

# A handler returns the job's result (or None); raising fails the job with the exception.
Handler = Callable[[Job], dict[str, Any] | None]


class JobWorker:
    """Runs jobs of the kinds it has handlers for, in `threads` threads, until stopped."""

    def __init__(
        self,
        queue: JobQueue,
        handlers: Mapping[str, Handler],
        *,
        name: str = "jobs",
        threads: int = 1,
        poll_s: float = 2.0,
        heartbeat_s: float = 30.0,
    ) -> None:
        self._queue = queue
        self._handlers = dict(handlers)
        self._name = name
        self._count = threads
        self._poll = poll_s
        self._heartbeat = heartbeat_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        """Put jobs a stopped process left running back in the queue, then start the threads."""
        if self._threads:
            return
        self._stopping.clear()
        self._queue.recover(list(self._handlers))
        for number in range(self._count):
            thread = threading.Thread(target=self._loop, name=f"{self._name}-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        beat = threading.Thread(target=self._beat, name=f"{self._name}-lease", daemon=True)
        beat.start()
        self._threads.append(beat)

    def notify(self) -> None:
        """A job was enqueued: wake an idle thread now instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 120.0) -> None:
        """Let running jobs finish, then stop every thread."""
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=timeout)
        self._threads = []

    def _loop(self) -> None:
        kinds = list(self._handlers)
        while not self._stopping.is_set():
            try:
                job = self._queue.claim(kinds)
            except Exception:  # the catalog may be briefly unavailable; try again later
                log.exception("%s: could not claim a job", self._name)
                job = None
            if job is None:
                self._wake.wait(self._poll)
                self._wake.clear()
                continue
            self._run(job)

    def _run(self, job: Job) -> None:
        with self._lock:
            self._running.add(job.id)
        try:
            result = self._handlers[job.kind](job)
        except Exception as exc:  # never let a thread die; the job records what failed
            log.exception("%s: job %s (%s) failed", self._name, job.id, job.kind)
            self._queue.fail(job.id, {"type": type(exc).__name__, "message": str(exc)})
        else:
            self._queue.complete(job.id, result)
        finally:
            with self._lock:
                self._running.discard(job.id)

    def _beat(self) -> None:
        while not self._stopping.wait(self._heartbeat):
            with self._lock:
                running = list(self._running)
            try:
                self._queue.renew(running)
            except Exception:
                log.exception("%s: could not renew leases", self._name)
