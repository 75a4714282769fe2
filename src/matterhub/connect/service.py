"""Connect: submissions recorded before they are acknowledged, then run by durable jobs.

The parts are mixins over one shared state (`base.ConnectBase`): `intake` takes submissions in,
`reads` answers status questions, `curation` is the curator's side, `pipeline` is what a job
runs. A submission waiting for a curator simply stops; accepting it queues a new job that
continues where it stopped. On start, jobs a stopped process left running are queued again, and
each step is idempotent.
"""

from __future__ import annotations

from sqlalchemy import select

from matterhub.catalog.models import Submission
from matterhub.connect.base import JOB_KIND
from matterhub.connect.curation import ConnectCuration
from matterhub.connect.intake import ConnectIntake
from matterhub.connect.pipeline import ConnectPipeline
from matterhub.connect.reads import ConnectReads
from matterhub.jobs import JobQueue, JobWorker

__all__ = ["ConnectService"]


class ConnectService(ConnectIntake, ConnectReads, ConnectCuration, ConnectPipeline):
    """MDF Connect's operations; each takes the caller's identity first."""

    def start(self) -> None:
        """Start the pipeline worker; interrupted submissions resume."""
        if self._worker is not None:
            return
        self._adopt_orphans()
        # One pipeline at a time: extraction already fans out to every core through its pool.
        self._worker = JobWorker(self._jobs, {JOB_KIND: self._handle}, name="connect", threads=1)
        self._worker.start()

    def stop(self) -> None:
        """Let the current step finish, then stop the worker."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def _adopt_orphans(self) -> None:
        """Submissions left pending/processing without an open job (older hubs) get one."""
        with self._catalog.transaction() as session:
            unfinished = session.execute(
                select(Submission.id, Submission.submitter_id)
                .where(Submission.status.in_(("pending", "processing")))
                .order_by(Submission.created_at)
            ).all()
        if not unfinished:
            return
        queued = {str(p.get("submission_id")) for p in self._jobs.open_payloads(JOB_KIND)}
        with self._catalog.transaction() as session:
            for submission_id, submitter_id in unfinished:
                if submission_id not in queued:
                    JobQueue.add(
                        session, JOB_KIND, {"submission_id": submission_id}, owner_id=submitter_id
                    )
