"""Connect: submissions recorded before they are acknowledged, then run step by step.

One worker thread runs the pipeline (collect → transfer into a Publish draft → extract →
curation gate → publish → index → clean up), recording MDF's status code for every step. A
submission waiting for a curator simply stops; accepting it continues where it stopped. On start,
submissions left pending or processing are run again from the top: each step is idempotent
(the draft's files are replaced, a published version is not published twice).
"""

from __future__ import annotations

import logging
import operator
import queue
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from matterhub.blobs.base import iter_chunks
from matterhub.catalog.database import Catalog
from matterhub.catalog.models import Dataset, Submission, SubmissionStep, User
from matterhub.connect.collectors.base import Collector, CollectorContext
from matterhub.connect.dispatch import Dispatch, Dispatcher
from matterhub.connect.documents import status_block, status_document
from matterhub.connect.extractors.base import ExtractionContext, StagedFile
from matterhub.connect.extractors.registry import run_extractors
from matterhub.core.connect import (
    STEP_NAMES,
    StepStatus,
    SubmissionRequest,
    merge_blocks,
    sandbox_source_name,
)
from matterhub.core.datasets import check_source_name, derive_source_name, parse_source_id
from matterhub.core.errors import (
    Conflict,
    InvalidInput,
    MatterHubError,
    NotFound,
    PermissionDenied,
    StorageError,
    Unauthenticated,
)
from matterhub.core.identity import PUBLIC, SYSTEM_IDENTITY, Identity
from matterhub.core.organizations import Organization, apply_organizations
from matterhub.core.policy import Policy
from matterhub.core.schemas import schema, validation_errors
from matterhub.publish.service import DatasetService
from matterhub.search.service import SearchService

__all__ = ["ConnectService"]

log = logging.getLogger(__name__)
_RETRIES = 3
_SAMPLE_RECORDS = 3


class _Stop(Exception):
    """The pipeline stops here (failed, cancelled, or waiting for a curator)."""


