"""The pipeline a job runs for one submission, step by step, with MDF's status codes.

collect → transfer into the Publish draft → extract (+ derived previews) → curation gate →
publish → index → dispatch → clean up. Each step is idempotent, so a job a restart re-queues runs
from the top: the draft's files are replaced, a published version is not published twice.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import shutil
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from matterhub.blobs.base import iter_chunks
from matterhub.catalog.models import Submission
from matterhub.connect.base import ConnectBase, Stop
from matterhub.connect.collectors.base import over_budget
from matterhub.connect.dispatch import Dispatch
from matterhub.connect.extractors.base import DerivedFile, ExtractionContext, StagedTree
from matterhub.connect.extractors.registry import ExtractionResult
from matterhub.core.connect import SubmissionRequest, merge_blocks
from matterhub.core.datasets import parse_source_id
from matterhub.core.errors import InvalidInput, MatterHubError, StorageError
from matterhub.core.identity import PUBLIC, SYSTEM_IDENTITY
from matterhub.core.optimade import INDEX_KEY, structure_properties
from matterhub.core.records import with_title
from matterhub.core.schemas import schema, validation_errors
from matterhub.jobs import Job

__all__ = ["DERIVED_DIR", "ConnectPipeline"]

log = logging.getLogger(__name__)

_RETRIES = 3
_INGEST_BATCH = 5000
# Files recorded per catalog transaction while transferring a submission into its draft.
_TRANSFER_BATCH = 2000
# Previews and open-format copies live beside the data, under this folder of the version.
DERIVED_DIR = ".derived"


class ConnectPipeline(ConnectBase):
    """The job handler and its steps."""

    def _handle(self, job: Job) -> dict[str, Any]:
        """Run (or resume) the submission named by a job; its steps record the outcome."""
        submission_id = str(job.payload["submission_id"])
        return {"submission_id": submission_id, "status": self._process(submission_id)}

    def _process(self, submission_id: str) -> str:
        with self._catalog.transaction() as session:
            sub = session.get(Submission, submission_id)
            if sub is None or sub.status not in ("pending", "processing"):
                return sub.status if sub else "missing"  # finished, cancelled or with a curator
            sub.status = "processing"
            request = SubmissionRequest.model_validate(sub.request)
            source_id = sub.source_id
            codes = {s.step: s.code for s in sub.steps}
        try:
            done_before = codes["curation"] in ("M", "S") or self._published(source_id)
            if not request.update_metadata_only and not done_before:
                self._before_curation(submission_id, source_id, request)
            self._after_curation(submission_id, source_id, request)
        except Stop as stop:
            with self._catalog.transaction() as session:
                status = session.get(Submission, submission_id).status  # type: ignore[union-attr]
            if status == "failed":
                self._notify(submission_id, "submission.failed", str(stop))
            return status
        self._finish(submission_id, "succeeded")
        for source in request.data_sources:  # published: uploaded copies have served their purpose
            self.discard_upload(source)
        self._notify(submission_id, "submission.succeeded")
        return "succeeded"

    def _published(self, source_id: str) -> bool:
        """A crash after publishing: re-running resumes at indexing (sources may be gone)."""
        return self._datasets.get(SYSTEM_IDENTITY, source_id).state == "published"

    # before the curation gate -----------------------------------------------------------------

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
        files = StagedTree(staged)  # walked from disk when needed, never held whole
        count, size = files.summary()
        budget = self._collector_context.budget_bytes or self._collector_context.max_bytes
        if size > budget:  # the collectors stop early; this is the rule
            over = over_budget(f"{len(request.data_sources)} sources", self._collector_context)
            raise self._fail(submission_id, "data_download", over.detail)
        self._step(submission_id, "data_download", "S", f"{count} files")
        self._step(submission_id, "data_transfer", "P")
        try:
            self._transfer(source_id, files)
        except MatterHubError as exc:
            raise self._fail(submission_id, "data_transfer", exc.detail) from None
        self._step(submission_id, "data_transfer", "S")
        if request.no_extract:
            self._step(submission_id, "extracting", "N")
        else:
            self._extracting(submission_id, source_id, request, files, count)
        if request.curation:
            self._datasets.submit_for_curation(SYSTEM_IDENTITY, source_id)
            self._step(submission_id, "curation", "P", datetime.now(UTC).isoformat())
            self._set_status(submission_id, "curation")
            raise Stop("waiting for a curator")
        self._step(submission_id, "curation", "N")

    def _collect(self, submission_id: str, source: str, dest: Path) -> None:
        """Collect one source within what is left of the submission's byte budget.

        Whatever goes wrong fails the submission with the reason: a refusal or a crash in a
        collector (a plugin's too) never leaves the step pending.
        """
        collector = next((c for c in self._collectors if c.accepts(source)), None)
        if collector is None:
            raise self._fail(
                submission_id, "data_download", f"{source}: not a recognised data source"
            )
        base = self._collector_context
        budget = base.budget_bytes or base.max_bytes
        # One budget per submission: each source gets what the ones before it left.
        left = budget - _tree_size(dest)
        if left < 0:
            raise self._fail(submission_id, "data_download", over_budget(source, base).detail)
        context = dataclasses.replace(base, max_bytes=left, budget_bytes=budget)
        for attempt in range(1, _RETRIES + 1):
            try:
                collector.collect(source, dest, context)
                return
            except InvalidInput as exc:
                raise self._fail(submission_id, "data_download", exc.detail) from None
            except StorageError as exc:
                if attempt == _RETRIES:
                    raise self._fail(submission_id, "data_download", exc.detail) from None
                self._step(submission_id, "data_download", "T", f"attempt {attempt}: {exc.detail}")
                time.sleep(0.5 * 2**attempt)
            except Stop:
                raise
            except Exception as exc:  # a collector's bug is the submission's failure, not a hang
                log.exception("collector %s crashed on %s", collector.name, source)
                detail = f"{source}: the {collector.name} collector failed ({type(exc).__name__}: "
                raise self._fail(submission_id, "data_download", f"{detail}{exc})"[:500]) from None

    def _transfer(self, source_id: str, files: StagedTree) -> None:
        # Re-runs replace what an interrupted run left: the draft holds exactly the staged files.
        self._datasets.clear_files(SYSTEM_IDENTITY, source_id)
        batch: list[tuple[str, Path]] = []
        for f in files:
            batch.append((f.relpath, f.path))
            if len(batch) == _TRANSFER_BATCH:
                self._datasets.put_local_files(SYSTEM_IDENTITY, source_id, batch)
                batch = []
        if batch:
            self._datasets.put_local_files(SYSTEM_IDENTITY, source_id, batch)

    def _extracting(
        self,
        submission_id: str,
        source_id: str,
        request: SubmissionRequest,
        files: StagedTree,
        count: int,
    ) -> None:
        self._step(submission_id, "extracting", "P")
        config = {"previews": True, **request.extraction_config}
        context = ExtractionContext(config=config, index=dict(request.index))
        extracted = self._extract(files, context)
        # An extract function may give the whole result or parts of it (`iter_extractors`):
        # each part's previews are stored and its records written before the next is made.
        parts = [extracted] if isinstance(extracted, ExtractionResult) else extracted
        warnings: list[dict[str, str]] = []  # the first; counted, not kept (flat memory)
        n_previews = n_warnings = 0

        def pairs() -> Iterator[tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]]:
            nonlocal n_previews, n_warnings
            for part in parts:
                previews = self._store_derived(source_id, part.derived)
                n_previews += sum(len(v) for v in previews.values())
                n_warnings += len(part.warnings)
                if not warnings:
                    warnings.extend(part.warnings[:1])
                for record in part.records:
                    yield record, previews

        dropped: list[str] = []
        # Streamed: each record is merged, checked and written before the next is built.
        merged = self._mdf_records(source_id, request, pairs())
        try:
            records = self._datasets.set_records(
                SYSTEM_IDENTITY, source_id, _valid_records(merged, dropped)
            )
        except InvalidInput as exc:
            raise self._fail(submission_id, "extracting", exc.detail) from None
        detail = f"{records} records from {count} files"
        if n_previews:
            detail += f"; {n_previews} previews"
        if dropped:
            detail += f"; {len(dropped)} blocks failed the record schema, e.g. {dropped[0]}"
        if warnings:
            first = warnings[0]
            detail += f"; {n_warnings} warnings, e.g. {first['path']}: {first['message']}"
        self._step(submission_id, "extracting", "M" if warnings or dropped else "S", detail)

    def _store_derived(
        self, source_id: str, derived: list[DerivedFile]
    ) -> dict[str, list[dict[str, Any]]]:
        """Put previews into the draft under `.derived/<source path>/`; returns links per source."""
        base = f"{self._base_url}/api/datasets/{source_id}/files"
        links: dict[str, list[dict[str, Any]]] = {}
        for item in derived:
            path = f"{DERIVED_DIR}/{item.source}/{item.name}"
            self._datasets.put_file(
                SYSTEM_IDENTITY, source_id, path, iter_chunks(io.BytesIO(item.data))
            )
            links.setdefault(item.source, []).append(
                {
                    "path": path,
                    "url": f"{base}/{path}",
                    "media_type": item.media_type,
                    "length": len(item.data),
                }
            )
        return links

    def _mdf_records(
        self,
        source_id: str,
        request: SubmissionRequest,
        pairs: Iterable[tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]],
    ) -> Iterator[dict[str, Any]]:
        """Each record (with the previews of its part's files) as the `mdf` record it becomes."""
        name, _major, _minor = parse_source_id(source_id)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        acl = [str(p) for p in request.mdf.get("acl") or [PUBLIC]]
        base = f"{self._base_url}/api/datasets/{source_id}/files"
        title = _dataset_title(request.dc)
        for scroll_id, (record, previews) in enumerate(pairs, start=1):
            files = []
            for f in record.get("files", []):
                path = f.get("path") or f["filename"]
                entry = {**f, "url": f"{base}/{path}"}
                if path in previews:
                    entry["previews"] = previews[path]
                files.append(entry)
            block = {
                "source_name": name,
                "source_id": source_id,
                "scroll_id": scroll_id,
                "resource_type": "record",
                "ingest_date": now,
                "acl": acl,
            }
            merged = with_title(
                merge_blocks(record, {"mdf": block, "files": files}), dataset_title=title
            )
            if request.custom:
                # MDF: a field's description travels beside it as `<field>_desc`.
                described = {
                    f"{k}_desc": v for k, v in request.custom_desc.items() if k in request.custom
                }
                merged["custom"] = {**request.custom, **described, **merged.get("custom", {})}
            yield merged

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

    # after the curation gate ------------------------------------------------------------------

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
        now = datetime.now(UTC)
        mdf = {
            "source_name": name,
            "source_id": source_id,
            "scroll_id": 0,
            "resource_type": "dataset",
            "ingest_date": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "acl": dataset_acl,
            "version": major,
        }
        content: dict[str, Any] = {**document, "mdf": {**document.get("mdf", {}), **mdf}}
        problems = validation_errors(content, "dataset")
        if problems:
            path, message = problems[0]
            raise InvalidInput(
                f"the dataset entry breaks the dataset schema at {path}: {message}", field=path
            )
        batch: list[dict[str, Any]] = [
            {"subject": source_id, "visible_to": dataset_acl, "content": content}
        ]
        # Streamed from records.jsonl, one batch at a time: memory stays flat in the record count.
        for record in self._datasets.iter_records(SYSTEM_IDENTITY, source_id):
            record = _pointed_at(record, source_id, self._base_url, _dataset_title(document))
            subject = f"{source_id}.{record['mdf']['scroll_id']}"
            # Structures get OPTIMADE's properties, so its filters run in the search query.
            optimade = structure_properties(
                record,
                id=f"{name}_{record['mdf']['scroll_id']}",
                immutable_id=subject,
                last_modified=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            if optimade is not None:
                record = {**record, INDEX_KEY: optimade}
            batch.append({"subject": subject, "visible_to": acl, "content": record})
            if len(batch) == _INGEST_BATCH:
                self._ingest(index, batch)
                batch = []
        if batch:
            self._ingest(index, batch)

    def _ingest(self, index: str, entries: list[dict[str, Any]]) -> None:
        body = {"ingest_type": "GMetaList", "ingest_data": {"gmeta": entries}}
        task = self._search.ingest(SYSTEM_IDENTITY, index, body)
        done = self._search.wait(task.task_id, timeout=600)
        if done.state != "SUCCESS":
            raise StorageError(f"search ingest failed: {done.message}")

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
            archive_url=f"{self._base_url}/api/datasets/{source_id}/archive.zip?root=false&ro_crate=false",
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


def _dataset_title(document: dict[str, Any]) -> str | None:
    """The first title of a `dc` block, or of a document holding one."""
    dc = document.get("dc", document)
    titles = dc.get("titles") if isinstance(dc, dict) else None
    first = titles[0] if isinstance(titles, list) and titles else None
    if not isinstance(first, dict) or not first.get("title"):
        return None
    return str(first["title"])


def _pointed_at(
    record: dict[str, Any], source_id: str, base_url: str, dataset_title: str | None = None
) -> dict[str, Any]:
    """A record pointed at this version: a metadata-only version shares its records with the one
    it came from, so its `mdf.source_id` and file URLs are rewritten here (and a record stored
    before records had titles gets its `mdf.title`)."""
    base = f"{base_url}/api/datasets/{source_id}/files"
    record = with_title(record, dataset_title=dataset_title)
    return {
        **record,
        "mdf": {**record.get("mdf", {}), "source_id": source_id},
        "files": [
            {**f, "url": f"{base}/{f['path']}"} if "path" in f else f
            for f in record.get("files", [])
        ],
    }


def _validated(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Records that pass the record schema: a failing extracted block is dropped and reported."""
    dropped: list[str] = []
    return list(_valid_records(records, dropped)), dropped


def _valid_records(
    records: Iterable[dict[str, Any]], dropped: list[str]
) -> Iterator[dict[str, Any]]:
    """Each record checked against the record schema as it passes; dropped blocks are noted.

    Raises:
        InvalidInput: the `mdf` or `files` block (ours, not an extractor's) breaks the schema.
    """
    allowed = set(schema("record")["properties"])
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
        yield record


def _tree_size(root: Path) -> int:
    """Bytes of the regular files under `root` (what a submission has staged so far)."""
    if not root.exists():
        return 0
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
