"""Taking submissions in: new datasets, updates, metadata-only updates, uploads, cancellation.

Everything a caller is told was accepted is in the catalog first: the submission, its 12 steps
and the job that will run it commit in one transaction before the 202.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterable
from typing import IO, Any

from sqlalchemy import select

from matterhub.catalog.models import Dataset, Submission
from matterhub.catalog.principals import submission_access
from matterhub.connect.base import ConnectBase
from matterhub.connect.collectors.base import stage_path
from matterhub.connect.collectors.uploads import SCHEME, upload_root
from matterhub.core.connect import SubmissionRequest, sandbox_source_name
from matterhub.core.datasets import VersionPublic, check_source_name, derive_source_name
from matterhub.core.errors import (
    Conflict,
    InvalidInput,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
)
from matterhub.core.identity import SYSTEM_IDENTITY, Identity
from matterhub.core.organizations import apply_organizations

__all__ = ["ConnectIntake"]

_CHUNK = 1 << 20


class ConnectIntake(ConnectBase):
    """submit, update_metadata, stage_upload and cancel."""

    def submit(self, identity: Identity, request: SubmissionRequest) -> dict[str, Any]:
        """Record a submission and its draft version, queue it, and return its source_id."""
        if identity.is_anonymous:
            raise Unauthenticated("sign in to submit datasets")
        self._check_uploads(identity, request.data_sources)
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
        # Access is decided here, before anything is stored or published: refused when
        # malformed, owner-only when empty, and stored resolved so every later step agrees.
        # An update that names no access list keeps the dataset's (never falls back to public).
        current = self._datasets.get(SYSTEM_IDENTITY, name) if dataset is not None else None
        request = self._resolve_access(request, owner or identity.user_id or "", current)
        visible = list(request.mdf["acl"])
        dc = self._dc(request)
        if dataset is None:
            version = self._datasets.create(
                identity,
                dc=dc,
                source_name=name,
                visible_to=visible,
                blocks={"mdf": {"acl": visible}},
                test=request.test,
            )
        else:
            version = self._next_version(identity, name, dc, visible)
        self._record(identity, version.source_id, request, test=request.test)
        return {"source_id": version.source_id, "success": True, "error": None, "status_code": 202}

    def update_metadata(
        self, identity: Identity, source_id: str, request: SubmissionRequest
    ) -> dict[str, Any]:
        """MDF's /update/<source_id>: new metadata, same data — a new minor version, re-indexed."""
        if identity.is_anonymous:
            raise Unauthenticated("sign in to update datasets")
        self._datasets.require(identity, source_id, "manage")  # rights before any state
        current = self._datasets.get(identity, source_id)
        # What names the dataset may be sent back unchanged (mdf-connect-client resends
        # `mdf.source_name` when it was set); changing it is refused, as MDF does.
        unchanged = {"source_id": current.source_id, "source_name": current.source_name}
        for forbidden in ("source_id", "source_name", "scroll_id", "version"):
            if forbidden in request.mdf and request.mdf[forbidden] != unchanged.get(forbidden):
                raise InvalidInput(
                    f"mdf.{forbidden} cannot be changed by an update", field=f"mdf.{forbidden}"
                )
        request = request.model_copy(
            update={"mdf": {k: v for k, v in request.mdf.items() if k not in unchanged}}
        )
        if not current.is_latest:
            raise Conflict(f"{source_id} is not the latest version", field="source_id")
        with self._catalog.transaction() as session:
            owner_id = session.scalar(
                select(Dataset.owner_id).where(Dataset.source_name == current.source_name)
            )
        request = self._resolve_access(request, owner_id or "", current)
        version = self._datasets.update_metadata(
            identity,
            source_id,
            dc=self._dc(request) or None,
            visible_to=list(request.mdf["acl"]),
        )
        stored = request.model_copy(update={"update_metadata_only": True})
        self._record(identity, version.source_id, stored, test=source_id.startswith("_test_"))
        return {"source_id": version.source_id, "success": True, "error": None, "status_code": 202}

    def _record(
        self, identity: Identity, source_id: str, request: SubmissionRequest, *, test: bool
    ) -> None:
        """The submission, its steps and its job, in one transaction; then wake the worker."""
        with self._catalog.transaction() as session:
            sub = self._new_submission(
                session,
                source_id=source_id,
                submitter_id=identity.user_id or "",
                request=request.model_dump(mode="json"),
                test=test,
            )
            self._enqueue(session, sub.id, identity.user_id)
        self._wake()

    def _resolve_access(
        self, request: SubmissionRequest, owner_id: str, current: VersionPublic | None
    ) -> SubmissionRequest:
        """The request with `mdf.acl` and `dataset_acl` resolved to URNs (see principals).

        An update that names no access list keeps the current version's, and the dataset
        entry's list of the submission it updates; it never falls back to public.
        """
        acl: Any = request.mdf.get("acl")
        dataset_acl: Any = request.dataset_acl
        if current is not None and "acl" not in request.mdf and not dataset_acl:
            acl = list(current.visible_to)
            dataset_acl = self._last_dataset_acl(current.source_id) or acl
        with self._catalog.transaction() as session:
            access = submission_access(session, acl=acl, dataset_acl=dataset_acl, owner_id=owner_id)
        mdf = {**request.mdf, "acl": access.records}
        return request.model_copy(update={"mdf": mdf, "dataset_acl": access.dataset})

    def _last_dataset_acl(self, source_id: str) -> list[str]:
        with self._catalog.transaction() as session:
            stored = session.scalar(
                select(Submission.request)
                .where(Submission.source_id == source_id)
                .order_by(Submission.created_at.desc())
            )
        return [str(p) for p in (stored or {}).get("dataset_acl") or []]

    def _next_version(
        self, identity: Identity, name: str, dc: dict[str, Any], visible: list[str]
    ) -> VersionPublic:
        """The version an update fills: a new one, or the unpublished one it supersedes."""
        try:
            fresh = self._datasets.new_version(identity, name, dc=dc)
            # The new version's files take this submission's access list, not the old one's.
            return self._datasets.update_metadata(identity, fresh.source_id, visible_to=visible)
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
        return self._datasets.update_metadata(
            identity, version.source_id, dc=dc, visible_to=visible
        )

    @staticmethod
    def _dc(request: SubmissionRequest) -> dict[str, Any]:
        dc = dict(request.dc)
        if request.tags:  # MDF puts tags into dc.subjects
            subjects = list(dc.get("subjects") or [])
            subjects += [{"subject": tag} for tag in request.tags]
            dc["subjects"] = subjects
        return dc

    # uploads ----------------------------------------------------------------------------------

    def stage_upload(
        self, identity: Identity, files: Iterable[tuple[str, IO[bytes]]], *, max_bytes: int
    ) -> str:
        """Keep uploaded files for a submission; returns the `upload://<id>` data source.

        Raises:
            InvalidInput: a path is empty, absolute or escapes with `..` (field `files`).
            PayloadTooLarge: the files together exceed `max_bytes`.
        """
        if identity.is_anonymous:
            raise Unauthenticated("sign in to upload files")
        upload_id = secrets.token_hex(16)
        root = upload_root(self._collector_context, f"{SCHEME}{upload_id}")
        assert root is not None  # a hex id is always well formed
        target_root = root / "files"
        target_root.mkdir(parents=True)
        (root / "owner").write_text(identity.user_id or "")
        total = 0
        count = 0
        try:
            for relpath, stream in files:
                try:
                    target = stage_path(target_root, relpath)
                except InvalidInput:
                    raise InvalidInput(f"unsafe file name {relpath!r}", field="files") from None
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as out:
                    while chunk := stream.read(_CHUNK):
                        total += len(chunk)
                        if total > max_bytes:
                            raise PayloadTooLarge(
                                f"the uploaded files exceed {max_bytes} bytes", field="files"
                            )
                        out.write(chunk)
                count += 1
            if count == 0:
                raise InvalidInput("no files were uploaded", field="files")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)  # nothing half-uploaded stays behind
            raise
        return f"{SCHEME}{upload_id}"

    def _check_uploads(self, identity: Identity, sources: list[str]) -> None:
        """An `upload://` source must exist and belong to the submitter."""
        for source in sources:
            if not source.startswith(SCHEME):
                continue
            root = upload_root(self._collector_context, source)
            owner = root / "owner" if root is not None else None
            if owner is None or not owner.is_file():
                raise InvalidInput(f"{source}: no such upload", field="data_sources")
            if owner.read_text() != (identity.user_id or "") and not identity.bypasses_acl:
                raise PermissionDenied(f"{source} was uploaded by someone else")

    # cancelling -------------------------------------------------------------------------------

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
