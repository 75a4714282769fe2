"""The executor port: what a runtime needs to start a servable and what a call returns.

Executors register under the `matterhub.executors` entry points (`local` and `ray` too); the
`executor` setting names one by the part before its first ':' (`ray://head:10001` → `ray`).
"""

from __future__ import annotations

import asyncio
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from matterhub.core.errors import ExecutorError
from matterhub.hub.runtime.autoscale import Autoscaler, Bounds, Observation, ScaleLoop
from matterhub.hub.runtime.view import PoolView
from matterhub.plugins import NoSettings, PluginSettings
from matterhub.sandbox import Limits, Sandbox

__all__ = [
    "ENTRY_POINT_GROUP",
    "Call",
    "CallResult",
    "Executor",
    "ExecutorContext",
    "WorkerCrashed",
    "WorkerSpec",
    "WorkerTimeout",
    "in_thread",
]


ENTRY_POINT_GROUP = "matterhub.executors"

# Blocking waits of the event-loop run path (a busy worker, a cold start, a first lookup): a pool
# of their own, so they never queue behind (or starve) the loop's default executor.
_THREADS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="hub-run")
T = TypeVar("T")


async def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`function(*args, **kwargs)` in the run path's thread pool, awaited."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_THREADS, functools.partial(function, *args, **kwargs))


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """One ready servable version as an executor starts it: where it lives and its limits."""

    key: str  # the version id: one pool of warm workers per version
    python: Path
    shim: Path
    files_dir: Path
    document_path: Path
    env_dir: Path
    replicas: int = 1  # at most (the pool's current count is the autoscaler's)
    limits: Limits = field(default_factory=Limits)  # what applied: the request within the maxima
    threads: int = 1
    files: bool = False  # the input declares a file: staged files are copied into the scratch
    scaling: Bounds = field(default_factory=Bounds)  # replica bounds and targets

    @property
    def timeout_s(self) -> float:
        """Wall seconds per call (the host kills the worker past it)."""
        return self.limits.wall_s

    @property
    def memory_mb(self) -> int:
        """Address-space limit of the worker, MiB."""
        return self.limits.memory_mb

    @property
    def cpu_s(self) -> float:
        """CPU seconds per call."""
        return self.limits.cpu_s


@dataclass(frozen=True, slots=True)
class Call:
    """One invocation: the inputs and the merged parameters."""

    inputs: Any
    parameters: dict[str, Any] = field(default_factory=dict)
    method: str = "run"


@dataclass(slots=True)
class CallResult:
    """What one call returned: the output, or the servable's exception type and message."""

    ok: bool
    output: Any = None
    error_type: str | None = None
    error: str | None = None
    traceback: str | None = None
    wall_s: float = 0.0  # with `batched` > 1, this call's share of the batch function's time
    stdout: str = ""
    stderr: str = ""
    batched: int = 1  # how many calls one batch-function call answered together

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> CallResult:
        """From the worker's JSON reply."""
        return cls(
            ok=bool(reply.get("ok")),
            output=reply.get("output"),
            error_type=reply.get("error_type"),
            error=reply.get("error"),
            traceback=reply.get("traceback"),
            wall_s=float(reply.get("wall_s") or 0.0),
            stdout=reply.get("stdout") or "",
            stderr=reply.get("stderr") or "",
            batched=int(reply.get("batched") or 1),
        )

    @classmethod
    def failure(cls, error_type: str, message: str) -> CallResult:
        """A call that failed outside the servable (crash, timeout, sandbox)."""
        return cls(ok=False, error_type=error_type, error=message)


class WorkerCrashed(ExecutorError):
    """A worker died during a call (crash, memory or CPU limit); it has been replaced."""

    code = "worker_crashed"


class WorkerTimeout(ExecutorError):
    """A call ran past its timeout; the worker was killed and will be replaced."""

    code = "worker_timeout"


