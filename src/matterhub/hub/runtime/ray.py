"""RayExecutor: each replica of a servable is a Ray actor that keeps its own warm worker.

An actor (one per replica, scheduled by Ray anywhere in the cluster) owns one sandboxed worker
process started from the servable's own environment, exactly as the local executor does, and
speaks the same framed protocol to it; the actor is the unit Ray places, scales and restarts.
`ray:local` starts a Ray on this machine; `ray://host:port` joins a cluster through Ray Client
(the nodes must see the hub's data folder at the same path, e.g. a shared file system).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from matterhub.core.errors import ExecutorError, InvalidInput
from matterhub.hub.runtime.autoscale import Bounds, LatencyWindow, Observation
from matterhub.hub.runtime.base import (
    Call,
    CallResult,
    Executor,
    ExecutorContext,
    WorkerCrashed,
    WorkerSpec,
    WorkerTimeout,
)
from matterhub.hub.runtime.view import PoolView, WorkerView
from matterhub.plugins import PluginSettings
from matterhub.sandbox import Sandbox

__all__ = ["RayExecutor", "RaySettings", "ServableActor"]

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

    @staticmethod
    def _one(spec: WorkerSpec) -> WorkerSpec:
        # An actor is one replica: its own pool never grows (the driver scales actors).
        return dataclasses.replace(spec, replicas=1, scaling=Bounds())

    def run(self, spec: WorkerSpec, calls: list[Call], debug: bool) -> dict[str, Any]:
        """Run on the actor's worker; errors come back as values (Ray would wrap them)."""
        try:
            results = self._executor.run(self._one(spec), calls, debug=debug)
        except ExecutorError as exc:
            return {"error": type(exc).__name__, "detail": exc.detail}
        return {"results": results}

    def warm(self, spec: WorkerSpec) -> float:
        """Start the worker now; its start-up seconds."""
        return self._executor.warm(self._one(spec))

    def info(self, key: str) -> dict[str, Any]:
        """Where this actor runs and its worker's memory and pid."""
        import ray

        views = self._executor.workers([key])
        worker = views[0].workers[0] if views and views[0].workers else None
        return {
            "node": ray.get_runtime_context().get_node_id(),
            "memory_bytes": worker.memory_bytes if worker else None,
            "pid": worker.pid if worker else None,
        }

    def close(self) -> None:
        """Stop the worker."""
        self._executor.close()


@dataclass(eq=False)
class _Replica:
    """One actor and what the driver saw of it."""

    actor: Any
    started_at: float = field(default_factory=time.time)
    ready: bool = False
    outstanding: int = 0  # frames sent and not answered
    calls: int = 0
    latency: LatencyWindow = field(default_factory=lambda: LatencyWindow(512))


class RaySettings(PluginSettings):
    """The Ray executor's settings (`MATTERHUB_EXECUTOR_RAY_<FIELD>`)."""

    namespace: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description=(
            "Ray namespace the hub joins when it connects (unset: an anonymous one), so that "
            "hubs sharing a cluster keep their actors apart."
        ),
    )


