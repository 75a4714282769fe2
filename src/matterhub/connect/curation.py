"""Curation: the queue, one task with its sample records, and the accept/reject decision."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from matterhub.catalog.models import Submission
from matterhub.connect.base import ConnectBase
from matterhub.core.errors import Conflict, InvalidInput, PermissionDenied
from matterhub.core.identity import SYSTEM_IDENTITY, Identity

__all__ = ["ConnectCuration"]

_SAMPLE_RECORDS = 3
_CODES_TEXT = {"S": "extraction succeeded", "N": "extraction not requested"}


class ConnectCuration(ConnectBase):
    """curation_tasks, curation_task and curate."""

    def curation_tasks(self, identity: Identity) -> list[dict[str, Any]]:
        """Submissions waiting for a curator."""
        if not self._is_curator(identity):
            raise PermissionDenied("only curators see the curation queue")
        with self._catalog.transaction() as session:
            ids = session.scalars(
                select(Submission.source_id).where(Submission.status == "curation")
            ).all()
        return [self.curation_task(identity, sid) for sid in ids]

    def curation_task(self, identity: Identity, source_id: str) -> dict[str, Any]:
        """One curation task: the dataset, its first records and the extraction summary."""
        if not self._is_curator(identity):
            raise PermissionDenied("only curators see curation tasks")
        sub, steps, submitter = self._load(identity, source_id)
        if sub.status != "curation":
            raise Conflict(f"{source_id} is not waiting for curation", field="source_id")
        version = self._datasets.get(SYSTEM_IDENTITY, source_id)
        extracting = next(s for s in steps if s.step == "extracting")
        waiting = next(s for s in steps if s.step == "curation")
        return {
            "source_id": source_id,
            "submission_info": {
                "submitter": submitter,
                "submission_time": sub.created_at.isoformat(),
            },
            "curation_start_date": waiting.detail or sub.updated_at.isoformat(),
            "extraction_summary": extracting.detail or _CODES_TEXT.get(extracting.code, ""),
            "dataset": version.document,
            "sample_records": self._datasets.records(SYSTEM_IDENTITY, source_id)[:_SAMPLE_RECORDS],
        }

    def curate(
        self, identity: Identity, source_id: str, *, action: str, reason: str
    ) -> dict[str, Any]:
        """Accept (the pipeline continues) or reject (it stops; the draft is rejected).

        The submitter hears the decision through the configured notifiers and in the status.
        """
        if action not in ("accept", "reject"):
            raise InvalidInput("action must be 'accept' or 'reject'", field="action")
        if not reason.strip():
            raise InvalidInput("a curation decision needs a reason", field="reason")
        if not self._is_curator(identity):
            raise PermissionDenied("only curators accept or reject submissions")
        sub, _steps, _submitter = self._load(identity, source_id)
        if sub.status != "curation":
            raise Conflict(f"{source_id} is not waiting for curation", field="source_id")
        if action == "reject":
            self._datasets.reject(identity, source_id, reason=reason)
            self._step(sub.id, "curation", "F", f"rejected: {reason}")
            self._finish(sub.id, "failed")
            self._notify(sub.id, "curation.rejected", reason)
            return {"success": True, "message": f"{source_id} was rejected: {reason}"}
        self._step(sub.id, "curation", "M", f"accepted: {reason}")
        with self._catalog.transaction() as session:
            row = session.get(Submission, sub.id)
            assert row is not None
            row.status = "processing"
            self._enqueue(session, sub.id, row.submitter_id)
        self._wake()
        self._notify(sub.id, "curation.accepted", reason)
        return {"success": True, "message": f"{source_id} was accepted and is being published"}
