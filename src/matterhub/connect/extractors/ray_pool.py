"""RayExtractorPool: Connect's extractor calls as Ray tasks, with the ExtractorPool contract.

`run(tasks) -> list[Outcome]` exactly as `ExtractorPool.run`, so `registry.run_extractors` (and
the whole Connect pipeline) runs unchanged on the hub's `ray:…` executor: each call is one Ray
task (the extractor, its file group and context are pickled by Ray), all are submitted at once
and Ray spreads them over the cluster's CPUs. Each task gets the context's time limit, counted
from when the pool starts waiting for it (so queued tasks never lose time); a task past its
limit is cancelled with `force=True` (Ray kills its worker process, as ExtractorPool replaces a
hung worker) and reported as timed out. A derive task makes its previews in the same Ray task
right after extracting (the facts it read are still in memory), and a failing preview is a note.
The Ray workers must see the staged files at the same paths (one machine, or a shared disk).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from matterhub.connect.extractors.pool import ExtractorPool, Outcome, Reply, Task, _call

__all__ = ["RayExtractorPool"]


def _extract_on_ray(task: Task) -> tuple[Reply, Reply | None]:
    """The body of one Ray task: extract, then (for a derive task) make the derived files."""
    import warnings

    warnings.simplefilter("ignore")  # libraries warn freely about the files they read
    reply = _call(task)
    derived = _call(replace(task, derive_only=True)) if task.derive and reply[0] == "ok" else None
    return reply, derived


class RayExtractorPool(ExtractorPool):
    """Extractor calls as Ray tasks; `ray:local` starts a Ray here unless one is running."""

    def __init__(self, address: str = "ray:local", *, num_cpus: float = 1.0) -> None:
        super().__init__(1)  # no local processes are ever started (run is Ray's)
        self.address = address
        self.num_cpus = num_cpus
        self._remote: Any = None
        self._lock = threading.Lock()

    def _ray(self) -> Any:
        import ray

        with self._lock:
            if not ray.is_initialized():
                # Usually the hub's RayExecutor started (or joined) Ray already.
                if self.address == "ray:local":
                    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
                else:
                    ray.init(address=self.address, log_to_driver=False)
            if self._remote is None:
                self._remote = ray.remote(num_cpus=self.num_cpus, max_retries=0)(_extract_on_ray)
        return ray

    def run(self, tasks: Sequence[Task]) -> list[Outcome]:
        """Run the tasks as Ray tasks, in parallel, and return their outcomes in order."""
        if not tasks:
            return []
        ray = self._ray()
        refs = [self._remote.remote(task) for task in tasks]
        return [self._outcome(ray, task, ref) for task, ref in zip(tasks, refs, strict=True)]

    @staticmethod
    def _outcome(ray: Any, task: Task, ref: Any) -> Outcome:
        limit = task.context.time_limit_s
        try:
            reply, derived = ray.get(ref, timeout=limit)
        except ray.exceptions.GetTimeoutError:
            ray.cancel(ref, force=True)
            return Outcome(task, error=f"timed out after {limit:g} s")
        except ray.exceptions.RayError as exc:  # the worker died (a crash in a native library)
            return Outcome(task, error=f"the Ray task failed: {type(exc).__name__}: {exc}")
        status, value, _, _ = reply
        if status != "ok":
            return Outcome(task, error=str(value), unavailable=status == "unavailable")
        outcome = Outcome(task, result=value)
        if derived is not None:
            if derived[0] != "ok":
                outcome.notes.append(f"derived files: {derived[1]}")
            else:
                outcome.derived = list(derived[2] or [])
                outcome.notes.extend(derived[3])
        return outcome

    def close(self) -> None:
        """Nothing to stop: Ray belongs to the executor that started it."""
