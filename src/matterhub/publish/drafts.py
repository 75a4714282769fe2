"""Opening and editing drafts: new datasets, new versions and metadata updates."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import String, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from matterhub.catalog.models import Dataset, DatasetFile, DatasetVersion, User, utcnow
from matterhub.core.citations import datacite_attributes
from matterhub.core.datasets import (
    VersionPublic,
    check_dc,
    check_source_name,
    derive_source_name,
    format_source_id,
    next_version,
)
from matterhub.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, PIDError
from matterhub.core.identity import PUBLIC, Identity
from matterhub.publish.base import update_unclaimed
from matterhub.publish.lifecycle import DatasetLifecycle

__all__ = ["DatasetDrafts"]

log = logging.getLogger(__name__)

_OPEN = ("draft", "curation")


class DatasetDrafts(DatasetLifecycle):
    """Creating and changing drafts; a change to a published version publishes a new minor."""

    def create(
        self,
        identity: Identity,
        *,
        dc: Mapping[str, Any],
        source_name: str | None = None,
        visible_to: Sequence[str] = (PUBLIC,),
        shared_with: Sequence[str] = (),
        blocks: Mapping[str, Any] | None = None,
        test: bool = False,
        owner: str | None = None,
    ) -> VersionPublic:
        """Start a dataset: its first version `<source_name>_v1.0`, a private draft."""
        now = utcnow()
        dc = check_dc(dc, year=now.year)
        name = check_source_name(source_name) if source_name else derive_source_name(dc)
        document = self._blocks(blocks)
        document["dc"] = dc
        with self._catalog.transaction() as session:
            owner_id = self._owner_id(session, identity, owner)
            ds = Dataset(source_name=name, owner_id=owner_id, test=test)
            ver = DatasetVersion(
                source_id=format_source_id(name, 1, 0),
                major=1,
                minor=0,
                state="draft",
                visible_to=self._resolve_principals(session, visible_to, field="visible_to"),
                shared_with=self._resolve_principals(session, shared_with, field="shared_with"),
                document=document,
            )
            try:
                with session.begin_nested():
                    session.add(ds)
                    session.flush()
                    ver.dataset_id = ds.id
                    session.add(ver)
                    session.flush()
            except IntegrityError:
                raise Conflict(
                    f"dataset {name!r} exists; add a version to it instead", field="source_name"
                ) from None
            source_id = ver.source_id
        self._reserve_pid(source_id)
        return self.get(identity, source_id)

    @staticmethod
    def _blocks(blocks: Mapping[str, Any] | None) -> dict[str, Any]:
        doc = dict(blocks or {})
        for key in ("dc", "files"):
            if key in doc:
                raise InvalidInput(f"{key!r} is not a free block here", field=key)
        for key in ("source_id", "source_name", "scroll_id", "version"):
            if key in (doc.get("mdf") or {}):
                raise InvalidInput(f"mdf.{key} is set by the server", field=f"mdf.{key}")
        return doc

    def new_version(
        self, identity: Identity, source_name: str, *, dc: Mapping[str, Any] | None = None
    ) -> VersionPublic:
        """Open the next major version as a draft holding the latest version's files."""
        with self._catalog.transaction() as session:
            ds = session.scalar(select(Dataset).where(Dataset.source_name == source_name))
            if ds is None:
                raise NotFound(f"no dataset {source_name!r}", field="source_name")
            versions = session.scalars(
                select(DatasetVersion)
                .where(DatasetVersion.dataset_id == ds.id)
                .order_by(DatasetVersion.major.desc(), DatasetVersion.minor.desc())
            ).all()
            base = versions[0]
            self._policy.require(
                identity, self._access(session, ds, base), "manage", what="dataset"
            )
            if any(v.state in (*_OPEN, "rejected") for v in versions):
                raise Conflict(f"{source_name} has an unpublished version already", field="state")
            published = [v for v in versions if v.state == "published"] or [base]
            src = published[0]
            major, minor = next_version((base.major, base.minor), new_data=True)
            document = dict(src.document)
            if dc is not None:
                document["dc"] = check_dc(dc, year=utcnow().year)
            ver = DatasetVersion(
                dataset_id=ds.id,
                source_id=format_source_id(ds.source_name, major, minor),
                major=major,
                minor=minor,
                state="draft",
                visible_to=list(src.visible_to),
                shared_with=list(src.shared_with),
                document=document,
            )
            self._insert_version(session, ver)
            self._copy_files(session, src, ver)
            source_id = ver.source_id
        self._reserve_pid(source_id)
        return self.get(identity, source_id)

    @staticmethod
    def _insert_version(session: Session, ver: DatasetVersion) -> None:
        try:
            with session.begin_nested():
                session.add(ver)
                session.flush()
        except IntegrityError:
            raise Conflict(
                f"{ver.source_id} exists already (a concurrent change?)", field="source_id"
            ) from None

    @staticmethod
    def _copy_files(session: Session, src: DatasetVersion, dst: DatasetVersion) -> None:
        """The new version starts with the old one's files (the same blobs), copied in SQL:
        nothing per file passes through Python."""
        columns = ("path", "blob_key", "size", "sha512", "mime_type", "visible_to")
        session.execute(
            insert(DatasetFile).from_select(
                ["version_id", *columns],
                select(
                    literal(dst.id, String).label("version_id"),
                    *(getattr(DatasetFile, c) for c in columns),
                ).where(DatasetFile.version_id == src.id),
            )
        )
        dst.file_count = src.file_count
        dst.total_bytes = src.total_bytes
        session.flush()

    def update_metadata(
        self,
        identity: Identity,
        sid: str,
        *,
        dc: Mapping[str, Any] | None = None,
        visible_to: Sequence[str] | None = None,
        shared_with: Sequence[str] | None = None,
        blocks: Mapping[str, Any] | None = None,
    ) -> VersionPublic:
        """Change a draft in place; on a published version, publish a new minor version instead.

        A published version is never changed: the update becomes `<name>_v<major>.<minor+1>`,
        holding the same files, published at once with its own identifier.
        """
        with self._catalog.transaction() as session:
            ds, ver = self._load(session, identity, sid, "manage")
            new_doc = dict(ver.document)
            if blocks is not None:
                new_doc = {**self._blocks(blocks), "dc": new_doc.get("dc", {})}
            if dc is not None:
                new_doc["dc"] = check_dc(dc, year=utcnow().year)
            new_visible = (
                self._resolve_principals(session, visible_to, field="visible_to")
                if visible_to is not None
                else list(ver.visible_to)
            )
            new_shared = (
                self._resolve_principals(session, shared_with, field="shared_with")
                if shared_with is not None
                else list(ver.shared_with)
            )
            if ver.state in ("draft", "rejected"):
                changes = {
                    "document": new_doc,
                    "visible_to": new_visible,
                    "shared_with": new_shared,
                }
                if not update_unclaimed(session, ver.id, ver.state, changes):
                    raise Conflict(f"{ver.source_id} is being published", field="state")
                source_id = ver.source_id
                new_minor = False
            elif ver.state == "published":
                if ds.latest_source_id != ver.source_id:
                    raise Conflict(
                        f"{ver.source_id} is not the latest version ({ds.latest_source_id}); "
                        "update that one",
                        field="source_id",
                    )
                major, minor = next_version((ver.major, ver.minor), new_data=False)
                nxt = DatasetVersion(
                    dataset_id=ds.id,
                    source_id=format_source_id(ds.source_name, major, minor),
                    major=major,
                    minor=minor,
                    state="draft",
                    visible_to=new_visible,
                    shared_with=new_shared,
                    document=new_doc,
                )
                self._insert_version(session, nxt)
                self._copy_files(session, ver, nxt)
                self._copy_records(ds, ver, nxt)
                source_id = nxt.source_id
                new_minor = True
            else:
                raise Conflict(
                    f"{ver.source_id} is {ver.state}; its metadata cannot change", field="state"
                )
        if new_minor:
            return self._publish(identity, source_id, skip_rights=True)
        return self.get(identity, source_id)

    def _copy_records(self, ds: Dataset, src: DatasetVersion, dst: DatasetVersion) -> None:
        src_key = f"{self._folder(ds.source_name, src.major, src.minor)}/records.jsonl"
        dst_key = f"{self._folder(ds.source_name, dst.major, dst.minor)}/records.jsonl"
        if self._blobs.exists(src_key):
            self._blobs.copy(src_key, dst_key)

    def _owner_id(self, session: Session, identity: Identity, owner: str | None) -> str:
        if owner is not None:
            if not identity.bypasses_acl:
                raise PermissionDenied("only administrators may create datasets for others")
            uid = session.scalar(select(User.id).where(User.username == owner))
            if uid is None:
                raise InvalidInput(f"no user named {owner!r}", field="owner")
            return uid
        if identity.user_id is None:
            raise PermissionDenied("sign in to create a dataset (anonymous callers cannot)")
        return identity.user_id

    def _reserve_pid(self, source_id: str) -> None:
        """Reserve an identifier for a new draft; a provider outage only delays it to publish."""
        try:
            with self._catalog.transaction() as session:
                ver = session.scalar(
                    select(DatasetVersion).where(DatasetVersion.source_id == source_id)
                )
                if ver is None or ver.pid is not None:
                    return
                attrs = datacite_attributes(self._cited(ver))
            pid = self.pids.reserve(source_id, attrs)
            with self._catalog.transaction() as session:
                session.execute(
                    update(DatasetVersion)
                    .where(DatasetVersion.source_id == source_id, DatasetVersion.pid.is_(None))
                    .values(pid=pid, pid_state="reserved")
                )
        except PIDError as exc:
            log.warning("could not reserve an identifier for %s yet: %s", source_id, exc.detail)
