"""Run tasks: durable async runs and batches, result retrieval with a TTL, and provenance.

Every run is a row of the catalog's `tasks` table. An asynchronous run (`kind = hub.run`) is
written before its 202 is returned, claimed by the worker threads here in batches (up to
`claim_size` rows per transaction, leases as in `jobs/`), executed a frame of calls at a time on
one warm worker, and finished in one bulk update. On start, runs left `running` by a stopped
server go back to `received` (JobQueue.recover); a run tried `max_attempts` times (its worker
crashed or the server stopped each time) fails with that reason — never lost, never hanging.
A synchronous run (`hub.run.sync`) is recorded write-behind: rows are inserted in batches every
`flush_s` by one thread, and reads see rows not yet written. Rows expire `ttl_s` after they end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import (
    ColumnElement,
    Row,
    String,
    Table,
    bindparam,
    delete,
    insert,
    literal,
    select,
    update,
)

from matterhub.catalog import Catalog
from matterhub.catalog.models import JSONDoc, Task
from matterhub.core.errors import BadRequest, InvalidInput, NotFound
from matterhub.core.identity import SYSTEM_IDENTITY, Identity
from matterhub.core.policy import POLICIES
from matterhub.hub.arrays import loaded, stored
from matterhub.hub.runtime.service import (
    RunOutcome,
    RunRequest,
    RunService,
    Target,
    caller_of,
    new_task_id,
)
from matterhub.jobs import JobQueue

__all__ = ["KIND_ASYNC", "KIND_BATCH", "KIND_SYNC", "MAX_WAIT_S", "TaskService"]

log = logging.getLogger(__name__)
KIND_ASYNC, KIND_SYNC, KIND_BATCH = "hub.run", "hub.run.sync", "hub.batch"
_KINDS = (KIND_ASYNC, KIND_SYNC, KIND_BATCH)
_FRAME = 64  # calls per worker frame
# …and for a servable with a batch function, whose frame is answered by one call of it: a claim
# (up to `claim_size`) goes in one frame, one pass of the model, not several.
_FOLDED_FRAME = 256
_MAX_OUTPUT_KEPT = 1 << 20  # a sync run's output is stored with its record up to this size
MAX_WAIT_S = 30.0  # the longest a batch status request may wait for the batch to finish
_KEPT_INPUT_BYTES = 64 << 20  # array inputs kept in memory from submit to run, at most
_TASKS = cast(Table, Task.__table__)  # the table itself, for Core statements


def _now() -> datetime:
    return datetime.now(UTC)


class TaskService:
    """Async submit, batch, status, result and provenance of runs, on the catalog."""

    def __init__(
        self,
        catalog: Catalog,
        runs: RunService,
        jobs: JobQueue,
        *,
        ttl_s: float = 7 * 86400,
        threads: int = 2,
        claim_size: int = 256,
        lease_s: float = 300.0,
        max_attempts: int = 3,
        flush_s: float = 0.05,
    ) -> None:
        self._catalog = catalog
        self.runs = runs
        self._jobs = jobs
        self.ttl = timedelta(seconds=ttl_s)
        self._threads_n = threads
        self._claim_size = claim_size
        self._lease = timedelta(seconds=lease_s)
        self._max_attempts = max_attempts
        self._flush_s = flush_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._claim_lock = threading.Lock()
        self._pending: dict[str, dict[str, Any]] = {}  # sync records not yet written
        self._pending_lock = threading.Lock()
        self._flushed = threading.Event()
        self._targets: dict[str, Target] = {}
        # Array inputs of submitted tasks as they came, until they run (`_keep_inputs`).
        self._kept: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._kept_bytes = 0
        self._kept_lock = threading.Lock()
        # Long-polled batch statuses waiting for their tasks: told each bulk update's task ids.
        self._waiters: set[_Waiter] = set()
        self._waiters_lock = threading.Lock()
        runs.record = self._record_sync

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Re-queue runs a stopped server left running, then start the worker threads."""
        if self._threads:
            return
        self._stop.clear()
        recovered = self._jobs.recover([KIND_ASYNC])
        if recovered:
            log.warning("re-queued %d run task(s) a stopped server left running", recovered)
        loops = [(self._work, f"hub-runs-{i}") for i in range(self._threads_n)]
        loops += [(self._flush_loop, "hub-run-records"), (self._purge_loop, "hub-run-expiry")]
        for target, name in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the frames in progress, write pending records, stop the threads."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=timeout)
        self._threads = []
        self._flush()

    # sync records (write-behind) -------------------------------------------------------------

    def _record_sync(self, outcome: RunOutcome, identity: Identity) -> None:
        now = _now()
        kept = stored(outcome.output)
        result: dict[str, Any] = {"provenance": outcome.provenance}
        if outcome.ok and len(orjson.dumps(kept)) <= _MAX_OUTPUT_KEPT:
            result["output"] = kept
        row = {
            "id": outcome.task_id,
            "kind": KIND_SYNC,
            "status": outcome.status,
            "owner_id": identity.user_id,
            "servable_version_id": outcome.provenance.get("version_id"),
            "payload": {"servable": outcome.provenance.get("servable"), "asynchronous": False},
            "result": result,
            "error": outcome.error,
            "attempts": 1,
            "created_at": now,
            "started_at": now,
            "finished_at": now,
            "expires_at": now + self.ttl,
        }
        with self._pending_lock:
            self._pending[outcome.task_id] = row

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._flush_s):
            try:
                self._flush()
            except Exception:  # the catalog may be briefly busy; the rows stay pending
                log.exception("could not write run records")

    def _flush(self) -> None:
        with self._pending_lock:
            rows = list(self._pending.values())
        if rows:
            # Core executemany, not the ORM: this runs for every synchronous run.
            with self._catalog.transaction() as session:
                session.execute(insert(_TASKS), rows)
            with self._pending_lock:
                for row in rows:
                    self._pending.pop(row["id"], None)

    # async submit ----------------------------------------------------------------------------

    def submit(
        self, identity: Identity, ref: str, requests: list[RunRequest], *, batch: bool = False
    ) -> dict[str, Any]:
        """Record runs (all validated first) and queue them; memoized ones finish at once.

        Returns `{task_ids, batch_id?}`. Raises InvalidInput naming `batch[i].…` for bad input.
        """
        if not requests:
            raise InvalidInput("a batch needs at least one input", field="inputs")
        target = self.runs.resolve(identity, ref, requests[0].version)
        prepared = []
        for i, request in enumerate(requests):
            path = f"batch[{i}]" if batch else "inputs"
            call, hashes = self.runs.prepare(target, request, path)
            prepared.append((request, call, hashes))
        now = _now()
        caller = caller_of(identity)
        ids = [new_task_id() for _ in requests]
        rows = []
        for task_id, (request, call, hashes) in zip(ids, prepared, strict=True):
            rows.append(
                {
                    "id": task_id,
                    "kind": KIND_ASYNC,
                    "status": "received",
                    "owner_id": identity.user_id,
                    "servable_version_id": target.runtime.version_id,
                    "payload": {
                        "servable": ref,
                        "version": target.runtime.version,
                        "inputs": stored(call.inputs),
                        "parameters": call.parameters,
                        "method": call.method,
                        "debug": request.debug,
                        "caller": caller,
                        **hashes,
                    },
                    "attempts": 0,
                    "created_at": now,
                }
            )
        out: dict[str, Any] = {"task_ids": ids}
        self._keep_inputs(ids, [call.inputs for _, call, _ in prepared])
        try:
            with self._catalog.transaction() as session:
                session.execute(insert(_TASKS), rows)  # Core executemany, not the ORM's
                if batch:
                    batch_id = new_task_id()
                    out["batch_id"] = batch_id
                    session.add(
                        Task(
                            id=batch_id,
                            kind=KIND_BATCH,
                            status="success",
                            owner_id=identity.user_id,
                            servable_version_id=target.runtime.version_id,
                            payload={"servable": ref, "task_ids": ids},
                            created_at=now,
                            expires_at=now + 2 * self.ttl,
                        )
                    )
        except BaseException:
            self._kept_inputs(ids)  # not recorded: nothing will run them
            raise
        self._wake.set()
        return out

    def _keep_inputs(self, ids: list[str], inputs: list[Any]) -> None:
        """Keep array inputs as they came until their tasks run (oldest dropped past the
        bound): the worker thread then need not decode them again from the stored form. The
        rows stay what a run reads when an input is not kept (a restart, another server)."""
        with self._kept_lock:
            for task_id, value in zip(ids, inputs, strict=True):
                size = getattr(value, "nbytes", None)
                if not isinstance(size, int) or not hasattr(value, "dtype"):
                    continue  # only arrays: other inputs are read back as cheaply as kept
                self._kept[task_id] = (value, size)
                self._kept_bytes += size
            while self._kept_bytes > _KEPT_INPUT_BYTES and self._kept:
                _, (_, size) = self._kept.popitem(last=False)
                self._kept_bytes -= size

    def _kept_inputs(self, ids: list[str]) -> dict[str, Any]:
        """The kept inputs of these tasks (forgotten here: each task runs once)."""
        found = {}
        with self._kept_lock:
            for task_id in ids:
                kept = self._kept.pop(task_id, None)
                if kept is not None:
                    found[task_id] = kept[0]
                    self._kept_bytes -= kept[1]
        return found

    # the worker ------------------------------------------------------------------------------

    def _claim(self) -> list[Row[Any]]:
        with self._claim_lock:
            return self._jobs.claim_many([KIND_ASYNC], limit=self._claim_size, lease=self._lease)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                rows = self._claim()
            except Exception:
                log.exception("could not claim run tasks")
                rows = []
            if not rows:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                self._execute(rows)
            except Exception:  # never let the thread die; the rows' leases will run out
                log.exception("run tasks failed unexpectedly")

    def _execute(self, rows: list[Row[Any]]) -> None:
        groups: dict[tuple[str, str, bool], list[Row[Any]]] = defaultdict(list)
        updates: list[dict[str, Any]] = []
        kept = self._kept_inputs([row.id for row in rows])
        for row in rows:
            p = row.payload
            if row.attempts > self._max_attempts:
                updates.append(
                    self._failed(
                        row,
                        "Abandoned",
                        (
                            f"gave up after {self._max_attempts} attempts: the worker crashed "
                            "or the server stopped during each"
                        ),
                    )
                )
                continue
            groups[(p["servable"], p["version"], bool(p.get("debug")))].append(row)
        for (ref, version, debug), members in groups.items():
            try:
                target = self._target(ref, version)
            except NotFound as exc:
                updates += [self._failed(r, "NotFound", exc.detail) for r in members]
                continue
            size = _FOLDED_FRAME if not debug and _folds(target) else _FRAME
            for start in range(0, len(members), size):
                chunk = members[start : start + size]
                updates += self._run_chunk(target, chunk, debug, kept)
                if len(updates) >= _FRAME * 4:
                    self._finish(updates)
                    updates = []
        self._finish(updates)

    def _target(self, ref: str, version: str) -> Target:
        key = f"{ref}@{version}"
        target = self._targets.get(key)
        if target is None:
            # Rights were checked when the run was submitted; the version is fixed since.
            spec = self.runs.servables.runtime(SYSTEM_IDENTITY, ref, version=version)
            target = self._targets[key] = self.runs.target(ref, spec)
        return target

    def _run_chunk(
        self, target: Target, chunk: list[Row[Any]], debug: bool, kept: dict[str, Any]
    ) -> list[dict[str, Any]]:
        from matterhub.hub.runtime.base import Call

        calls, hashes = [], []
        for row in chunk:
            p = row.payload
            inputs = kept[row.id] if row.id in kept else loaded(p["inputs"])
            calls.append(Call(inputs, p["parameters"], p.get("method", "run")))
            hashes.append({"input_hash": p["input_hash"], "parameters_hash": p["parameters_hash"]})
        outcomes = self.runs.execute(
            target, calls, hashes, {}, debug=debug, task_ids=[r.id for r in chunk]
        )
        now = _now()
        out = []
        for row, outcome in zip(chunk, outcomes, strict=True):
            outcome.provenance["caller"] = row.payload.get("caller", {})
            started = row.started_at.replace(tzinfo=UTC) if row.started_at else now
            created = row.created_at.replace(tzinfo=UTC) if row.created_at else now
            outcome.provenance["timings"]["queued_s"] = (started - created).total_seconds()
            result: dict[str, Any] = {"provenance": outcome.provenance}
            if outcome.ok:
                result["output"] = stored(outcome.output)
            if debug:
                result["metadata"] = outcome.metadata()
            out.append(
                {
                    "id": row.id,
                    "status": outcome.status,
                    "result": result,
                    "error": outcome.error,
                    "finished_at": now,
                    "expires_at": now + self.ttl,
                    "lease_until": None,
                }
            )
        return out

    def _failed(self, row: Row[Any], kind: str, message: str) -> dict[str, Any]:
        now = _now()
        return {
            "id": row.id,
            "status": "failed",
            "error": {"type": kind, "message": message},
            "finished_at": now,
            "expires_at": now + self.ttl,
            "lease_until": None,
        }

    def _finish(self, updates: list[dict[str, Any]]) -> None:
        if not updates:
            return
        # Core executemany by primary key, one per set of columns (a failure before the run
        # sets no result): the ORM's bulk update cost several times more per row.
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for values in updates:
            shapes[tuple(sorted(values))].append(values)
        with self._catalog.transaction() as session:
            for columns, group in shapes.items():
                statement = update(_TASKS).where(_TASKS.c.id == bindparam("task_id"))
                statement = statement.values(
                    {c: bindparam(c, type_=_TASKS.c[c].type) for c in columns if c != "id"}
                )
                rows = [{c: v[c] for c in columns if c != "id"} for v in group]
                for row, values in zip(rows, group, strict=True):
                    row["task_id"] = values["id"]
                session.execute(statement, rows)
        self._notify([u["id"] for u in updates])

    def _notify(self, finished: list[str]) -> None:
        """Tell waiting batch status requests which tasks have just finished (committed).

        A waiter that has not looked yet keeps the ids and is woken; one that has crosses them
        off its unfinished tasks and is woken only when none is left.
        """
        wake = []
        with self._waiters_lock:
            for waiter in self._waiters:
                if waiter.unfinished is None:
                    waiter.early.update(finished)
                    wake.append(waiter)
                elif waiter.unfinished:
                    waiter.unfinished.difference_update(finished)
                    if not waiter.unfinished:
                        wake.append(waiter)
        for waiter in wake:
            try:
                waiter.loop.call_soon_threadsafe(waiter.event.set)
            except RuntimeError:  # its loop has closed
                with self._waiters_lock:
                    self._waiters.discard(waiter)

    # expiry ----------------------------------------------------------------------------------

    def purge(self) -> int:
        """Delete run records past their expiry; returns how many."""
        with self._catalog.transaction() as session:
            result = session.execute(
                delete(Task).where(Task.kind.in_(_KINDS), Task.expires_at < _now())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def _purge_loop(self) -> None:
        while not self._stop.wait(60.0):
            try:
                self.purge()
                if self.runs.files is not None:  # staged file inputs unused for a TTL
                    self.runs.files.purge(self.ttl.total_seconds())
            except Exception:
                log.exception("could not purge expired run records")

    # reads -----------------------------------------------------------------------------------

    def _row(self, identity: Identity, task_id: str) -> dict[str, Any]:
        with self._pending_lock:
            pending = self._pending.get(task_id)
        if pending is not None:
            row = dict(pending)
        else:
            with self._catalog.transaction() as session:
                task = session.get(Task, task_id)
                if task is None or task.kind not in _KINDS:
                    raise NotFound(f"no task {task_id!r}", field="task_id")
                row = {
                    c: getattr(task, c)
                    for c in (
                        "id",
                        "kind",
                        "status",
                        "owner_id",
                        "payload",
                        "result",
                        "error",
                        "created_at",
                        "started_at",
                        "finished_at",
                        "expires_at",
                    )
                }
        if not POLICIES["run_task"].allows(identity, row):
            raise NotFound(f"no task {task_id!r}", field="task_id")  # never confirm others'
        expires = row.get("expires_at")
        if expires is not None and expires.replace(tzinfo=UTC) < _now():
            raise NotFound(f"task {task_id!r} has expired", field="task_id")
        return row

    def status(self, identity: Identity, task_id: str) -> dict[str, Any]:
        """DLHub's task status: received, running, success or failed (with the exception)."""
        row = self._row(identity, task_id)
        if row["kind"] == KIND_BATCH:
            return self.batch_status(identity, task_id)
        out: dict[str, Any] = {
            "task_id": row["id"],
            "status": row["status"],
            "servable": (row["payload"] or {}).get("servable"),
            "asynchronous": row["kind"] == KIND_ASYNC,
            "created_at": _iso(row["created_at"]),
            "started_at": _iso(row["started_at"]),
            "finished_at": _iso(row["finished_at"]),
        }
        result = row["result"] or {}
        if row["status"] == "success" and "output" in result:
            out["result"] = loaded(result["output"])
        if row["error"]:
            out["exception"] = {k: row["error"].get(k) for k in ("type", "message")}
        if "metadata" in result:
            out["metadata"] = result["metadata"]
        return out

    def provenance(self, identity: Identity, task_id: str) -> dict[str, Any]:
        """What produced a result: version, environment, hashes, parameters, timings, caller."""
        row = self._row(identity, task_id)
        found: dict[str, Any] | None = (row["result"] or {}).get("provenance")
        if found is None:
            raise NotFound(f"task {task_id!r} has not finished", field="task_id")
        return found

    async def wait_batch(self, identity: Identity, batch_id: str, wait_s: float) -> dict[str, Any]:
        """`batch_status` once the batch is done or `wait_s` (≤ MAX_WAIT_S) have passed.

        One look at the tasks' statuses (a `batch_status` without results, the access check
        included) gives the tasks not yet finished; then the bulk updates here report the
        tasks they finish, and the answer — a full `batch_status`, checked again — is read as
        soon as none is left (not on a timer, and without reading every status again at each
        update). Raises BadRequest (400) naming `wait` beyond the bound.
        """
        if not 0 <= wait_s <= MAX_WAIT_S:
            raise BadRequest(f"wait is between 0 and {MAX_WAIT_S:g} seconds", field="wait")
        from matterhub.hub.runtime.base import in_thread

        deadline = time.monotonic() + wait_s
        waiter = _Waiter(asyncio.get_running_loop())
        with self._waiters_lock:  # before the look: tasks that finish during it are told too
            self._waiters.add(waiter)
        try:
            found = await in_thread(self.batch_status, identity, batch_id, results=False)
            if found["done"]:
                return await in_thread(self.batch_status, identity, batch_id)
            with self._waiters_lock:
                waiter.unfinished = {
                    i for i, t in found["tasks"].items() if t["status"] not in _FINAL
                } - waiter.early
                waiter.early = set()
            while True:
                waiter.event.clear()
                with self._waiters_lock:
                    if not waiter.unfinished:
                        break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.event.wait(), left)
            return await in_thread(self.batch_status, identity, batch_id)
        finally:
            with self._waiters_lock:
                self._waiters.discard(waiter)

    def batch_status(
        self, identity: Identity, batch_id: str, *, results: bool = True
    ) -> dict[str, Any]:
        """Counts by status and each task's status (and result when done, with `results`)."""
        row = self._row(identity, batch_id)
        if row["kind"] != KIND_BATCH:
            raise NotFound(f"{batch_id!r} is not a batch", field="batch_id")
        ids: list[str] = row["payload"]["task_ids"]
        found: dict[str, dict[str, Any]] = {}
        with self._catalog.transaction() as session:
            columns = (Task.id, Task.status, self._output_column(), Task.error)
            for start in range(0, len(ids), 900):
                part = ids[start : start + 900]
                if not results:
                    for task_id, status in session.execute(
                        select(Task.id, Task.status).where(Task.id.in_(part))
                    ):
                        found[task_id] = {"status": status}
                    continue
                for task_id, status, output, error in session.execute(
                    select(*columns).where(Task.id.in_(part))
                ):
                    entry: dict[str, Any] = {"status": status}
                    if status == "success":
                        entry["result"] = loaded(output)
                    elif error:
                        entry["exception"] = {k: error.get(k) for k in ("type", "message")}
                    found[task_id] = entry
        counts: dict[str, int] = defaultdict(int)
        for entry in found.values():
            counts[entry["status"]] += 1
        done = counts.get("success", 0) + counts.get("failed", 0)
        return {
            "batch_id": batch_id,
            "servable": row["payload"].get("servable"),
            "total": len(ids),
            "done": done == len(ids),
            "counts": dict(counts),
            "tasks": {i: found.get(i, {"status": "expired"}) for i in ids},
        }

    def _output_column(self) -> ColumnElement[Any]:
        """A task's output alone, not its whole result: a batch's answer need not parse every
        task's provenance. SQLite's `->` gives the output's JSON text as written (SQLAlchemy's
        `result["output"]` there is `json_extract`, which rounds a float to 15 digits);
        PostgreSQL's `->` keeps numbers exactly too. A missing output reads as None."""
        if self._catalog.backend == "sqlite":
            return Task.result.op("->", return_type=JSONDoc)(literal("$.output", String))
        return Task.result["output"]


_FINAL = ("success", "failed")


class _Waiter:
    """A long-polled batch status: its event loop and event, the tasks it still waits for
    (None until its first look) and the tasks reported finished before that look."""

    __slots__ = ("early", "event", "loop", "unfinished")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.event = asyncio.Event()
        self.unfinished: set[str] | None = None
        self.early: set[str] = set()


def _folds(target: Target) -> bool:
    """Whether a method of the target has a batch function or folds rows (the worker folds its
    calls)."""
    methods = target.runtime.document.get("servable", {}).get("methods") or {}
    return any(
        (m.get("method_details") or {}).get("batch_function")
        or (m.get("method_details") or {}).get("fold_rows") is True
        for m in methods.values()
    )


def _iso(value: datetime | None) -> str | None:
    return value.replace(tzinfo=UTC).isoformat() if value is not None else None