class RayExecutor(Executor):
    """Servables as Ray actors: the autoscaler's count per version, calls to the least busy."""

    name = "ray"
    settings_model = RaySettings

    @classmethod
    def check_target(cls, target: str) -> None:
        """`ray:local` or `ray://host:port`."""
        if target != "ray:local" and not target.startswith("ray://"):
            raise InvalidInput(
                f"unknown executor {target!r}: use 'ray:local' or 'ray://host:port'",
                field="executor",
            )

    @classmethod
    def open(cls, target: str, context: ExecutorContext, settings: PluginSettings) -> RayExecutor:
        """A Ray started here (`ray:local`) or the cluster at `ray://host:port`."""
        assert isinstance(settings, RaySettings)
        return cls(
            target,
            scratch_dir=context.scratch_dir,
            sandbox=context.sandbox,
            inputs_dir=context.inputs_dir,
            namespace=settings.namespace,
        )

    def __init__(
        self,
        url: str,
        *,
        scratch_dir: Path,
        sandbox: Sandbox,
        inputs_dir: Path | None = None,
        namespace: str | None = None,
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
                    namespace=namespace,
                )
            else:
                ray.init(address=url, log_to_driver=False, namespace=namespace)
        self._started_ray = url == "ray:local"
        self._actor_class = ray.remote(num_cpus=0, max_restarts=-1)(ServableActor)
        self._scratch = str(scratch_dir)
        self._sandbox = sandbox
        self._inputs = str(inputs_dir) if inputs_dir else None
        self._actors: dict[str, list[_Replica]] = {}
        self._specs: dict[str, WorkerSpec] = {}
        self._targets: dict[str, int] = {}
        self._latency: dict[str, LatencyWindow] = {}
        self._lock = threading.Lock()

    def _new(self, spec: WorkerSpec, *, warm: bool) -> _Replica:
        replica = _Replica(
            self._actor_class.remote(self._scratch, self._sandbox.config(), self._inputs)
        )
        if warm:  # started ahead of calls: load the worker now, in the background
            ref = replica.actor.warm.remote(spec)
            ref.future().add_done_callback(lambda _: setattr(replica, "ready", True))
        return replica

    def _replicas(self, spec: WorkerSpec) -> list[_Replica]:
        with self._lock:
            actors = self._actors.setdefault(spec.key, [])
            self._specs[spec.key] = spec
            self._latency.setdefault(spec.key, LatencyWindow())
            target = self._targets.setdefault(spec.key, self._first_target(spec.scaling))
            bounds = spec.scaling
            if self._scaler is None:  # fixed: as many actors as the bounds allow
                target = bounds.max_replicas
            target = self._targets[spec.key] = max(
                bounds.min_replicas, min(target, max(1, bounds.max_replicas)), 1
            )
            while len(actors) < target:
                # the first one loads with its first call unless it is to be kept warm
                warm = len(actors) > 0 or bounds.min_replicas > 0
                actors.append(self._new(spec, warm=warm))
            return list(actors)

    def run(
        self, spec: WorkerSpec, calls: Sequence[Call], *, debug: bool = False
    ) -> list[CallResult]:
        """Run on the least busy replica's actor; the same failures as the local executor."""
        began = time.perf_counter()
        with self._lock:
            known = self._actors.get(spec.key)
            replica = min(known, key=lambda r: r.outstanding) if known else None
            if replica is not None:
                replica.outstanding += 1
                self._specs[spec.key] = spec
        if replica is None:
            replicas = self._replicas(spec)
            with self._lock:
                replica = min(replicas, key=lambda r: r.outstanding)
                replica.outstanding += 1
        timeout = spec.timeout_s * max(1, len(calls)) + 300.0  # the actor enforces the real one
        try:
            pending = replica.actor.run.remote(spec, list(calls), debug)
            reply = self._ray.get(pending, timeout=timeout)
        except self._ray.exceptions.RayError as exc:
            raise WorkerCrashed(f"the Ray actor failed: {exc}") from exc
        finally:
            with self._lock:
                replica.outstanding -= 1
        replica.ready = True
        took = (time.perf_counter() - began) * 1000.0
        replica.calls += len(calls)
        for _ in range(min(len(calls), 64)):
            replica.latency.add(took)
            self._latency[spec.key].add(took)
        if "error" in reply:
            raise _ERRORS.get(reply["error"], ExecutorError)(reply["detail"])
        results: list[CallResult] = reply["results"]
        return results

    def warm(self, spec: WorkerSpec) -> float:
        """Start the first replica's worker now."""
        replica = self._replicas(spec)[0]
        seconds: float = self._ray.get(replica.actor.warm.remote(spec))
        replica.ready = True
        return seconds

    # scaling ---------------------------------------------------------------------------------

    def observe(self) -> dict[str, tuple[Bounds, Observation]]:
        """Per version: bounds, actors, frames running and waiting inside actors."""
        seen = {}
        with self._lock:
            for key, actors in self._actors.items():
                busy = sum(1 for r in actors if r.outstanding)
                waiting = sum(r.outstanding for r in actors) - busy
                p50, p99 = self._latency[key].percentiles()
                seen[key] = (
                    self._specs[key].scaling,
                    Observation(self._targets[key], busy, waiting, p50, p99),
                )
        return seen

    def resize(self, key: str, replicas: int) -> None:
        """Create actors up to `replicas` (warming each) or stop idle ones past it."""
        retired: list[_Replica] = []
        with self._lock:
            spec = self._specs.get(key)
            if spec is None:
                return
            bounds = spec.scaling
            target = max(bounds.min_replicas, min(replicas, bounds.max_replicas))
            self._targets[key] = max(1, target)
            actors = self._actors[key]
            while len(actors) < self._targets[key]:
                actors.append(self._new(spec, warm=True))
            for replica in sorted(actors, key=lambda r: r.outstanding):
                if len(actors) <= self._targets[key] or replica.outstanding:
                    break
                actors.remove(replica)
                retired.append(replica)
        self._stop(retired)

    def apply(self, spec: WorkerSpec) -> None:
        """New bounds for `spec`'s actors now (min_replicas are created and warmed)."""
        with self._lock:
            self._specs[spec.key] = spec
            present = spec.key in self._actors
        if not present:
            self._replicas(spec)
            return
        fixed = self._scaler is None
        self.resize(
            spec.key, spec.scaling.max_replicas if fixed else self._targets.get(spec.key, 1)
        )

    def workers(self, keys: Sequence[str]) -> list[PoolView]:
        """Each version's actors: state, calls, latency, and node, memory, pid from the actor."""
        views = []
        for key in keys:
            with self._lock:
                if key not in self._actors:
                    continue
                actors = list(self._actors[key])
                spec = self._specs[key]
                target = self._targets[key]
            infos: list[dict[str, Any]] = []
            for replica in actors:
                try:
                    infos.append(self._ray.get(replica.actor.info.remote(key), timeout=10))
                except Exception:  # an actor busy past the wait or gone: shown without them
                    infos.append({})
            rows = []
            for index, (replica, info) in enumerate(zip(actors, infos, strict=True)):
                p50, p99 = replica.latency.percentiles(window_s=None)
                state = "busy" if replica.outstanding else "idle" if replica.ready else "starting"
                rows.append(
                    WorkerView(
                        id=f"actor-{index}",
                        state=state,
                        calls=replica.calls,
                        p50_ms=p50,
                        p99_ms=p99,
                        memory_bytes=info.get("memory_bytes"),
                        pid=info.get("pid"),
                        started_at=replica.started_at,
                        node=info.get("node"),
                    )
                )
            busy = sum(1 for r in actors if r.outstanding)
            p50, p99 = self._latency[key].percentiles()
            views.append(
                PoolView(
                    version_id=key,
                    replicas=len(actors),
                    target=target,
                    in_flight=busy,
                    queue_depth=sum(r.outstanding for r in actors) - busy,
                    bounds=spec.scaling.public(),
                    p50_ms=p50,
                    p99_ms=p99,
                    workers=rows,
                )
            )
        return views

    def stats(self) -> dict[str, Any]:
        """Actors per version."""
        with self._lock:
            versions = {
                k: {"workers": len(v), "replicas": len(v), "target": self._targets.get(k)}
                for k, v in self._actors.items()
            }
        return {"executor": self.name, "sandbox": self._sandbox.describe(), "versions": versions}

    def _stop(self, replicas: list[_Replica]) -> None:
        for replica in replicas:
            try:
                self._ray.get(replica.actor.close.remote(), timeout=10)
                self._ray.kill(replica.actor)
            except Exception:  # an actor already gone
                log.debug("could not stop a Ray actor", exc_info=True)

    def close(self) -> None:
        """Stop every actor (and the local Ray this executor started)."""
        self._stop_scaling()
        with self._lock:
            actors = [a for group in self._actors.values() for a in group]
            self._actors.clear()
        self._stop(actors)
        if self._started_ray and self._ray.is_initialized():
            self._ray.shutdown()