class ConnectService:
    """MDF Connect's operations; each takes the caller's identity first."""

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
        extract: Callable[..., Any] = run_extractors,
    ) -> None:
        self._catalog = catalog
        self._policy = policy
        self._datasets = datasets
        self._search = search
        self._staging = staging_dir
        self._collectors = list(collectors)
        self._collector_context = collector_context
        self._base_url = base_url
        self._extract = extract
        self._secret = secret
        self._dispatchers = dict(dispatchers or {})
        self._organizations = list(organizations)
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the pipeline worker and re-run submissions a stop interrupted."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="connect", daemon=True)
            self._worker.start()
            with self._catalog.transaction() as session:
                ids = session.scalars(
                    select(Submission.id)
                    .where(Submission.status.in_(("pending", "processing")))
                    .order_by(Submission.created_at)
                ).all()
            for submission_id in ids:
                self._queue.put(submission_id)

    def stop(self) -> None:
        """Let the current step finish, then stop the worker."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=120)
            self._worker = None

    # submitting ------------------------------------------------------------------------------

    def submit(self, identity: Identity, request: SubmissionRequest) -> dict[str, Any]:
        """Record a submission and its draft version, queue it, and return its source_id."""
        if identity.is_anonymous:
            raise Unauthenticated("sign in to submit datasets")
        if self._organizations:
            ruled = apply_organizations(request.model_dump(), self._organizations)
            request = SubmissionRequest.model_validate(ruled)
        requested = request.mdf.get("source_name")
        name = check_source_name(str(requested)) if requested else derive_source_name(request.dc)
        name = sandbox_source_name(name, request.test)
        with self._catalog.transaction() as session:
            dataset = session.scalar(select(Dataset).where(Dataset.source_name == name))
            owner = dataset.owner_id if dataset else None
        if dataset is None and request.update:
            raise InvalidInput(f"update=true, but there is no dataset {name!r} yet", field="update")
        if dataset is not None:
            if owner != identity.user_id and not identity.bypasses_acl:
                raise PermissionDenied(f"the source_name {name!r} belongs to another submitter")
            if not request.update:
                raise Conflict(
                    f"{name!r} was submitted before; set update=true to submit a new version",
                    field="update",
                )
        visible = [str(p) for p in request.mdf.get("acl") or [PUBLIC]]
        blocks = {"mdf": {"acl": visible}}
        dc = self._dc(request)
        if dataset is None:
            version = self._datasets.create(
                identity,
                dc=dc,
                source_name=name,
                visible_to=visible,
                blocks=blocks,
                test=request.test,
            )
        else:
            version = self._next_version(identity, name, dc)
        with self._catalog.transaction() as session:
            sub = Submission(
                source_id=version.source_id,
                submitter_id=identity.user_id or "",
                request=request.model_dump(mode="json"),
                status="pending",
                test=request.test,
            )
            session.add(sub)
            session.flush()
            for position, step in enumerate(STEP_NAMES):
                code = "S" if step == "sub_start" else "z"
                session.add(
                    SubmissionStep(submission_id=sub.id, step=step, position=position, code=code)
                )
            submission_id = sub.id
        self._queue.put(submission_id)
        return {"source_id": version.source_id, "success": True, "error": None, "status_code": 202}

    def _next_version(self, identity: Identity, name: str, dc: dict[str, Any]) -> Any:
        """The version an update fills: a new one, or the unpublished one it supersedes."""
        try:
            return self._datasets.new_version(identity, name, dc=dc)
        except Conflict:
            pending = [
                v
                for v in self._datasets.versions(identity, name)
                if v.state in ("draft", "curation", "rejected")
            ]
            if not pending:
                raise
        # MDF: a newer submission replaces one still in progress; it takes over that version.
        version = pending[-1]
        with self._catalog.transaction() as session:
            ids = session.scalars(
                select(Submission.id).where(
                    Submission.source_id == version.source_id,
                    Submission.status.in_(("pending", "processing", "curation")),
                )
            ).all()
        for other in ids:
            self._mark_cancelled(other, f"superseded by a newer submission of {name}")
        if version.state != "draft":
            self._datasets.reopen(SYSTEM_IDENTITY, version.source_id)
        return self._datasets.update_metadata(identity, version.source_id, dc=dc)

    @staticmethod
    def _dc(request: SubmissionRequest) -> dict[str, Any]:
        dc = dict(request.dc)
        if request.tags:  # MDF puts tags into dc.subjects
            subjects = list(dc.get("subjects") or [])
            subjects += [{"subject": tag} for tag in request.tags]
            dc["subjects"] = subjects
        return dc

    # reading ---------------------------------------------------------------------------------

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
            if not (
                identity.bypasses_acl
                or identity.user_id == sub.submitter_id
                or self._is_curator(identity)
            ):
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

    def status(self, identity: Identity, source_id: str) -> dict[str, Any]:
        """GET /status/<source_id>."""
        return status_document(self._block(*self._load(identity, source_id)))

    def submissions(
        self, identity: Identity, filters: Sequence[Sequence[Any]] = ()
    ) -> list[dict[str, Any]]:
        """The caller's submissions (every submission for administrators), MDF filters applied."""
        with self._catalog.transaction() as session:
            query = select(Submission.id, Submission.source_id).order_by(Submission.created_at)
            if not identity.bypasses_acl:
                query = query.where(Submission.submitter_id == identity.user_id)
            rows = session.execute(query).all()
        blocks = [
            self._block(*self._load(identity, sid, submission_id=sub_id)) for sub_id, sid in rows
        ]
        return [b for b in blocks if all(_matches(b, f) for f in filters)]

    # curation --------------------------------------------------------------------------------

    def _is_curator(self, identity: Identity) -> bool:
        return self._datasets.is_curator(identity)  # one curator rule, the repository's

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
            "extraction_summary": extracting.detail or CODES_TEXT.get(extracting.code, ""),
            "dataset": version.document,
            "sample_records": self._datasets.records(SYSTEM_IDENTITY, source_id)[:_SAMPLE_RECORDS],
        }

    def curate(
        self, identity: Identity, source_id: str, *, action: str, reason: str
    ) -> dict[str, Any]:
        """Accept (the pipeline continues) or reject (it stops; the draft is rejected)."""
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
            return {"success": True, "message": f"{source_id} was rejected: {reason}"}
        self._step(sub.id, "curation", "M", f"accepted: {reason}")
        self._set_status(sub.id, "processing")
        self._queue.put(sub.id)
        return {"success": True, "message": f"{source_id} was accepted and is being published"}

    # the worker ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            submission_id = self._queue.get()
            if submission_id is None:
                return
            try:
                self._process(submission_id)
            except Exception:  # never let the worker die; the steps say what failed
                log.exception("connect pipeline crashed on %s", submission_id)

    def wait(
        self,
        source_id: str,
        *,
        timeout: float = 120.0,
        until: Sequence[str] = ("succeeded", "failed", "curation", "cancelled"),
    ) -> dict[str, Any]:
        """Block until a submission settles (for the CLI, the demo and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            sub, steps, submitter = self._load(SYSTEM_IDENTITY, source_id)
            if sub.status in until:
                return status_document(self._block(sub, steps, submitter))
            if time.monotonic() > deadline:
                raise TimeoutError(f"submission {source_id} still {sub.status}")
            time.sleep(0.05)

    def _step(self, submission_id: str, step: str, code: str, detail: str | None = None) -> None:
        with self._catalog.transaction() as session:
            if code == "P":  # every step starts here: the place to notice a cancellation
                sub = session.get(Submission, submission_id)
                if sub is not None and sub.status == "cancelled":
                    raise _Stop("cancelled")
            row = session.get(SubmissionStep, (submission_id, step))
            assert row is not None
            row.code = code
            row.detail = detail

    def cancel(
        self, identity: Identity, source_id: str, *, reason: str = "cancelled by the submitter"
    ) -> dict[str, Any]:
        """Stop a submission that has not finished; its draft stays unpublished."""
        sub, _steps, _submitter = self._load(identity, source_id)
        if not (identity.bypasses_acl or identity.user_id == sub.submitter_id):
            raise PermissionDenied("only the submitter or an administrator may cancel it")
        if sub.status not in ("pending", "processing", "curation"):
            raise Conflict(f"{source_id} has already {sub.status}", field="source_id")
        self._mark_cancelled(sub.id, reason)
        return {"success": True, "message": f"{source_id} was cancelled"}

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

    def _cancel_older(self, submission_id: str, source_id: str) -> int:
        """An update supersedes the same dataset's unfinished submissions (MDF's old_cancel)."""
        name = parse_source_id(source_id)[0]
        with self._catalog.transaction() as session:
            rows = session.execute(
                select(Submission.id, Submission.source_id).where(
                    Submission.status.in_(("pending", "processing", "curation")),
                    Submission.id != submission_id,
                )
            ).all()
        older = [sid for sid, other in rows if parse_source_id(other)[0] == name]
        for other_id in older:
            self._mark_cancelled(other_id, f"superseded by {source_id}")
        return len(older)

    def _set_status(self, submission_id: str, status: str) -> None:
        with self._catalog.transaction() as session:
            sub = session.get(Submission, submission_id)
            assert sub is not None
            sub.status = status

    def _finish(self, submission_id: str, status: str) -> None:
        self._set_status(submission_id, status)
        shutil.rmtree(self._staging / submission_id, ignore_errors=True)

    def _process(self, submission_id: str) -> None:
        with self._catalog.transaction() as session:
            sub = session.get(Submission, submission_id)
            if sub is None or sub.status not in ("pending", "processing"):
                return  # finished, cancelled, or waiting for a curator
            sub.status = "processing"
            request = SubmissionRequest.model_validate(sub.request)
            source_id = sub.source_id
            codes = {s.step: s.code for s in sub.steps}
        try:
            if not request.update_metadata_only and codes["curation"] not in ("M", "S"):
                self._before_curation(submission_id, source_id, request)
            self._after_curation(submission_id, source_id, request)
        except _Stop:
            return
        self._finish(submission_id, "succeeded")

    def _fail(self, submission_id: str, step: str, detail: str) -> _Stop:
        self._step(submission_id, step, "F", detail)
        for later in STEP_NAMES[STEP_NAMES.index(step) + 1 :]:
            self._step(submission_id, later, "N", None)
        self._finish(submission_id, "failed")
        return _Stop(detail)

    def _before_curation(
        self, submission_id: str, source_id: str, request: SubmissionRequest
    ) -> None:
        if request.update:
            cancelled = self._cancel_older(submission_id, source_id)
            self._step(submission_id, "old_cancel", "S", f"{cancelled} older submissions cancelled")
        else:
            self._step(submission_id, "old_cancel", "N")
        staged = self._staging / submission_id / "data"
        shutil.rmtree(staged, ignore_errors=True)
        self._step(submission_id, "data_download", "P")
        for source in request.data_sources:
            self._collect(submission_id, source, staged)
        files = _staged_files(staged)
        self._step(submission_id, "data_download", "S", f"{len(files)} files")
        self._step(submission_id, "data_transfer", "P")
        try:
            self._transfer(source_id, files)
        except MatterHubError as exc:
            raise self._fail(submission_id, "data_transfer", exc.detail) from None
        self._step(submission_id, "data_transfer", "S")
        if request.no_extract:
            self._step(submission_id, "extracting", "N")
            records: list[dict[str, Any]] = []
        else:
            self._step(submission_id, "extracting", "P")
            context = ExtractionContext(
                config=dict(request.extraction_config), index=dict(request.index)
            )
            result = self._extract(files, context)
            records, dropped = _validated(self._mdf_records(source_id, request, result.records))
            self._datasets.set_records(SYSTEM_IDENTITY, source_id, records)
            detail = f"{len(records)} records from {len(files)} files"
            if dropped:
                detail += f"; {len(dropped)} blocks failed the record schema, e.g. {dropped[0]}"
            if result.warnings:
                first = result.warnings[0]
                detail += (
                    f"; {len(result.warnings)} warnings, e.g. {first['path']}: {first['message']}"
                )
            noted = result.warnings or dropped
            self._step(submission_id, "extracting", "M" if noted else "S", detail)
        if request.curation:
            self._datasets.submit_for_curation(SYSTEM_IDENTITY, source_id)
            self._step(submission_id, "curation", "P", datetime.now(UTC).isoformat())
            self._set_status(submission_id, "curation")
            raise _Stop("waiting for a curator")
        self._step(submission_id, "curation", "N")

    def _after_curation(
        self, submission_id: str, source_id: str, request: SubmissionRequest
    ) -> None:
        self._step(submission_id, "ingest_publish", "P")
        try:
            version = self._datasets.get(SYSTEM_IDENTITY, source_id)
            if version.state != "published":
                version = self._datasets.publish(SYSTEM_IDENTITY, source_id)
        except MatterHubError as exc:
            raise self._fail(submission_id, "ingest_publish", exc.detail) from None
        self._step(submission_id, "ingest_publish", "L", version.pid_url or version.pid)
        self._step(submission_id, "ingest_search", "P")
        try:
            self._index(source_id, request, version.document)
        except (MatterHubError, TimeoutError) as exc:
            raise self._fail(submission_id, "ingest_search", str(exc)) from None
        self._step(submission_id, "ingest_search", "S")
        self._dispatch(submission_id, source_id, request, version.document, version.pid_url)
        for step, service in (("ingest_citrine", "citrine"), ("ingest_mrr", "mrr")):
            if service in request.services:
                self._step(submission_id, step, "R", f"{service} is not available on this hub")
            else:
                self._step(submission_id, step, "N")
        self._step(submission_id, "ingest_cleanup", "S")

    def _dispatch(
        self,
        submission_id: str,
        source_id: str,
        request: SubmissionRequest,
        document: dict[str, Any],
        landing: str | None,
    ) -> None:
        wanted = [s for s in request.services if s in self._dispatchers]
        if not wanted:
            self._step(submission_id, "ingest_backup", "N")
            return
        self._step(submission_id, "ingest_backup", "P")
        event = Dispatch(
            source_id=source_id,
            dataset=document,
            archive_url=f"{self._base_url}/api/datasets/{source_id}/archive.zip?root=false",
            landing_url=landing,
        )
        done, failed = [], []
        for service in wanted:
            params = request.services[service]
            try:
                done.append(
                    self._dispatchers[service].send(event, dict(params or {}), secret=self._secret)
                )
            except MatterHubError as exc:
                failed.append(exc.detail)
        # A dispatch failure never unpublishes: MDF's "failed, but processing continues".
        self._step(submission_id, "ingest_backup", "R" if failed else "S", "; ".join(done + failed))

    def update_metadata(
        self, identity: Identity, source_id: str, request: SubmissionRequest
    ) -> dict[str, Any]:
        """MDF's /update/<source_id>: new metadata, same data — a new minor version, re-indexed."""
        for forbidden in ("source_id", "source_name", "scroll_id", "version"):
            if forbidden in request.mdf:
                raise InvalidInput(
                    f"mdf.{forbidden} cannot be changed by an update", field=f"mdf.{forbidden}"
                )
        current = self._datasets.get(identity, source_id)
        if not current.is_latest:
            raise Conflict(f"{source_id} is not the latest version", field="source_id")
        version = self._datasets.update_metadata(identity, source_id, dc=self._dc(request) or None)
        stored = request.model_copy(update={"update_metadata_only": True})
        with self._catalog.transaction() as session:
            sub = Submission(
                source_id=version.source_id,
                submitter_id=identity.user_id or "",
                request=stored.model_dump(mode="json"),
                status="pending",
                test=current.source_id.startswith("_test_"),
            )
            session.add(sub)
            session.flush()
            for position, step in enumerate(STEP_NAMES):
                code = "S" if step == "sub_start" else "N" if position < 6 else "z"
                session.add(
                    SubmissionStep(submission_id=sub.id, step=step, position=position, code=code)
                )
            submission_id = sub.id
        self._queue.put(submission_id)
        return {"source_id": version.source_id, "success": True, "error": None, "status_code": 202}

    def _collect(self, submission_id: str, source: str, dest: Path) -> None:
        collector = next((c for c in self._collectors if c.accepts(source)), None)
        if collector is None:
            raise self._fail(
                submission_id, "data_download", f"{source}: not a recognised data source"
            )
        for attempt in range(1, _RETRIES + 1):
            try:
                collector.collect(source, dest, self._collector_context)
                return
            except InvalidInput as exc:
                raise self._fail(submission_id, "data_download", exc.detail) from None
            except StorageError as exc:
                if attempt == _RETRIES:
                    raise self._fail(submission_id, "data_download", exc.detail) from None
                self._step(submission_id, "data_download", "T", f"attempt {attempt}: {exc.detail}")
                time.sleep(0.5 * 2**attempt)

    def _transfer(self, source_id: str, files: list[StagedFile]) -> None:
        # Re-runs replace what an interrupted run left: the draft holds exactly the staged files.
        for entry in self._datasets.manifest(SYSTEM_IDENTITY, source_id):
            self._datasets.delete_file(SYSTEM_IDENTITY, source_id, entry.path)
        for item in files:
            with item.path.open("rb") as handle:
                self._datasets.put_file(
                    SYSTEM_IDENTITY,
                    source_id,
                    item.relpath,
                    iter_chunks(handle),
                )

    def _mdf_records(
        self, source_id: str, request: SubmissionRequest, records: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        name, _major, _minor = parse_source_id(source_id)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        acl = [str(p) for p in request.mdf.get("acl") or [PUBLIC]]
        base = f"{self._base_url}/api/datasets/{source_id}/files"
        out = []
        for scroll_id, record in enumerate(records, start=1):
            files = [
                {
                    **f,
                    "url": f"{base}/{f.get('path') or f['filename']}",
                }
                for f in record.get("files", [])
            ]
            block = {
                "source_name": name,
                "source_id": source_id,
                "scroll_id": scroll_id,
                "resource_type": "record",
                "ingest_date": now,
                "acl": acl,
            }
            merged = merge_blocks(record, {"mdf": block, "files": files})
            if request.custom:
                # MDF: a field's description travels beside it as `<field>_desc`.
                described = {
                    f"{k}_desc": v for k, v in request.custom_desc.items() if k in request.custom
                }
                merged["custom"] = {**request.custom, **described, **merged.get("custom", {})}
            out.append(merged)
        return out

    def _index(self, source_id: str, request: SubmissionRequest, document: dict[str, Any]) -> None:
        name, major, _minor = parse_source_id(source_id)
        index = "mdf-test" if request.test else "mdf"
        acl = [str(p) for p in request.mdf.get("acl") or [PUBLIC]]
        dataset_acl = [str(p) for p in request.dataset_acl] or acl
        # MDF keeps only the newest version searchable; older ones stay downloadable and citable.
        task = self._search.delete_by_query(
            SYSTEM_IDENTITY, index, {"q": f'mdf.source_name:"{name}"', "advanced": True}
        )
        self._search.wait(task.task_id)
        # A metadata-only version shares its records with the version it came from: point them here.
        base = f"{self._base_url}/api/datasets/{source_id}/files"
        records = [
            {
                **r,
                "mdf": {**r.get("mdf", {}), "source_id": source_id},
                "files": [
                    {**f, "url": f"{base}/{f['path']}"} if "path" in f else f
                    for f in r.get("files", [])
                ],
            }
            for r in self._datasets.records(SYSTEM_IDENTITY, source_id)
        ]
        mdf = {
            "source_name": name,
            "source_id": source_id,
            "scroll_id": 0,
            "resource_type": "dataset",
            "ingest_date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "acl": dataset_acl,
            "version": major,
        }
        content: dict[str, Any] = {**document, "mdf": {**document.get("mdf", {}), **mdf}}
        dataset_entry = {"subject": source_id, "visible_to": dataset_acl, "content": content}
        problems = validation_errors(content, "dataset")
        if problems:
            path, message = problems[0]
            raise InvalidInput(
                f"the dataset entry breaks the dataset schema at {path}: {message}", field=path
            )
        entries = [dataset_entry] + [
            {"subject": f"{source_id}.{r['mdf']['scroll_id']}", "visible_to": acl, "content": r}
            for r in records
        ]
        for start in range(0, len(entries), 5000):
            body = {
                "ingest_type": "GMetaList",
                "ingest_data": {"gmeta": entries[start : start + 5000]},
            }
            task = self._search.ingest(SYSTEM_IDENTITY, index, body)
            done = self._search.wait(task.task_id, timeout=600)
            if done.state != "SUCCESS":
                raise StorageError(f"search ingest failed: {done.message}")


CODES_TEXT = {"S": "extraction succeeded", "N": "extraction not requested"}


def _validated(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Records that pass the record schema: a failing extracted block is dropped and reported."""
    allowed = set(schema("record")["properties"])
    dropped: list[str] = []
    out = []
    for record in records:
        for key in [k for k in record if k not in allowed]:
            dropped.append(f"{key}: not an MDF block")
            record.pop(key)
        for path, message in validation_errors(record, "record"):
            block = path.split(".")[0]
            if block in ("mdf", "files", "(top)"):
                raise InvalidInput(
                    f"record breaks the record schema at {path}: {message}", field=path
                )
            if block in record:
                dropped.append(f"{path}: {message}")
                record.pop(block)
        out.append(record)
    return out, dropped


def _staged_files(root: Path) -> list[StagedFile]:
    if not root.exists():
        return []
    return [
        StagedFile(path=p, relpath=p.relative_to(root).as_posix(), size=p.stat().st_size)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]


def _matches(block: dict[str, Any], flt: Sequence[Any]) -> bool:
    """MDF's (field, op, value) filters over a status block."""
    if len(flt) != 3:
        raise InvalidInput("a filter is [field, operator, value]", field="filters")
    field, op, value = flt
    have = block.get(field)
    if field == "source_name":
        have = parse_source_id(block["source_id"])[0]
    if op not in _OPERATORS:
        raise InvalidInput(f"unknown filter operator {op!r}", field="filters")
    if op in ("==", "!="):
        return bool((have == value) == (op == "=="))
    return have is not None and bool(_OPERATORS[op](have, value))


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
