"""The state and helpers every part of ConnectService shares: loading, steps and statuses."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from matterhub.catalog.database import Catalog
from matterhub.catalog.models import Submission, SubmissionStep, User
from matterhub.connect.collectors.base import Collector, CollectorContext
from matterhub.connect.collectors.uploads import upload_root
from matterhub.connect.dispatch import Dispatcher
from matterhub.connect.documents import status_block
from matterhub.connect.extractors.registry import iter_extractors
from matterhub.connect.notify import Notice, Notifier, deliver
from matterhub.core.connect import STEP_NAMES, StepStatus
from matterhub.core.errors import NotFound
from matterhub.core.identity import Identity
from matterhub.core.organizations import Organization
from matterhub.core.policy import Policy
from matterhub.jobs import JobQueue, JobWorker
from matterhub.publish.service import DatasetService
from matterhub.search.service import SearchService

__all__ = ["JOB_KIND", "ConnectBase", "Stop"]

# The job kind the pipeline runs; its payload is `{"submission_id": …}`.
JOB_KIND = "connect.submission"


class Stop(Exception):
    """The pipeline stops here (failed, cancelled, or waiting for a curator)."""


class ConnectBase:
    """Shared state of the Connect parts; each part is a mixin over it."""

    def __init__(
        self,
        catalog: Catalog,
        policy: Policy,
        datasets: DatasetService,
        search: SearchService,
        *,
        staging_dir: Path,
        collectors: Sequence[Collector],
        collector_context: CollectorContext,
        base_url: str,
        secret: str,
        dispatchers: Mapping[str, Dispatcher] | None = None,
        organizations: Sequence[Organization] = (),
        notifiers: Sequence[Notifier] = (),
        extract: Callable[..., Any] = iter_extractors,
        jobs: JobQueue | None = None,
    ) -> None:
        self._catalog = catalog
        self._policy = policy
        self._datasets = datasets
        self._search = search
        self._staging = staging_dir
        self._collectors = list(collectors)
        if "uploads_dir" not in collector_context.options:
            # Staging and collecting `upload://` sources must agree on one folder.
            options = {**collector_context.options, "uploads_dir": str(staging_dir / "uploads")}
            collector_context = dataclasses.replace(collector_context, options=options)
        self._collector_context = collector_context
        self._base_url = base_url
        self._extract = extract
        self._secret = secret
        self._dispatchers = dict(dispatchers or {})
        self._organizations = list(organizations)
        self._notifiers = list(notifiers)
        self._jobs = jobs or JobQueue(catalog)
        self._worker: JobWorker | None = None
        # Seconds per step of the most recent pipeline run (for benchmarks and debugging logs).
        self.last_timings: dict[str, float] = {}
        self._started: dict[tuple[str, str], float] = {}

    # jobs -------------------------------------------------------------------------------------

    def _enqueue(self, session: Session, submission_id: str, owner_id: str | None) -> None:
        """Queue the pipeline for a submission inside the transaction that records it."""
        JobQueue.add(session, JOB_KIND, {"submission_id": submission_id}, owner_id=owner_id)

    def _wake(self) -> None:
        if self._worker is not None:
            self._worker.notify()

    @staticmethod
    def _new_submission(
        session: Session, *, source_id: str, submitter_id: str, request: dict[str, Any], test: bool
    ) -> Submission:
        """A submission row with its 12 steps; the caller's transaction commits both."""
        sub = Submission(
            source_id=source_id,
            submitter_id=submitter_id,
            request=request,
            status="pending",
            test=test,
        )
        session.add(sub)
        session.flush()
        skipped = 6 if request.get("update_metadata_only") else 0
        for position, step in enumerate(STEP_NAMES):
            code = "S" if step == "sub_start" else "N" if position < skipped else "z"
            session.add(
                SubmissionStep(submission_id=sub.id, step=step, position=position, code=code)
            )
        return sub

    def discard_upload(self, source: str) -> None:
        """Remove an `upload://` area (a refused submission, or one published); else nothing."""
        root = upload_root(self._collector_context, source)
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)

    # reading ----------------------------------------------------------------------------------

    def _is_curator(self, identity: Identity) -> bool:
        return self._datasets.is_curator(identity)  # one curator rule, the repository's

    def _load(
        self, identity: Identity, source_id: str, *, submission_id: str | None = None
    ) -> tuple[Submission, list[StepStatus], str]:
        """The newest submission of a source_id (or one by id), if the caller may see it."""
        with self._catalog.transaction() as session:
            query = select(Submission).order_by(Submission.created_at.desc())
            if submission_id is not None:
                query = query.where(Submission.id == submission_id)
            else:
                query = query.where(Submission.source_id == source_id)
            sub = session.scalar(query)
            if sub is None:
                raise NotFound(f"no submission {source_id!r}", field="source_id")
            # The submitter and staff always; curators while it waits for them, no longer.
            readable = self._policy.policy("submission").allows(identity, sub) or (
                sub.status == "curation" and self._is_curator(identity)
            )
            if not readable:
                raise NotFound(f"no submission {source_id!r}", field="source_id")
            steps = [
                StepStatus.model_validate({"step": s.step, "code": s.code, "detail": s.detail})
                for s in sub.steps
            ]
            submitter = session.get(User, sub.submitter_id)
            session.expunge(sub)
            return sub, steps, submitter.username if submitter else "unknown"

    def _block(self, sub: Submission, steps: list[StepStatus], submitter: str) -> dict[str, Any]:
        return status_block(
            source_id=sub.source_id,
            submitter=submitter,
            submitted=sub.created_at,
            steps=steps,
            test=sub.test,
            request=sub.request,
            state=sub.status,
        )

    def _notify(self, submission_id: str, event: str, reason: str | None = None) -> list[str]:
        """Tell the submitter (webhook, e-mail); failures are returned, never raised."""
        if not self._notifiers:
            return []
        with self._catalog.transaction() as session:
            sub = session.get(Submission, submission_id)
            assert sub is not None
            user = session.get(User, sub.submitter_id)
            webhook = (sub.request.get("services") or {}).get("webhook")
            notice = Notice(
                event=event,
                source_id=sub.source_id,
                submitter=user.username if user else "unknown",
                email=user.email if user else None,
                reason=reason,
                status_url=f"{self._base_url}/connect/status/{sub.source_id}",
                webhook=webhook if isinstance(webhook, dict) else None,
            )
        return deliver(self._notifiers, notice, secret=self._secret)

    # recording --------------------------------------------------------------------------------

    def _step(self, submission_id: str, step: str, code: str, detail: str | None = None) -> None:
        with self._catalog.transaction() as session:
            if code == "P":  # every step starts here: the place to notice a cancellation
                sub = session.get(Submission, submission_id)
                if sub is not None and sub.status == "cancelled":
                    raise Stop("cancelled")
            row = session.get(SubmissionStep, (submission_id, step))
            assert row is not None
            row.code = code
            row.detail = detail
        now = time.perf_counter()
        if code == "P":
            self._started[(submission_id, step)] = now
        elif (began := self._started.pop((submission_id, step), None)) is not None:
            self.last_timings[step] = now - began

    def _set_status(self, submission_id: str, status: str) -> None:
        with self._catalog.transaction() as session:
            sub = session.get(Submission, submission_id)
            assert sub is not None
            sub.status = status

    def _finish(self, submission_id: str, status: str) -> None:
        self._set_status(submission_id, status)
        shutil.rmtree(self._staging / submission_id, ignore_errors=True)

    def _fail(self, submission_id: str, step: str, detail: str) -> Stop:
        self._step(submission_id, step, "F", detail)
        for later in STEP_NAMES[STEP_NAMES.index(step) + 1 :]:
            self._step(submission_id, later, "N", None)
        self._finish(submission_id, "failed")
        return Stop(detail)

    def _mark_cancelled(self, submission_id: str, reason: str) -> None:
        with self._catalog.transaction() as session:
            sub = session.get(Submission, submission_id)
            assert sub is not None
            sub.status = "cancelled"
            for row in sub.steps:
                if row.code in ("z", "P", "T"):
                    row.code = "X"
                    row.detail = reason
        shutil.rmtree(self._staging / submission_id, ignore_errors=True)
