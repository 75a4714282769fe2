"""RayExecutor: each replica of a servable is a Ray actor that keeps its own warm worker.

An actor (one per replica, scheduled by Ray anywhere in the cluster) owns one sandboxed worker
process started from the servable's own environment, exactly as the local executor does, and
speaks the same framed protocol to it; the actor is the unit Ray places, scales and restarts.
`ray:local` starts a Ray on this machine; `ray://host:port` joins a cluster through Ray Client
(the nodes must see the hub's data folder at the same path, e.g. a shared file system).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matterhub.core.errors import ExecutorError
from matterhub.hub.runtime.base import (
    Call,
    CallResult,
    Executor,
    WorkerCrashed,
    WorkerSpec,
    WorkerTimeout,
)
from matterhub.sandbox import Sandbox

__all__ = ["RayExecutor", "ServableActor"]

log = logging.getLogger(__name__)
_ERRORS: dict[str, type[ExecutorError]] = {
    "WorkerCrashed": WorkerCrashed,
    "WorkerTimeout": WorkerTimeout,
}


class ServableActor:
    """The body of one replica: a one-worker local executor inside a Ray actor."""

    def __init__(
        self, scratch_dir: str, sandbox: dict[str, Any], inputs_dir: str | None = None
    ) -> None:
        from matterhub.hub.runtime.local import LocalExecutor
        from matterhub.sandbox import Sandbox

        self._executor = LocalExecutor(
            Path(scratch_dir),
            Sandbox.from_config(sandbox),
            max_workers=1,
            inputs_dir=Path(inputs_dir) if inputs_dir else None,
        )

    def run(self, spec: WorkerSpec, calls: list[Call], debug: bool) -> dict[str, Any]:
        """Run on the actor's worker; errors come back as values (Ray would wrap them)."""
        try:
            results = self._executor.run(spec, calls, debug=debug)
        except ExecutorError as exc:
            return {"error": type(exc).__name__, "detail": exc.detail}
        return {"results": results}

    def warm(self, spec: WorkerSpec) -> float:
        """Start the worker now; its start-up seconds."""
        return self._executor.warm(spec)

    def close(self) -> None:
        """Stop the worker."""
        self._executor.close()


class RayExecutor(Executor):
    """Servables as Ray actors, `replicas` per version, calls spread round-robin."""

    name = "ray"

    def __init__(
        self,
        url: str,
        *,
        scratch_dir: Path,
        sandbox: Sandbox,
        inputs_dir: Path | None = None,
    ) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ExecutorError("the Ray executor needs Ray: pip install 'matterhub[ray]'") from exc
        self._ray = ray
        if not ray.is_initialized():
            if url == "ray:local":
                ray.init(
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                    runtime_env={"env_vars": {"RAY_DEDUP_LOGS": "0"}},
                )
            else:
                ray.init(address=url, log_to_driver=False)
        self._started_ray = url == "ray:local"
        self._actor_class = ray.remote(num_cpus=0, max_restarts=-1)(ServableActor)
        self._scratch = str(scratch_dir)
        self._sandbox = sandbox
        self._inputs = str(inputs_dir) if inputs_dir else None
        self._actors: dict[str, list[Any]] = {}
        self._turn: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()

    def _replicas(self, spec: WorkerSpec) -> list[Any]:
        with self._lock:
            actors = self._actors.setdefault(spec.key, [])
            while len(actors) < max(1, spec.replicas):
                actors.append(
                    self._actor_class.remote(self._scratch, self._sandbox.config(), self._inputs)
                )
            self._turn.setdefault(spec.key, itertools.count())
            return actors

    def run(
        self, spec: WorkerSpec, calls: Sequence[Call], *, debug: bool = False
    ) -> list[CallResult]:
        """Run on the next replica's actor; the same failures as the local executor."""
        actors = self._replicas(spec)
        actor = actors[next(self._turn[spec.key]) % len(actors)]
        timeout = spec.timeout_s * max(1, len(calls)) + 300.0  # the actor enforces the real one
        try:
            reply = self._ray.get(actor.run.remote(spec, list(calls), debug), timeout=timeout)
        except self._ray.exceptions.RayError as exc:
            raise WorkerCrashed(f"the Ray actor failed: {exc}") from exc
        if "error" in reply:
            raise _ERRORS.get(reply["error"], ExecutorError)(reply["detail"])
        results: list[CallResult] = reply["results"]
        return results

    def warm(self, spec: WorkerSpec) -> float:
        """Start the first replica's worker now."""
        seconds: float = self._ray.get(self._replicas(spec)[0].warm.remote(spec))
        return seconds

    def stats(self) -> dict[str, Any]:
        """Actors per version."""
        with self._lock:
            versions = {k: {"workers": len(v), "replicas": len(v)} for k, v in self._actors.items()}
        return {"executor": self.name, "sandbox": self._sandbox.describe(), "versions": versions}

    def close(self) -> None:
        """Stop every actor (and the local Ray this executor started)."""
        with self._lock:
            actors = [a for group in self._actors.values() for a in group]
            self._actors.clear()
        for actor in actors:
            try:
                self._ray.get(actor.close.remote(), timeout=10)
                self._ray.kill(actor)
            except Exception:  # an actor already gone
                log.debug("could not stop a Ray actor", exc_info=True)
        if self._started_ray and self._ray.is_initialized():
            self._ray.shutdown()
