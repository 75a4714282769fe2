"""The ingest worker: applies recorded search writes to each index in batches, and replays them.

Writes reach it already recorded in the catalog (`search_tasks`). One thread takes queued tasks,
groups them by index, applies each group and commits once (tantivy allows a single writer per
index). A batch that fails is retried task by task, so one bad task does not sink the others.
`replay` applies every successful write of an index to a fresh backend (what `reindex` builds on).
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select, update

from matterhub.catalog.database import Catalog
from matterhub.catalog.models import SearchTask, utcnow
from matterhub.core.errors import BackendError
from matterhub.core.search import GFilter
from matterhub.search.backend import SearchBackend, SearchSpec
from matterhub.search.documents import Prepared
from matterhub.search.parser import query_tree

__all__ = ["BATCH_ENTRIES", "IngestWorker"]

log = logging.getLogger(__name__)

# Entries applied per commit at most (a batch is whatever is queued, up to this). 50,000 merges
# less (-20% merge CPU) but leaves more segments, and regex/sort queries were ~10% slower.
BATCH_ENTRIES = 20_000
# Validated entries waiting for the worker; past this, ingest calls wait for it to catch up.
_MAX_BACKLOG_ENTRIES = 100_000
_BACKLOG_WAIT_S = 300.0


class IngestWorker:
    """The one thread that writes to the indexes; `backend` opens an index by id."""

    def __init__(self, catalog: Catalog, backend: Callable[[str], SearchBackend]) -> None:
        self._catalog = catalog
        self._backend = backend
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._prepared: dict[str, list[Prepared]] = {}
        self._backlog = 0
        self._backlog_changed = threading.Condition()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Condition()

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread and re-queue writes left PENDING or in PROGRESS."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="search-ingest", daemon=True)
            self._thread.start()
        with self._catalog.transaction() as session:
            unfinished = session.execute(
                select(SearchTask.index_id, SearchTask.id)
                .where(SearchTask.state.in_(("PENDING", "PROGRESS")))
                .order_by(SearchTask.seq)
            ).all()
        for index_id, task_id in unfinished:
            self._queue.put((index_id, task_id))
        if unfinished:
            log.info("re-queued %d unfinished search writes", len(unfinished))

    def stop(self) -> None:
        """Finish queued writes and stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=60)
            self._thread = None

    def lock(self, index_id: str) -> threading.Lock:
        """Held while an index is written to (by the worker, or by a rebuild)."""
        with self._locks_guard:
            return self._locks.setdefault(index_id, threading.Lock())

    # queueing --------------------------------------------------------------------------------

    def wait_for_room(self, entries: int) -> None:
        """Backpressure: while the worker is far behind, new ingests wait (memory stays bounded)."""
        deadline = time.monotonic() + _BACKLOG_WAIT_S
        with self._backlog_changed:
            while self._backlog and self._backlog + entries > _MAX_BACKLOG_ENTRIES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BackendError("the search index is too far behind; retry shortly")
                self._backlog_changed.wait(remaining)

    def submit(self, index_id: str, task_id: str, prepared: list[Prepared] | None = None) -> None:
        """Queue a recorded task; an ingest passes its validated entries along."""
        if prepared is not None:
            with self._backlog_changed:
                self._prepared[task_id] = prepared
                self._backlog += len(prepared)
        self._queue.put((index_id, task_id))

    def pause(self, seconds: float) -> None:
        """Sleep until a batch finishes, or for `seconds`."""
        with self._done:
            self._done.wait(seconds)

    def _release(self, task_ids: list[str]) -> None:
        with self._backlog_changed:
            for task_id in task_ids:
                self._backlog -= len(self._prepared.pop(task_id, ()))
            self._backlog_changed.notify_all()

    # the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            entries = len(self._prepared.get(first[1], ()))
            while entries < BATCH_ENTRIES:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
                entries += len(self._prepared.get(item[1], ()))
            by_index: dict[str, list[str]] = {}
            for index_id, task_id in batch:
                by_index.setdefault(index_id, []).append(task_id)
            for index_id, task_ids in by_index.items():
                try:
                    self._apply_batch(index_id, task_ids)
                except Exception:  # never let the worker die; the tasks say what failed
                    log.exception("search ingest batch failed")
            with self._done:
                self._done.notify_all()

    def _set_state(self, task_ids: list[str], state: str, message: str | None = None) -> None:
        values: dict[str, Any] = {"state": state}
        if state in ("SUCCESS", "FAILED"):
            values["completed_at"] = utcnow()
        if message is not None:
            values["message"] = message
        with self._catalog.transaction() as session:
            session.execute(update(SearchTask).where(SearchTask.id.in_(task_ids)).values(**values))

    def _apply_batch(self, index_id: str, task_ids: list[str]) -> None:
        backend = self._backend(index_id)
        with self._catalog.transaction() as session:
            rows = session.execute(
                select(SearchTask.id, SearchTask.task_type, SearchTask.state)
                .where(SearchTask.id.in_(task_ids))
                .order_by(SearchTask.seq)
            ).all()
            tasks = [(task_id, kind) for task_id, kind, state in rows if state != "SUCCESS"]
        if not tasks:
            return
        ids = [t[0] for t in tasks]
        self._set_state(ids, "PROGRESS")
        failed: Exception | None = None
        with self.lock(index_id):
            try:
                for task_id, kind in tasks:
                    self._apply(backend, task_id, kind, functools.partial(self._payload, task_id))
                backend.commit()
            except Exception as exc:
                backend.rollback()
                if len(tasks) == 1:
                    self._set_state(ids, "FAILED", str(exc)[:2000])
                    self._release(ids)
                    return
                failed = exc
        if failed is None:
            self._set_state(ids, "SUCCESS")
            self._release(ids)
            return
        # One bad task must not sink the others: apply them one at a time.
        for task_id in ids:
            self._apply_batch(index_id, [task_id])

    def _payload(self, task_id: str) -> dict[str, Any]:
        with self._catalog.transaction() as session:
            text = session.scalar(select(SearchTask.payload).where(SearchTask.id == task_id))
        loaded: dict[str, Any] = json.loads(text or "{}")
        return loaded

    def _apply(
        self,
        backend: SearchBackend,
        task_id: str,
        kind: str,
        load: Callable[[], dict[str, Any]],
    ) -> None:
        if kind == "ingest":
            prepared = self._prepared.get(task_id)
            if prepared is None:  # after a restart or in a rebuild: from the recorded payload
                entries = load()["entries"]
                prepared = [Prepared(entry, position=i) for i, entry in enumerate(entries)]
            backend.upsert(prepared)
            return
        payload = load()
        if kind == "delete_by_subject":
            backend.delete_subject(payload["subject"])
        elif kind == "delete_entry":
            backend.delete_entry(payload["subject"], payload.get("id"))
        elif kind == "delete_by_query":
            filters = [GFilter.model_validate(f) for f in payload.get("filters", [])]
            spec = SearchSpec(
                tree=query_tree(payload.get("q"), bool(payload.get("advanced")), filters),
                principals=None,
                filters=filters,
                limit=0,
            )
            backend.delete_matching(spec)
        else:
            raise ValueError(f"unknown search task type {kind!r}")

    # rebuilding ------------------------------------------------------------------------------

    def replay(
        self,
        index_id: str,
        fresh: SearchBackend,
        *,
        upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """Apply every successful write of an index, in order, to `fresh` (hold `lock` first).

        `upgrade` rewrites each ingested entry's content on the way (fields derived since the
        write was recorded, e.g. record titles); the recorded writes stay as they were.
        """
        pending = 0
        for _task_id, kind, payload in self._successful(index_id):
            if upgrade is not None and kind == "ingest":
                for entry in payload.get("entries", ()):
                    if isinstance(entry.get("content"), dict):
                        entry["content"] = upgrade(entry["content"])
            if kind == "delete_by_query":
                fresh.commit()  # it counts what it deletes on committed data
                pending = 0
            self._apply(fresh, "", kind, functools.partial(dict, payload))
            pending += len(payload.get("entries", ())) or 1
            if pending >= BATCH_ENTRIES:
                fresh.commit()
                pending = 0
        fresh.commit()

    def _successful(self, index_id: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        last = -1
        while True:
            with self._catalog.transaction() as session:
                rows = session.execute(
                    select(SearchTask.seq, SearchTask.id, SearchTask.task_type, SearchTask.payload)
                    .where(
                        SearchTask.index_id == index_id,
                        SearchTask.state == "SUCCESS",
                        SearchTask.seq > last,
                    )
                    .order_by(SearchTask.seq)
                    .limit(200)
                ).all()
            if not rows:
                return
            for seq, task_id, kind, payload in rows:
                last = seq
                yield task_id, kind, json.loads(payload)
