"""Discover: indexes, durable writes through one ingest worker, and searches filtered by visibility.

A write is recorded in the catalog (`search_tasks`) before it is acknowledged; the ingest worker
(`search.writer`) applies queued writes to each index in batches and commits once per batch
(tantivy allows a single writer per index). On start, tasks left PENDING or in PROGRESS are
re-applied: replacing an entry is idempotent, so nothing acknowledged is lost and nothing is applied
twice in effect. Because every write is kept, `reindex` can rebuild an index from the catalog alone.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import defer

from matterhub.catalog.database import Catalog
from matterhub.catalog.models import SearchIndex, SearchTask
from matterhub.catalog.repositories import sql_clause
from matterhub.core.accounts import check_name
from matterhub.core.errors import BadRequest, Conflict, NotFound, PermissionDenied
from matterhub.core.identity import SYSTEM_IDENTITY, Identity
from matterhub.core.policy import Policy
from matterhub.core.records import with_title
from matterhub.core.search import MAX_RESULTS, GScrollRequest, GSearchRequest, GSort, GTask
from matterhub.search.backend import Hit, Page, SearchBackend, SearchSpec
from matterhub.search.documents import Prepared
from matterhub.search.parser import QueryLimits, query_tree
from matterhub.search.tree import Exists, MatchAll, Node
from matterhub.search.writer import IngestWorker

__all__ = ["DEFAULT_INDEXES", "IndexInfo", "SearchService"]


# The names mdf_toolbox translates to these ids, so Forge(index="mdf") reaches our index.
DEFAULT_INDEXES = {
    "mdf": "1a57bbe5-5272-477f-9d31-343b8258b7a5",
    "mdf-test": "5acded0c-a534-45af-84be-dcf042e36412",
    "mdf-dev": "aeccc263-f083-45f5-ab1d-08ee702b3384",
    "dlhub": "847c9105-18a0-4ffb-8a71-03dd76dfcc9d",
    "dlhub-test": "5c89e0a9-00e5-4171-b415-814fe4d0b8af",
}


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """An index as the API shows it."""

    id: str
    name: str
    display_name: str
    description: str | None
    created_at: str
    num_entries: int
    writers: list[str]


def _task_doc(task: SearchTask) -> GTask:
    details = {
        "PENDING": "queued",
        "PROGRESS": "being applied",
        "SUCCESS": "done",
        "FAILED": "failed",
    }
    return GTask(
        task_id=task.id,
        state=task.state,
        task_type=task.task_type,
        index_id=task.index_id,
        state_description=details.get(task.state, task.state),
        message=task.message,
        additional_details=task.additional_details,
        creation_date=task.created_at.isoformat(),
        completion_date=task.completed_at.isoformat() if task.completed_at else None,
    )


class SearchService:
    """Every Discover operation; each takes the caller's identity first."""

    def __init__(
        self,
        catalog: Catalog,
        policy: Policy,
        *,
        index_dir: Path,
        open_backend: Callable[[Path], SearchBackend],
        query_limits: QueryLimits | None = None,
    ) -> None:
        self._catalog = catalog
        self._limits = query_limits or QueryLimits()
        self._policy = policy
        self._dir = index_dir
        self._open_backend = open_backend
        self._backends: dict[str, SearchBackend] = {}
        self._backend_lock = threading.Lock()
        self._index_cache: dict[str, SearchIndex] = {}
        self._worker = IngestWorker(catalog, self.backend)

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Create the default indexes, start the ingest worker and re-queue unfinished writes."""
        self._ensure_defaults()
        self._worker.start()

    def stop(self) -> None:
        """Finish queued writes, stop the worker and close the indexes."""
        self._worker.stop()
        with self._backend_lock:
            for backend in self._backends.values():
                backend.close()
            self._backends.clear()

    def _ensure_defaults(self) -> None:
        for name, index_id in DEFAULT_INDEXES.items():
            self._ensure_index(index_id, name)

    def _ensure_index(self, index_id: str, name: str) -> None:
        with self._catalog.transaction() as session:
            if session.get(SearchIndex, index_id) is not None:
                return
        try:
            with self._catalog.transaction() as session:
                session.add(SearchIndex(id=index_id, name=name, display_name=name, writers=[]))
        except Exception:  # another process created it first
            with self._catalog.transaction() as session:
                if session.get(SearchIndex, index_id) is None:
                    raise

    # indexes ---------------------------------------------------------------------------------

    def _resolve(self, ref: str) -> SearchIndex:
        # Indexes are few and rarely change; searches should not pay a catalog round trip.
        cached = self._index_cache.get(ref)
        if cached is not None:
            return cached
        index = self._load_index(ref)
        self._index_cache[index.id] = self._index_cache[index.name] = index
        return index

    def _load_index(self, ref: str) -> SearchIndex:
        with self._catalog.transaction() as session:
            index = session.get(SearchIndex, ref) or session.scalar(
                select(SearchIndex).where(SearchIndex.name == ref)
            )
            if index is not None:
                session.expunge(index)
                return index
        for name, index_id in DEFAULT_INDEXES.items():
            if ref in (name, index_id):
                self._ensure_index(index_id, name)
                return self._load_index(index_id)
        raise NotFound(f"no search index {ref!r}", field="index_id")

    def backend(self, index_id: str) -> SearchBackend:
        """The open backend of an index (opened on first use)."""
        with self._backend_lock:
            backend = self._backends.get(index_id)
            if backend is None:
                backend = self._open_backend(self._dir / index_id)
                self._backends[index_id] = backend
            return backend

    def _info(self, index: SearchIndex, identity: Identity = SYSTEM_IDENTITY) -> IndexInfo:
        return IndexInfo(
            id=index.id,
            name=index.name,
            display_name=index.display_name,
            description=index.description,
            created_at=index.created_at.isoformat(),
            num_entries=self._visible_count(identity, index),
            writers=list(index.writers) if self._policy.is_admin(identity) else [],
        )

    def _visible_count(self, identity: Identity, index: SearchIndex) -> int:
        """How many entries of the index `identity` may see (hidden ones are not counted)."""
        principals = self._policy.search_filter(identity).principals
        backend = self.backend(index.id)
        if principals is None:
            return backend.count()
        spec = SearchSpec(tree=MatchAll(), principals=principals, limit=0)
        return backend.search(spec).total

    def get_index(self, identity: Identity, ref: str) -> IndexInfo:
        """One index by id or name; its entry count covers what the caller may see."""
        return self._info(self._resolve(ref), identity)

    def list_indexes(self, identity: Identity) -> list[IndexInfo]:
        """Every index, with counts of what the caller may see."""
        self._ensure_defaults()
        with self._catalog.transaction() as session:
            indexes = session.scalars(select(SearchIndex).order_by(SearchIndex.name)).all()
            session.expunge_all()
        return [self._info(i, identity) for i in indexes]

    def create_index(
        self,
        identity: Identity,
        name: str,
        *,
        display_name: str | None = None,
        description: str | None = None,
        writers: list[str] | None = None,
    ) -> IndexInfo:
        """Create an index (administrators)."""
        self._policy.require_admin(identity)
        check_name(name, field="name")
        with self._catalog.transaction() as session:
            if session.scalar(select(SearchIndex).where(SearchIndex.name == name)) is not None:
                raise Conflict(f"an index named {name!r} exists", field="name")
            index = SearchIndex(
                name=name,
                display_name=display_name or name,
                description=description,
                writers=writers or [],
            )
            session.add(index)
            session.flush()
            session.expunge(index)
        return self._info(index)

    def _require_writer(self, identity: Identity, index: SearchIndex) -> None:
        if self._policy.policy("index").allows(identity, index, "write"):
            return
        raise PermissionDenied(f"you may not write to index {index.name!r}")

    # reads -----------------------------------------------------------------------------------

    def _principals(self, identity: Identity, bypass: bool) -> frozenset[str] | None:
        if bypass:
            if not identity.bypasses_acl:
                raise PermissionDenied("bypass_visible_to is for index administrators")
            return None
        return self._policy.search_filter(identity).principals

    def search(self, identity: Identity, ref: str, request: GSearchRequest) -> Page:
        """Run a search; only entries visible to the caller are considered."""
        if request.limit > MAX_RESULTS or request.offset + request.limit > MAX_RESULTS:
            raise BadRequest(
                f"offset + limit may not exceed {MAX_RESULTS}; use the scroll API for more",
                field="limit",
            )
        index = self._resolve(ref)
        spec = SearchSpec(
            tree=query_tree(request.q, request.advanced, request.filters, limits=self._limits),
            principals=self._principals(identity, request.bypass_visible_to),
            filters=request.filters,
            post_filters=request.post_facet_filters,
            facets=request.facets,
            boosts=request.boosts,
            sort=request.sort,
            limit=request.limit,
            offset=request.offset,
        )
        return self.backend(index.id).search(spec)

    def search_tree(
        self,
        identity: Identity,
        ref: str,
        tree: Node,
        *,
        sort: Sequence[GSort] = (),
        limit: int = 10,
        offset: int = 0,
    ) -> Page:
        """Run a query tree built by another query language (OPTIMADE's filters), with the same
        visibility and paging bounds as `search`."""
        if limit < 0 or offset < 0 or offset + limit > MAX_RESULTS:
            raise BadRequest(f"offset + limit may not exceed {MAX_RESULTS}", field="limit")
        index = self._resolve(ref)
        spec = SearchSpec(
            tree=tree,
            principals=self._principals(identity, False),
            sort=sort,
            limit=limit,
            offset=offset,
        )
        return self.backend(index.id).search(spec)

    def scroll(self, identity: Identity, ref: str, request: GScrollRequest) -> Page:
        """The next page of everything matching, after `marker`."""
        index = self._resolve(ref)
        spec = SearchSpec(
            tree=query_tree(request.q, request.advanced, request.filters, limits=self._limits),
            principals=self._principals(identity, request.bypass_visible_to),
            filters=request.filters,
            limit=request.limit,
        )
        return self.backend(index.id).scroll(spec, request.marker)

    def get_subject(self, identity: Identity, ref: str, subject: str) -> list[Hit]:
        """The visible entries of a subject; NotFound when there are none."""
        index = self._resolve(ref)
        hits = self.backend(index.id).entries(subject, self._principals(identity, False))
        if not hits:
            raise NotFound(f"no subject {subject!r} in {index.name}", field="subject")
        return hits

    def get_entry(self, identity: Identity, ref: str, subject: str, entry_id: str | None) -> Hit:
        """One visible entry."""
        for hit in self.get_subject(identity, ref, subject):
            if (hit.entry_id or None) == (entry_id or None):
                return hit
        raise NotFound(f"no entry {entry_id!r} of subject {subject!r}", field="entry_id")

    def mapping(self, identity: Identity, ref: str) -> dict[str, str]:
        """Every field path with its type, over the entries the caller may see.

        A field held only by entries hidden from the caller is left out: its name alone can
        tell what an unreleased dataset measures.
        """
        backend = self.backend(self._resolve(ref).id)
        every = backend.mapping()
        principals = self._policy.search_filter(identity).principals
        if principals is None or not every:
            return every
        visible = backend.search(SearchSpec(tree=MatchAll(), principals=principals, limit=0))
        if visible.total == 0:
            return {}
        if visible.total == backend.count():
            return every
        return {
            path: kind
            for path, kind in every.items()
            if backend.search(SearchSpec(tree=Exists(path), principals=principals, limit=0)).total
        }

    # writes ----------------------------------------------------------------------------------

    def ingest(self, identity: Identity, ref: str, body: dict[str, Any]) -> GTask:
        """Validate, record durably, queue; the returned task tracks the write."""
        index = self._resolve(ref)
        self._require_writer(identity, index)
        entries = self._entries_of(body)
        prepared = [Prepared(entry, position=i) for i, entry in enumerate(entries)]
        per_subject: dict[str, int] = {}
        for entry in prepared:
            per_subject[entry.subject] = per_subject.get(entry.subject, 0) + 1
            if per_subject[entry.subject] > 10:
                raise BadRequest(
                    f"more than 10 entries for subject {entry.subject!r}", field="ingest_data.gmeta"
                )
        payload = '{"entries":[' + ",".join(e.to_json() for e in prepared) + "]}"
        self._worker.wait_for_room(len(prepared))
        task = self._record(identity, index, "ingest", payload, {"num_entries": len(prepared)})
        self._worker.submit(index.id, task.task_id, prepared)
        return task

    @staticmethod
    def _entries_of(body: dict[str, Any]) -> list[dict[str, Any]]:
        kind = body.get("ingest_type")
        data = body.get("ingest_data")
        if kind not in ("GMetaEntry", "GMetaList"):
            raise BadRequest("ingest_type must be GMetaEntry or GMetaList", field="ingest_type")
        if not isinstance(data, dict):
            raise BadRequest("ingest_data must be an object", field="ingest_data")
        if kind == "GMetaEntry":
            return [data]
        entries = data.get("gmeta")
        if not isinstance(entries, list) or not entries:
            raise BadRequest("a GMetaList needs a non-empty gmeta list", field="ingest_data.gmeta")
        return entries

    def delete_by_query(self, identity: Identity, ref: str, body: dict[str, Any]) -> GTask:
        """Queue the removal of every entry a query matches."""
        index = self._resolve(ref)
        self._require_writer(identity, index)
        try:
            request = GSearchRequest.model_validate({**body, "limit": 0})
        except ValidationError as exc:
            raise BadRequest(
                f"invalid delete_by_query body: {exc.errors()[0]['msg']}", field="q"
            ) from None
        # Refuse bad syntax and oversized queries now, not when the writer applies the task.
        query_tree(request.q, request.advanced, request.filters, limits=self._limits)
        payload = {
            "q": request.q,
            "advanced": request.advanced,
            "filters": [f.model_dump() for f in request.filters],
        }
        return self._queued(identity, index, "delete_by_query", payload)

    def delete_subject(self, identity: Identity, ref: str, subject: str) -> GTask:
        """Queue the removal of a subject's entries."""
        index = self._resolve(ref)
        self._require_writer(identity, index)
        return self._queued(identity, index, "delete_by_subject", {"subject": subject})

    def delete_entry(
        self, identity: Identity, ref: str, subject: str, entry_id: str | None
    ) -> GTask:
        """Queue the removal of one entry."""
        index = self._resolve(ref)
        self._require_writer(identity, index)
        return self._queued(identity, index, "delete_entry", {"subject": subject, "id": entry_id})

    def _queued(
        self, identity: Identity, index: SearchIndex, kind: str, payload: dict[str, Any]
    ) -> GTask:
        task = self._record(identity, index, kind, json.dumps(payload), None)
        self._worker.submit(index.id, task.task_id)
        return task

    def _record(
        self,
        identity: Identity,
        index: SearchIndex,
        kind: str,
        payload: str,
        details: dict[str, Any] | None,
    ) -> GTask:
        with self._catalog.transaction() as session:
            task = SearchTask(
                index_id=index.id,
                task_type=kind,
                owner_id=identity.user_id,
                payload=payload,
                additional_details=details,
            )
            session.add(task)
            session.flush()
            return _task_doc(task)

    def get_task(self, identity: Identity, task_id: str) -> GTask:
        """A write's state: for the caller who queued it, and administrators."""
        rule = sql_clause(self._policy.policy("task").condition(identity), SearchTask)
        with self._catalog.transaction() as session:
            task = session.scalar(
                select(SearchTask)
                .where(SearchTask.id == task_id, rule)
                .options(defer(SearchTask.payload))
            )
            if task is None:
                raise NotFound(f"no task {task_id!r}", field="task_id")
            return _task_doc(task)

    def list_tasks(self, identity: Identity, ref: str, *, limit: int = 100) -> list[GTask]:
        """The newest writes to an index the caller queued (every write for administrators)."""
        index = self._resolve(ref)
        rule = sql_clause(self._policy.policy("task").condition(identity), SearchTask)
        with self._catalog.transaction() as session:
            tasks = session.scalars(
                select(SearchTask)
                .options(defer(SearchTask.payload))
                .where(SearchTask.index_id == index.id, rule)
                .order_by(SearchTask.seq.desc())
                .limit(limit)
            ).all()
            return [_task_doc(t) for t in tasks]

    def wait(self, task_id: str, *, timeout: float = 60.0) -> GTask:
        """Block until a task has finished (for the CLI, Connect and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            task = self.get_task(SYSTEM_IDENTITY, task_id)
            if task.state in ("SUCCESS", "FAILED"):
                return task
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"search task {task_id} still {task.state}")
            self._worker.pause(min(remaining, 0.5))

    # rebuilding ------------------------------------------------------------------------------

    def reindex(self, identity: Identity, ref: str) -> int:
        """Rebuild an index from its recorded writes; returns the entries it then holds."""
        self._policy.require_admin(identity)
        index = self._resolve(ref)
        target = self._dir / index.id
        scratch = self._dir / f"{index.id}.rebuild"
        shutil.rmtree(scratch, ignore_errors=True)
        fresh = self._open_backend(scratch)
        with self._worker.lock(index.id):
            # MDF records written before records had titles get their `mdf.title` here.
            self._worker.replay(index.id, fresh, upgrade=with_title)
            fresh.close()
            with self._backend_lock:
                current = self._backends.pop(index.id, None)
                if current is not None:
                    current.close()
                old = self._dir / f"{index.id}.old"
                shutil.rmtree(old, ignore_errors=True)
                if target.exists():
                    target.rename(old)
                scratch.rename(target)
                shutil.rmtree(old, ignore_errors=True)
                self._backends[index.id] = self._open_backend(target)
        return self.backend(index.id).count()
