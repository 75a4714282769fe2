"""Running servables: the executor port, sandboxed local workers, Ray actors, the run service."""

from __future__ import annotations

from pathlib import Path

from matterhub.core.errors import InvalidInput
from matterhub.hub.runtime.base import (
    Call,
    CallResult,
    Executor,
    WorkerCrashed,
    WorkerSpec,
    WorkerTimeout,
)
from matterhub.hub.runtime.local import LocalExecutor
from matterhub.hub.runtime.service import RunLimits, RunOutcome, RunRequest, RunService, Target
from matterhub.sandbox import Sandbox

__all__ = [
    "Call",
    "CallResult",
    "Executor",
    "LocalExecutor",
    "RunLimits",
    "RunOutcome",
    "RunRequest",
    "RunService",
    "Target",
    "WorkerCrashed",
    "WorkerSpec",
    "WorkerTimeout",
    "open_executor",
]


def open_executor(
    url: str,
    *,
    scratch_dir: Path,
    sandbox: Sandbox,
    max_workers: int = 8,
    idle_s: float = 600.0,
    inputs_dir: Path | None = None,
) -> Executor:
    """The executor a URL names: `local`, `ray:local` (a Ray started here) or `ray://host:port`."""
    if url == "local":
        return LocalExecutor(
            scratch_dir,
            sandbox,
            max_workers=max_workers,
            idle_s=idle_s,
            inputs_dir=inputs_dir,
        )
    if url == "ray:local" or url.startswith("ray://"):
        from matterhub.hub.runtime.ray import RayExecutor

        return RayExecutor(url, scratch_dir=scratch_dir, sandbox=sandbox, inputs_dir=inputs_dir)
    raise InvalidInput(
        f"unknown executor {url!r}: use 'local', 'ray:local' or 'ray://host:port'",
        field="executor",
    )