@dataclass(frozen=True, slots=True)
class ExecutorContext:
    """What the hub gives every executor it opens (plain values: executors never see Settings)."""

    scratch_dir: Path  # per-call scratch folders are made under it
    sandbox: Sandbox  # the one sandbox every execution of servable code goes through
    inputs_dir: Path | None = None  # staged file inputs (hub/inputs.py)
    max_workers: int = 8  # warm workers kept at most (`hub_max_workers`)
    idle_s: float = 600.0  # seconds an idle worker stays warm (`hub_worker_idle_s`)


class Executor(ABC):
    """Runs calls of ready servable versions on warm workers (local processes or Ray actors)."""

    name = "executor"
    settings_model: ClassVar[type[PluginSettings]] = NoSettings
    """The executor's own settings (`MATTERHUB_EXECUTOR_<NAME>_<FIELD>`, or `executor_options`)."""

    @classmethod
    def check_target(cls, target: str) -> None:
        """Refuse an `executor` setting this executor does not understand, before the hub opens
        anything (InvalidInput, field `executor`); by default every target is accepted."""
        return None

    @classmethod
    @abstractmethod
    def open(cls, target: str, context: ExecutorContext, settings: PluginSettings) -> Executor:
        """The executor for the `executor` setting `target` (`local`, `ray://head:10001`, …).

        `settings` is an instance of `settings_model`; `check_target(target)` has passed.

        Raises:
            ExecutorError: the executor's engine cannot be reached or started.
        """

    @abstractmethod
    def run(
        self, spec: WorkerSpec, calls: Sequence[Call], *, debug: bool = False
    ) -> list[CallResult]:
        """Run `calls` in order on one warm worker of `spec` and return one result each.

        A servable's own exception is a failed `CallResult`, and the worker stays warm.

        Raises:
            WorkerCrashed: the worker died (it is replaced on the next call).
            WorkerTimeout: the batch ran past `spec.timeout_s` per call (the worker is killed).
            ExecutorError: the worker could not be started (load failed, environment missing).
        """

    async def run_async(
        self, spec: WorkerSpec, calls: Sequence[Call], *, debug: bool = False
    ) -> list[CallResult]:
        """`run`, awaited from an event loop; by default `run` in a worker thread."""
        return await in_thread(self.run, spec, calls, debug=debug)

    def warm(self, spec: WorkerSpec) -> float:
        """Start one worker of `spec` if none is warm; returns the seconds it took."""
        self.run(spec, [])
        return 0.0

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Workers per servable version, for the health page and tests."""

    # scaling (autoscale.py) --------------------------------------------------------------------

    _scaler: ScaleLoop | None = None

    def observe(self) -> dict[str, tuple[Bounds, Observation]]:
        """Per version with a pool: its bounds and what it is doing now."""
        return {}

    def resize(self, key: str, replicas: int) -> None:
        """Give version `key`'s pool `replicas` replicas (started or retired in the background)."""
        return None

    def apply(self, spec: WorkerSpec) -> None:
        """Take `spec`'s bounds for its pool now, creating the pool (min_replicas start warm)."""
        return None

    def workers(self, keys: Sequence[str]) -> list[PoolView]:
        """The pools of versions `keys` that exist, with their workers."""
        return []

    def autoscale(self, policy: Autoscaler, *, interval_s: float) -> None:
        """Start scaling pools by `policy` every `interval_s` (stopped by `close`)."""
        if self._scaler is None:
            self._scaler = ScaleLoop(
                self.observe, self.resize, policy, interval_s=interval_s
            ).start()

    def _first_target(self, bounds: Bounds) -> int:
        """A new pool's replica count: its minimum with the autoscaler, else its maximum."""
        return max(1, bounds.min_replicas if self._scaler is not None else bounds.max_replicas)

    def _stop_scaling(self) -> None:
        if self._scaler is not None:
            self._scaler.stop()
            self._scaler = None

    @abstractmethod
    def close(self) -> None:
        """Stop every worker."""
