"""Running servables: the executor port, sandboxed local workers, Ray actors, the run service.

Executors are opened by `bootstrap` from the `matterhub.executors` entry points.
"""

from __future__ import annotations

from matterhub.hub.runtime.base import (
    ENTRY_POINT_GROUP,
    Call,
    CallResult,
    Executor,
    ExecutorContext,
    WorkerCrashed,
    WorkerSpec,
    WorkerTimeout,
)
from matterhub.hub.runtime.local import LocalExecutor
from matterhub.hub.runtime.service import RunLimits, RunOutcome, RunRequest, RunService, Target

__all__ = [
    "ENTRY_POINT_GROUP",
    "Call",
    "CallResult",
    "Executor",
    "ExecutorContext",
    "LocalExecutor",
    "RunLimits",
    "RunOutcome",
    "RunRequest",
    "RunService",
    "Target",
    "WorkerCrashed",
    "WorkerSpec",
    "WorkerTimeout",
]
