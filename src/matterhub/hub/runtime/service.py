"""RunService: resolve a servable the caller may run, validate, memoize, execute, record.

A run merges the caller's parameters over the method's declared defaults, validates the input
against the declared type (422 naming the path), answers from the result cache when it can
(never touching a worker), else runs on the executor's warm worker, and records provenance for
every call. The resolved version and the caller's right to run it are kept for `resolve_ttl_s`
(default 2 s), so a burst of runs costs one catalog lookup; a version going live (the only way
a servable's rights change) drops them at once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matterhub.core.errors import ExecutorError, InvalidInput
from matterhub.core.identity import SYSTEM_IDENTITY, Identity
from matterhub.core.servables import is_pipeline
from matterhub.core.types import validate
from matterhub.hub.cache import ResultCache, digest, measure, memo_key
from matterhub.hub.inputs import InputFiles, has_files
from matterhub.hub.runtime.autoscale import ScalingDefaults
from matterhub.hub.runtime.base import Call, CallResult, Executor, WorkerSpec, in_thread
from matterhub.hub.service import RuntimeSpec, ServableService
from matterhub.sandbox import Limits

if TYPE_CHECKING:
    from matterhub.hub.pipelines import PipelineStep

__all__ = ["RunLimits", "RunOutcome", "RunRequest", "RunService", "Target"]


@dataclass(frozen=True, slots=True)
class RunLimits:
    """The hub's maxima: a servable's `servable.options` may ask for less, never more."""

    worker: Limits = field(default_factory=Limits)
    scaling: ScalingDefaults = field(default_factory=ScalingDefaults)

    @property
    def max_replicas(self) -> int:
        """The hub's cap on replicas per version."""
        return self.scaling.max_replicas_cap


