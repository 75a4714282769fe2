"""Job records in the catalog's `tasks` table: enqueue, claim with a lease, finish, recover."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, Table, or_, select, update
from sqlalchemy.orm import Session

from matterhub.catalog import Catalog
from matterhub.catalog.models import Task

__all__ = ["OPEN", "Job", "JobQueue"]

_TASKS = cast(Table, Task.__table__)

# A job is open until it succeeds or fails; "received" waits for a worker, "running" holds a lease.
OPEN = ("received", "running")


@dataclass(frozen=True)
class Job:
    """A claimed job: what to do (`kind` + `payload`) and how often it was tried."""

    id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    owner_id: str | None


class JobQueue:
    """Durable job queue over the catalog; any number of workers may claim from it."""

    def __init__(self, catalog: Catalog, *, lease: timedelta = timedelta(minutes=5)) -> None:
        self._catalog = catalog
        self._lease = lease

    @staticmethod
    def add(
        session: Session, kind: str, payload: dict[str, Any], *, owner_id: str | None = None
    ) -> str:
        """Record a job inside the caller's transaction, so it commits with what it belongs to."""
        task = Task(kind=kind, status="received", payload=payload, owner_id=owner_id)
        session.add(task)
        session.flush()
        return task.id

    def enqueue(self, kind: str, payload: dict[str, Any], *, owner_id: str | None = None) -> str:
        """Record a job in its own transaction; it is durable when this returns."""
        with self._catalog.transaction() as session:
            return self.add(session, kind, payload, owner_id=owner_id)

    def claim(self, kinds: Sequence[str]) -> Job | None:
        """Take the oldest waiting job of these kinds (or one whose lease ran out), or None."""
        rows = self.claim_many(kinds, limit=1)
        if not rows:
            return None
        task = rows[0]
        return Job(task.id, task.kind, dict(task.payload), task.attempts, task.owner_id)

    def claim_many(
        self, kinds: Sequence[str], *, limit: int, lease: timedelta | None = None
    ) -> list[Row[Any]]:
        """Take up to `limit` of the oldest claimable jobs at once; their rows (every column of
        `tasks`, by attribute: `row.id`, `row.payload`, …), oldest first.

        One conditional UPDATE marks them running under a lease stamped with this call's
        deadline; only rows carrying that stamp are returned, so when two workers race for the
        same rows each row goes to exactly one of them (a worker that wins none looks again).
        The rows are read as plain rows, not ORM objects (a claim of 256 run tasks spent most
        of its time building and detaching objects).
        """
        while True:
            now = _now()
            deadline = now + (lease or self._lease)
            with self._catalog.transaction() as session:
                ids = session.scalars(
                    select(Task.id)
                    .where(Task.kind.in_(kinds), _claimable(now))
                    .order_by(Task.created_at)
                    .limit(limit)
                ).all()
                if not ids:
                    return []
                session.execute(
                    update(Task)
                    .where(Task.id.in_(ids), _claimable(now))
                    .values(
                        status="running",
                        attempts=Task.attempts + 1,
                        lease_until=deadline,
                        started_at=now,
                    )
                )
                rows = session.execute(
                    select(_TASKS)
                    .where(
                        _TASKS.c.id.in_(ids),
                        _TASKS.c.status == "running",
                        _TASKS.c.lease_until == deadline,
                    )
                    .order_by(_TASKS.c.created_at)
                ).all()
            if rows:
                return list(rows)
            # Another worker took every one of them first: look again.

    def renew(self, job_ids: Sequence[str]) -> None:
        """Extend the leases of jobs still running (the worker's heartbeat)."""
        if not job_ids:
            return
        with self._catalog.transaction() as session:
            session.execute(
                update(Task)
                .where(Task.id.in_(job_ids), Task.status == "running")
                .values(lease_until=_now() + self._lease)
            )

    def complete(self, job_id: str, result: dict[str, Any] | None = None) -> None:
        """Mark a job done with its result."""
        self._finish(job_id, "success", result=result)

    def fail(self, job_id: str, error: dict[str, Any]) -> None:
        """Mark a job failed with `{type, message}`."""
        self._finish(job_id, "failed", error=error)

    def _finish(self, job_id: str, status: str, **values: Any) -> None:
        with self._catalog.transaction() as session:
            session.execute(
                update(Task)
                .where(Task.id == job_id)
                .values(status=status, finished_at=_now(), lease_until=None, **values)
            )

    def recover(self, kinds: Sequence[str]) -> int:
        """At start-up: jobs left running by a stopped process go back to the queue."""
        with self._catalog.transaction() as session:
            result = session.execute(
                update(Task)
                .where(Task.kind.in_(kinds), Task.status == "running")
                .values(status="received", lease_until=None)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def open_payloads(self, kind: str) -> list[dict[str, Any]]:
        """Payloads of the jobs of one kind not finished yet."""
        with self._catalog.transaction() as session:
            rows = session.scalars(
                select(Task.payload).where(Task.kind == kind, Task.status.in_(OPEN))
            ).all()
        return [dict(p) for p in rows]

    def get(self, job_id: str) -> Task | None:
        """The job's row (detached), for status pages and tests."""
        with self._catalog.transaction() as session:
            task = session.get(Task, job_id)
            if task is not None:
                session.expunge(task)
            return task


def _claimable(now: datetime) -> Any:
    return or_(
        Task.status == "received",
        (Task.status == "running") & (Task.lease_until < now),
    )


def _now() -> datetime:
    return datetime.now(UTC)