@dataclass(slots=True)
class RunRequest:
    """What a caller sends: DLHub's `{inputs, parameters, debug}` plus `validate` and `version`."""

    inputs: Any
    parameters: dict[str, Any] | None = None
    debug: bool = False
    validate: bool = True
    version: str | None = None
    method: str = "run"
    uploads: dict[str, Path] = field(default_factory=dict)  # multipart parts, by name


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved ready version: its runtime, its worker spec and what its document says."""

    ref: str
    runtime: RuntimeSpec
    worker: WorkerSpec
    memoize: bool
    steps: tuple[PipelineStep, ...] = ()  # a pipeline's resolved steps (hub/pipelines.py)

    @property
    def memo_id(self) -> str:
        """What results are memoized under: the version (and a pipeline's step versions)."""
        if not self.steps:
            return self.runtime.version_id
        return self.runtime.version_id + "+" + digest([s.target.memo_id for s in self.steps])

    def method(self, name: str) -> dict[str, Any]:
        """The document's block for one method."""
        methods: dict[str, Any] = self.runtime.document["servable"]["methods"]
        if name not in methods:
            raise InvalidInput(f"{self.ref} has no method {name!r}", field="method")
        block: dict[str, Any] = methods[name]
        return block


@dataclass(slots=True)
class RunOutcome:
    """The answer to one run: output or error, whether memoized, timings and provenance."""

    task_id: str
    ok: bool
    output: Any = None
    error: dict[str, str] | None = None
    cached: bool = False
    stdout: str = ""
    stderr: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """DLHub's final task status."""
        return "success" if self.ok else "failed"

    def metadata(self) -> dict[str, Any]:
        """DLHub's debug metadata: success, stdout, stderr, exc, error_message, wall_time."""
        timings = self.provenance.get("timings", {})
        meta: dict[str, Any] = {
            "success": self.ok,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "exc": (self.error or {}).get("type"),
            "error_message": (self.error or {}).get("message"),
            "wall_time": timings.get("run_s", 0.0),
            "total_time": timings.get("total_s", 0.0),
            "cached": self.cached,
            "task_id": self.task_id,
        }
        if "steps" in self.provenance:
            meta["steps"] = self.provenance["steps"]
        return meta


def new_task_id() -> str:
    """A fresh task id (the same form as catalog ids)."""
    return str(uuid.uuid4())


def caller_of(identity: Identity) -> dict[str, Any]:
    """Who ran it, for provenance."""
    return {"user_id": identity.user_id, "username": identity.username}


class RunService:
    """Runs servables for callers; the run API, async tasks and pipelines all go through it."""

    def __init__(
        self,
        servables: ServableService,
        executor: Executor,
        cache: ResultCache,
        *,
        limits: RunLimits = RunLimits(),
        resolve_ttl_s: float = 2.0,
        files: InputFiles | None = None,
    ) -> None:
        self.servables = servables
        self.files = files  # where file inputs (uploads, URLs) are staged; None: not accepted
        self.executor = executor
        self.cache = cache
        self.limits = limits
        self.resolve_ttl_s = resolve_ttl_s
        self._resolved: dict[tuple[Any, ...], tuple[float, int, Target]] = {}
        self._lock = threading.Lock()
        self.record: Any = None  # set by TaskService: called with each finished outcome

    # resolve ---------------------------------------------------------------------------------

    def resolve(self, identity: Identity, ref: str, version: str | None = None) -> Target:
        """The ready version `identity` may run (404 unseen, 403 seen but not runnable)."""
        hit = self.kept(identity, ref, version)
        if hit is not None:
            return hit
        generation = self.servables.generation
        spec = self.servables.runtime(identity, ref, version=version)
        target = self.target(ref, spec, identity)
        with self._lock:
            if len(self._resolved) > 10_000:
                self._resolved.clear()
            key = (identity.user_id, identity.group_ids, identity.is_admin, ref, version)
            self._resolved[key] = (time.monotonic() + self.resolve_ttl_s, generation, target)
        return target

    def refresh(self) -> None:
        """Forget every kept target (a servable's bounds changed: the next run reads them)."""
        with self._lock:
            self._resolved.clear()

    def kept(self, identity: Identity, ref: str, version: str | None = None) -> Target | None:
        """The target `resolve` kept for this caller, if still fresh (no catalog read).

        Kept for `resolve_ttl_s`, and dropped as soon as any version goes live (which is also
        when a servable's rights change), so a new version or a revoked right applies to the
        very next run. Errors (404, 403) are never kept.
        """
        key = (identity.user_id, identity.group_ids, identity.is_admin, ref, version)
        hit = self._resolved.get(key)
        if hit is None or hit[0] <= time.monotonic() or hit[1] != self.servables.generation:
            return None
        return hit[2]

    def target(self, ref: str, spec: RuntimeSpec, identity: Identity = SYSTEM_IDENTITY) -> Target:
        """The worker spec for a runtime: limits from `servable.options` within the hub's.

        A pipeline's steps are resolved as `identity` (who must be allowed to run each).
        """
        options = spec.document["servable"].get("options") or {}
        methods = spec.document["servable"].get("methods") or {}
        limits = self.limits
        scaling = limits.scaling.bounds(options, spec.scaling)
        worker = WorkerSpec(
            key=spec.version_id,
            python=spec.python,
            shim=spec.shim,
            files_dir=spec.files_dir,
            document_path=spec.document_path,
            env_dir=spec.python.parent.parent,
            replicas=scaling.max_replicas,
            limits=limits.worker.clamp(options),
            threads=max(1, int(options.get("threads", 1))),
            files=any(has_files(m["input"]) for m in methods.values()),
            scaling=scaling,
        )
        memoize = bool(options.get("memoize", True))
        if is_pipeline(spec.document):
            from matterhub.hub.pipelines import resolve_steps

            steps = resolve_steps(self, identity, spec.document)
            memoize = memoize and all(s.target.memoize for s in steps)
            return Target(ref, spec, worker, memoize, steps)
        return Target(ref, spec, worker, memoize=memoize)

    # prepare ---------------------------------------------------------------------------------

    def prepare(
        self, target: Target, request: RunRequest, path: str = "inputs"
    ) -> tuple[Call, dict[str, Any]]:
        """The call to make (parameters merged over defaults) and its hashes; validates.

        File inputs given as uploads or URLs are staged here (hub/inputs.py), before hashing.
        """
        method = target.method(request.method)
        if request.parameters is not None and not isinstance(request.parameters, dict):
            raise InvalidInput("parameters must be an object", field="parameters")
        parameters = {**(method.get("parameters") or {}), **(request.parameters or {})}
        if request.validate:
            validate(request.inputs, method["input"], path)
        inputs = request.inputs
        if target.worker.files:
            if self.files is None:
                raise InvalidInput("this hub does not accept file inputs", field=path)
            inputs = self.files.resolve(inputs, method["input"], request.uploads, path)
        try:
            hashes = {"input_hash": digest(inputs), "parameters_hash": digest(parameters)}
        except TypeError as exc:
            raise InvalidInput(f"inputs are not JSON: {exc}", field=path) from exc
        return Call(inputs, parameters, request.method), hashes

    # run -------------------------------------------------------------------------------------

    def run(self, identity: Identity, ref: str, request: RunRequest) -> RunOutcome:
        """Run once, synchronously; a servable's exception is a failed outcome, not a raise."""
        received = time.perf_counter()
        target = self.resolve(identity, ref, request.version)
        call, hashes = self.prepare(target, request)
        outcome = self.execute(
            target, [call], [hashes], caller_of(identity), debug=request.debug, since=received
        )[0]
        if self.record is not None:
            self.record(outcome, identity)
        return outcome

    def execute(
        self,
        target: Target,
        calls: Sequence[Call],
        hashes: Sequence[dict[str, Any]],
        caller: dict[str, Any],
        *,
        debug: bool = False,
        task_ids: Sequence[str] | None = None,
        since: float | None = None,
    ) -> list[RunOutcome]:
        """Run calls of one target: cache hits answered at once, the rest in one worker frame."""
        started = since if since is not None else time.perf_counter()
        ids = list(task_ids) if task_ids is not None else [new_task_id() for _ in calls]
        outcomes, todo = self._hits(target, calls, hashes, caller, debug, ids, started)
        if todo:
            steps: list[list[dict[str, Any]]] = []
            if target.steps:
                from matterhub.hub.pipelines import run_calls

                results, steps = run_calls(self, target, [calls[i] for i in todo], caller, debug)
            else:
                results = self._results(target, [calls[i] for i in todo], debug)
            self._complete(target, calls, hashes, caller, ids, started, outcomes, todo, results)
            for j, i in enumerate(todo if steps else ()):
                outcomes[i].provenance["steps"] = steps[j]  # type: ignore[union-attr]
        return [o for o in outcomes if o is not None]

    async def run_async(self, identity: Identity, ref: str, request: RunRequest) -> RunOutcome:
        """`run`, awaited on the event loop without a thread while nothing blocks.

        The target must be kept (`kept`), a plain servable (no pipeline, no file inputs);
        otherwise — the first run after a change, say — `run` goes to a thread. The caller
        keeps inputs small: validation and hashing happen on the loop.
        """
        received = time.perf_counter()
        target = self.kept(identity, ref, request.version)
        if target is None or target.steps or target.worker.files or request.uploads:
            return await in_thread(self.run, identity, ref, request)
        call, hashes = self.prepare(target, request)
        caller, ids = caller_of(identity), [new_task_id()]
        outcomes, todo = self._hits(target, [call], [hashes], caller, request.debug, ids, received)
        if todo:
            try:
                results = await self.executor.run_async(target.worker, [call], debug=request.debug)
            except ExecutorError as exc:
                results = [CallResult.failure(type(exc).__name__, exc.detail)]
            self._complete(target, [call], [hashes], caller, ids, received, outcomes, todo, results)
        outcome = outcomes[0]
        assert outcome is not None
        if self.record is not None:
            self.record(outcome, identity)
        return outcome

    def _hits(
        self,
        target: Target,
        calls: Sequence[Call],
        hashes: Sequence[dict[str, Any]],
        caller: dict[str, Any],
        debug: bool,
        ids: list[str],
        started: float,
    ) -> tuple[list[RunOutcome | None], list[int]]:
        """Outcomes answered from the result cache, and the indices still to run."""
        outcomes: list[RunOutcome | None] = [None] * len(calls)
        todo: list[int] = []
        for i, h in enumerate(hashes):
            hit = None
            if target.memoize and not debug:
                key = memo_key(target.memo_id, h["input_hash"], h["parameters_hash"])
                hit = self.cache.get(key)
            if hit is None:
                todo.append(i)
                continue
            outcomes[i] = RunOutcome(ids[i], True, hit.output, cached=True)
            self._provenance(outcomes[i], target, calls[i], h, hit.output_hash, caller, started)
        return outcomes, todo

    def _complete(
        self,
        target: Target,
        calls: Sequence[Call],
        hashes: Sequence[dict[str, Any]],
        caller: dict[str, Any],
        ids: list[str],
        started: float,
        outcomes: list[RunOutcome | None],
        todo: list[int],
        results: Sequence[CallResult],
    ) -> None:
        """Fill in the outcomes of the calls that ran (memoizing and recording provenance)."""
        for i, result in zip(todo, results, strict=True):
            outcomes[i], output_hash = self._finish(target, ids[i], hashes[i], result)
            self._provenance(
                outcomes[i], target, calls[i], hashes[i], output_hash, caller, started, result
            )

    def _results(self, target: Target, calls: list[Call], debug: bool) -> list[CallResult]:
        try:
            return self.executor.run(target.worker, calls, debug=debug)
        except ExecutorError as exc:
            # The worker crashed, overran or could not start: every call of the frame fails
            # with the reason; the pool replaces the worker on the next call.
            failure = CallResult.failure(type(exc).__name__, exc.detail)
            return [failure for _ in calls]

    def _finish(
        self, target: Target, task_id: str, hashes: dict[str, Any], result: CallResult
    ) -> tuple[RunOutcome, str | None]:
        """The outcome of a call that ran, memoized; and its output hash when one was made
        (provenance then takes it rather than hashing the output again)."""
        if not result.ok:
            error = {"type": result.error_type or "Error", "message": result.error or ""}
            if result.traceback:
                error["traceback"] = result.traceback
            failed = RunOutcome(
                task_id, False, None, error, stdout=result.stdout, stderr=result.stderr
            )
            return failed, None
        outcome = RunOutcome(
            task_id, True, result.output, stdout=result.stdout, stderr=result.stderr
        )
        if not target.memoize:
            return outcome, None
        output_hash, size = measure(result.output)
        key = memo_key(target.memo_id, hashes["input_hash"], hashes["parameters_hash"])
        self.cache.put(key, result.output, output_hash, size, task_id)
        return outcome, output_hash

    def _provenance(
        self,
        outcome: RunOutcome | None,
        target: Target,
        call: Call,
        hashes: dict[str, Any],
        output_hash: str | None,
        caller: dict[str, Any],
        started: float,
        result: CallResult | None = None,
    ) -> None:
        assert outcome is not None
        if output_hash is None and outcome.ok:
            output_hash = digest(outcome.output)
        spec = target.runtime
        outcome.provenance = {
            "task_id": outcome.task_id,
            "servable": target.ref,
            "version": spec.version,
            "version_id": spec.version_id,
            "environment_hash": spec.environment_hash,
            "method": call.method,
            "input_hash": hashes["input_hash"],
            "parameters": call.parameters,
            "output_hash": output_hash,
            "status": outcome.status,
            "cached": outcome.cached,
            "executor": self.executor.name,
            "limits": target.worker.limits.public(),
            "caller": caller,
            "timings": {
                "run_s": result.wall_s if result else 0.0,
                "total_s": time.perf_counter() - started,
            },
            "finished_at": time.time(),
        }
        if result is not None and result.batched > 1:
            # run_s is then this call's share of one batch-function call of `batched` inputs.
            outcome.provenance["timings"]["batched"] = result.batched
