"""The dataset repository: drafts, uploads, publish, withdraw, downloads and citations.

A version's bytes live under `datasets/<source_name>/v<major>.<minor>/` in the blob store:
`files/<path>…`, then at publish `dataset.json`, `records.jsonl` and `manifest.json`. Once
published, nothing under that folder is written again; a later version that keeps a file points
at the same blob (the `dataset_files.blob_key`), so a metadata-only update copies no bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from matterhub.blobs import BlobStore
from matterhub.blobs.base import BlobInfo, BlobWriter, normalize_sha512
from matterhub.catalog import Catalog
from matterhub.catalog.models import (
    Dataset,
    DatasetFile,
    DatasetVersion,
    Group,
    UploadSession,
    User,
    utcnow,
)
from matterhub.core.citations import CitedVersion, cite, datacite_attributes
from matterhub.core.datasets import (
    DatasetPublic,
    ManifestEntry,
    UploadPublic,
    VersionAccess,
    VersionPublic,
    check_dc,
    check_file_path,
    check_source_name,
    check_transition,
    derive_source_name,
    format_source_id,
    next_version,
    parse_source_id,
    version_access,
)
from matterhub.core.errors import (
    Conflict,
    InvalidInput,
    MatterHubError,
    NotFound,
    PermissionDenied,
    PIDError,
)
from matterhub.core.identity import PUBLIC, Identity, group_principal, user_principal
from matterhub.core.policy import Action, Policy
from matterhub.publish.bundles import ArchiveMember, stream_tar, stream_zip
from matterhub.publish.pid import PIDProvider

__all__ = ["DatasetService", "FileHandle", "PendingWrite"]

log = logging.getLogger(__name__)

_PUBLISH_CLAIM = timedelta(minutes=15)
"""How long a publish may hold its claim before another one may take over (a crashed worker)."""

_OPEN = ("draft", "curation")


@dataclass(frozen=True, slots=True)
class FileHandle:
    """A readable file of a version: where its bytes are and what they are."""

    path: str
    key: str
    size: int
    sha512: str
    mime_type: str
    local_path: Path | None


class PendingWrite:
    """Bytes on their way into a draft: `write` chunks, then `commit` (or `discard`)."""

    def __init__(self, writer: BlobWriter, on_commit: Any, limit: int | None = None) -> None:
        self._writer = writer
        self._on_commit = on_commit
        self._limit = limit
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append `data`; raises InvalidInput past the declared size (and discards)."""
        n = len(data)
        if self._limit is not None and self.written + n > self._limit:
            self.discard()
            raise InvalidInput(
                f"more bytes than declared ({self._limit}) were sent", field="content-length"
            )
        self._writer.write(data)
        self.written += n

    def commit(self) -> Any:
        """Check the checksum, make the bytes visible and record them; nothing kept on error."""
        try:
            info = self._writer.commit()  # discards by itself on a checksum mismatch
        except BaseException:
            raise
        try:
            return self._on_commit(info)
        except BaseException:
            raise

    def discard(self) -> None:
        """Drop everything written."""
        self._writer.discard()


class DatasetService:
    """Datasets and their versions; every method takes the caller's identity first."""

    def __init__(
        self,
        catalog: Catalog,
        blobs: BlobStore,
        policy: Policy,
        pids: PIDProvider,
        *,
        base_url: str,
        curator_group: str = "curators",
    ) -> None:
        self._catalog = catalog
        self._blobs = blobs
        self._policy = policy
        self.pids = pids
        self._base_url = base_url.rstrip("/")
        self._curator_group = curator_group

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _folder(source_name: str, major: int, minor: int) -> str:
        return f"datasets/{source_name}/v{major}.{minor}"

    def _curators(self, session: Session) -> tuple[str, ...]:
        group_id = session.scalar(select(Group.id).where(Group.name == self._curator_group))
        return (group_principal(group_id),) if group_id else ()

    def _access(self, session: Session, ds: Dataset, ver: DatasetVersion) -> VersionAccess:
        return version_access(
            ver.state,
            owner_id=ds.owner_id,
            visible_to=ver.visible_to,
            shared_with=ver.shared_with,
            curators=self._curators(session),
        )

    def _is_curator(self, session: Session, identity: Identity) -> bool:
        return identity.bypasses_acl or not set(self._curators(session)).isdisjoint(
            identity.principals
        )

    def _find(self, session: Session, sid: str) -> tuple[Dataset, DatasetVersion]:
        """A source_id, or a source_name meaning its latest published (else newest) version."""
        try:
            parse_source_id(sid)
        except InvalidInput:
            ds = session.scalar(select(Dataset).where(Dataset.source_name == sid))
            if ds is None:
                raise NotFound(f"no dataset {sid!r}", field="source_id") from None
            target = ds.latest_source_id
            if target is None:
                ver = session.scalar(
                    select(DatasetVersion)
                    .where(DatasetVersion.dataset_id == ds.id)
                    .order_by(DatasetVersion.major.desc(), DatasetVersion.minor.desc())
                )
                if ver is None:
                    raise NotFound(f"no dataset {sid!r}", field="source_id") from None
                return ds, ver
            sid = target
        ver = session.scalar(select(DatasetVersion).where(DatasetVersion.source_id == sid))
        if ver is None:
            raise NotFound(f"no dataset version {sid!r}", field="source_id")
        ds = session.get(Dataset, ver.dataset_id)
        assert ds is not None
        return ds, ver

    def _load(
        self, session: Session, identity: Identity, sid: str, action: Action = "read"
    ) -> tuple[Dataset, DatasetVersion]:
        ds, ver = self._find(session, sid)
        access = self._access(session, ds, ver)
        self._policy.require(identity, access, action, what="dataset version")
        return ds, ver

    def _require_draft(self, ver: DatasetVersion) -> None:
        if ver.state != "draft":
            raise Conflict(
                f"{ver.source_id} is {ver.state}; only a draft's files and records can change",
                field="state",
            )

    def _resolve_principals(
        self, session: Session, values: Iterable[str], *, field: str
    ) -> list[str]:
        """Accept principal URNs, `public`, and the shorthands `user:<name>` / `group:<name>`."""
        out: list[str] = []
        for i, value in enumerate(values):
            if value == PUBLIC or value.startswith(("urn:matterhub:user:", "urn:matterhub:group:")):
                out.append(value)
            elif value.startswith("user:"):
                uid = session.scalar(select(User.id).where(User.username == value[5:]))
                if uid is None:
                    raise InvalidInput(f"no user named {value[5:]!r}", field=f"{field}[{i}]")
                out.append(user_principal(uid))
            elif value.startswith("group:"):
                gid = session.scalar(select(Group.id).where(Group.name == value[6:]))
                if gid is None:
                    raise InvalidInput(f"no group named {value[6:]!r}", field=f"{field}[{i}]")
                out.append(group_principal(gid))
            else:
                raise InvalidInput(
                    f"{value!r} is not a principal: use 'public', 'user:<name>', "
                    "'group:<name>' or a urn:matterhub: URN",
                    field=f"{field}[{i}]",
                )
        return list(dict.fromkeys(out))

    def _cited(self, ver: DatasetVersion) -> CitedVersion:
        return CitedVersion(
            dc=ver.document.get("dc", {}),
            source_id=ver.source_id,
            version=f"{ver.major}.{ver.minor}",
            url=self._landing_url(ver),
            pid=ver.pid,
            pid_is_doi=self.pids.is_doi and ver.pid is not None,
        )

    def _landing_url(self, ver: DatasetVersion) -> str:
        if ver.pid:
            return f"{self._base_url}/pid/{ver.pid}"
        return f"{self._base_url}/api/datasets/{ver.source_id}"

    def _document(
        self,
        ds: Dataset,
        ver: DatasetVersion,
        files: Sequence[DatasetFile],
        *,
        published_at: datetime | None = None,
    ) -> dict[str, Any]:
        """The MDF dataset document (dataset.json) of a version."""
        doc = {k: v for k, v in ver.document.items() if k not in ("dc", "mdf")}
        dc = dict(ver.document.get("dc", {}))
        dc["version"] = f"{ver.major}.{ver.minor}"
        if ver.pid:
            scheme = "DOI" if self.pids.is_doi else "URL"
            value = ver.pid if self.pids.is_doi else self.pids.resolver_url(ver.pid, self._base_url)
            dc["identifier"] = {"identifier": value, "identifierType": scheme}
        mdf = dict(ver.document.get("mdf", {}))
        mdf.update(
            source_name=ds.source_name,
            source_id=ver.source_id,
            scroll_id=0,
            resource_type="dataset",
            version=ver.major,
            acl=list(ver.visible_to) or [PUBLIC],
            ingest_date=(published_at or ver.published_at or ver.created_at).isoformat(),
        )
        data = dict(doc.get("data", {}))
        data.update(
            link=f"{self._base_url}/api/datasets/{ver.source_id}/archive.zip",
            total_size=sum(f.size for f in files),
        )
        doc.update(dc=dc, mdf=mdf, data=data)
        doc.setdefault("services", {})
        return doc

    def _public(self, session: Session, ds: Dataset, ver: DatasetVersion) -> VersionPublic:
        files = self._files(session, ver)
        return VersionPublic(
            source_id=ver.source_id,
            source_name=ds.source_name,
            version=f"{ver.major}.{ver.minor}",
            state=ver.state,
            pid=ver.pid,
            pid_url=self.pids.resolver_url(ver.pid, self._base_url) if ver.pid else None,
            visible_to=list(ver.visible_to),
            shared_with=list(ver.shared_with),
            dc=ver.document.get("dc", {}),
            document=self._document(ds, ver, files),
            file_count=len(files),
            total_bytes=sum(f.size for f in files),
            created_at=ver.created_at,
            published_at=ver.published_at,
            manifest_sha512=ver.manifest_sha512,
            reason=ver.reason,
            is_latest=ds.latest_source_id == ver.source_id,
        )

    @staticmethod
    def _files(session: Session, ver: DatasetVersion) -> list[DatasetFile]:
        return list(
            session.scalars(
                select(DatasetFile)
                .where(DatasetFile.version_id == ver.id)
                .order_by(DatasetFile.path)
            )
        )

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

    # -- reads -------------------------------------------------------------------------------

    def list_datasets(
        self, identity: Identity, *, limit: int = 100, offset: int = 0
    ) -> list[DatasetPublic]:
        """Datasets with at least one version the caller may see, newest first."""
        out: list[DatasetPublic] = []
        with self._catalog.transaction() as session:
            curators = self._curators(session)
            datasets = session.scalars(select(Dataset).order_by(Dataset.created_at.desc()))
            skipped = 0
            for ds in datasets:
                versions = session.scalars(
                    select(DatasetVersion)
                    .where(DatasetVersion.dataset_id == ds.id)
                    .order_by(DatasetVersion.major, DatasetVersion.minor)
                ).all()
                seen = [
                    v.source_id
                    for v in versions
                    if self._policy.allows(
                        identity,
                        version_access(
                            v.state,
                            owner_id=ds.owner_id,
                            visible_to=v.visible_to,
                            shared_with=v.shared_with,
                            curators=curators,
                        ),
                    )
                ]
                if not seen:
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                owner = session.get(User, ds.owner_id)
                out.append(
                    DatasetPublic(
                        source_name=ds.source_name,
                        owner=owner.username if owner else "",
                        test=ds.test,
                        latest=ds.latest_source_id if ds.latest_source_id in seen else None,
                        versions=seen,
                        created_at=ds.created_at,
                    )
                )
                if len(out) >= limit:
                    break
        return out

    def get(self, identity: Identity, sid: str) -> VersionPublic:
        """One version (a source_id), or a dataset's latest published one (a source_name)."""
        with self._catalog.transaction() as session:
            ds, ver = self._load(session, identity, sid)
            return self._public(session, ds, ver)

    def versions(self, identity: Identity, source_name: str) -> list[VersionPublic]:
        """Every version of a dataset the caller may see, oldest first."""
        with self._catalog.transaction() as session:
            ds = session.scalar(select(Dataset).where(Dataset.source_name == source_name))
            if ds is None:
                raise NotFound(f"no dataset {source_name!r}", field="source_name")
            out = []
            for ver in session.scalars(
                select(DatasetVersion)
                .where(DatasetVersion.dataset_id == ds.id)
                .order_by(DatasetVersion.major, DatasetVersion.minor)
            ):
                if self._policy.allows(identity, self._access(session, ds, ver)):
                    out.append(self._public(session, ds, ver))
            if not out:
                raise NotFound(f"no dataset {source_name!r}", field="source_name")
            return out

    def resolve_pid(self, identity: Identity, pid: str) -> VersionPublic:
        """The version an identifier names."""
        with self._catalog.transaction() as session:
            ver = session.scalar(select(DatasetVersion).where(DatasetVersion.pid == pid))
            if ver is None:
                raise NotFound(f"no identifier {pid!r}", field="pid")
            ds, ver = self._load(session, identity, ver.source_id)
            return self._public(session, ds, ver)

    def _file_allowed(
        self,
        session: Session,
        identity: Identity,
        ds: Dataset,
        ver: DatasetVersion,
        row: DatasetFile,
    ) -> bool:
        if row.visible_to is None:
            return True
        access = VersionAccess(
            visible_to=(user_principal(ds.owner_id), *ver.shared_with, *row.visible_to),
            owner_id=ds.owner_id,
        )
        return self._policy.allows(identity, access)

    def _readable_version(
        self, session: Session, identity: Identity, sid: str
    ) -> tuple[Dataset, DatasetVersion]:
        ds, ver = self._load(session, identity, sid)
        if ver.state == "withdrawn" and not self._policy.allows(
            identity, self._access(session, ds, ver), "manage"
        ):
            raise NotFound(
                f"{ver.source_id} was withdrawn: {ver.reason or 'no reason given'}",
                field="source_id",
            )
        return ds, ver

    def manifest(self, identity: Identity, sid: str) -> list[ManifestEntry]:
        """The files of a version (path, size, sha512, mime type), restricted ones flagged."""
        with self._catalog.transaction() as session:
            _ds, ver = self._readable_version(session, identity, sid)
            return [
                ManifestEntry(
                    path=f.path,
                    size=f.size,
                    sha512=f.sha512,
                    mime_type=f.mime_type,
                    restricted=f.visible_to is not None,
                )
                for f in self._files(session, ver)
            ]

    def manifest_document(self, identity: Identity, sid: str) -> bytes:
        """A published version's frozen manifest.json, byte for byte."""
        with self._catalog.transaction() as session:
            ds, ver = self._readable_version(session, identity, sid)
            if ver.state not in ("published", "withdrawn"):
                raise NotFound(f"{ver.source_id} is not published yet", field="source_id")
            key = f"{self._folder(ds.source_name, ver.major, ver.minor)}/manifest.json"
        return self._blobs.get(key)

    def open_file(self, identity: Identity, sid: str, path: str) -> FileHandle:
        """A file the caller may read; NotFound for a path outside the version."""
        check_file_path(path)
        with self._catalog.transaction() as session:
            ds, ver = self._readable_version(session, identity, sid)
            row = session.get(DatasetFile, (ver.id, path))
            if row is None or not self._file_allowed(session, identity, ds, ver, row):
                raise NotFound(f"no file {path!r} in {ver.source_id}", field="path")
        local = self._blobs.local_path(row.blob_key)
        return FileHandle(row.path, row.blob_key, row.size, row.sha512, row.mime_type, local)

    def archive_members(self, identity: Identity, sid: str) -> tuple[str, list[ArchiveMember]]:
        """(source_id, the files the caller may read) of a version, for an archive."""
        with self._catalog.transaction() as session:
            ds, ver = self._readable_version(session, identity, sid)
            folder = ver.source_id
            members = [
                ArchiveMember(f"{folder}/{f.path}", f.blob_key, f.size)
                for f in self._files(session, ver)
                if self._file_allowed(session, identity, ds, ver, f)
            ]
        return ver.source_id, members

    def stream_archive(self, members: Sequence[ArchiveMember], fmt: str) -> Iterator[bytes]:
        """The bytes of a zip or tar of `members`, streamed."""

        def read(key: str) -> Iterator[bytes]:
            return self._blobs.stream(key)

        if fmt == "zip":
            return stream_zip(members, read)
        if fmt == "tar":
            return stream_tar(members, read)
        raise InvalidInput(f"unknown archive format {fmt!r}; use zip or tar", field="format")

    def cite(self, identity: Identity, sid: str, fmt: str) -> tuple[str, str]:
        """(media type, text) of a version's citation in `fmt`."""
        with self._catalog.transaction() as session:
            _ds, ver = self._load(session, identity, sid)
            return cite(self._cited(ver), fmt)

    # -- drafts ------------------------------------------------------------------------------

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

    def _copy_files(self, session: Session, src: DatasetVersion, dst: DatasetVersion) -> None:
        for f in self._files(session, src):
            session.add(
                DatasetFile(
                    version_id=dst.id,
                    path=f.path,
                    blob_key=f.blob_key,
                    size=f.size,
                    sha512=f.sha512,
                    mime_type=f.mime_type,
                    visible_to=f.visible_to,
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
                claimed = session.execute(
                    update(DatasetVersion)
                    .where(
                        DatasetVersion.id == ver.id,
                        DatasetVersion.state == ver.state,
                        DatasetVersion.publish_lock_until.is_(None),
                    )
                    .values(document=new_doc, visible_to=new_visible, shared_with=new_shared)
                )
                if claimed.rowcount != 1:  # type: ignore[attr-defined]
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

    # -- files -------------------------------------------------------------------------------

    def begin_file(
        self,
        identity: Identity,
        sid: str,
        path: str,
        *,
        expected_sha512: str | None = None,
        visible_to: Sequence[str] | None = None,
        size: int | None = None,
    ) -> PendingWrite:
        """Start writing `path` into a draft; the returned writer's `commit` records the file."""
        check_file_path(path)
        with self._catalog.transaction() as session:
            ds, ver = self._load(session, identity, sid, "manage")
            self._require_draft(ver)
            restricted = (
                self._resolve_principals(session, visible_to, field="visible_to")
                if visible_to is not None
                else None
            )
            key = f"{self._folder(ds.source_name, ver.major, ver.minor)}/files/{path}"
            version_id = ver.id
        writer = self._blobs.open_write(key, expected_sha512=expected_sha512)

        def on_commit(info: Any) -> Any:
            return self._record_file(version_id, path, key, info.size, info.sha512, restricted)

        return PendingWrite(writer, on_commit, size)

    def _claim_draft(self, session: Session, version_id: str) -> None:
        """Take the draft's row lock; Conflict if it stopped being an unclaimed draft."""
        result = session.execute(
            update(DatasetVersion)
            .where(
                DatasetVersion.id == version_id,
                DatasetVersion.state == "draft",
                DatasetVersion.publish_lock_until.is_(None),
            )
            .values(state="draft")
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(
                "the version stopped being a draft while the file arrived", field="state"
            )

    def _record_file(
        self,
        version_id: str,
        path: str,
        key: str,
        size: int,
        sha512: str | None,
        restricted: list[str] | None,
    ) -> ManifestEntry:
        assert sha512 is not None
        mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
        try:
            with self._catalog.transaction() as session:
                self._claim_draft(session, version_id)
                self._check_no_clash(session, version_id, path)
                row = session.get(DatasetFile, (version_id, path))
                if row is None:
                    row = DatasetFile(version_id=version_id, path=path)
                    session.add(row)
                row.blob_key, row.size, row.sha512, row.mime_type = key, size, sha512, mime
                row.visible_to = restricted
                session.flush()
                self._recount(session, version_id)
        except MatterHubError:
            # The blob sits in the draft's own folder, which only this draft uses.
            self._delete_quietly(key)
            raise
        return ManifestEntry(
            path=path, size=size, sha512=sha512, mime_type=mime, restricted=restricted is not None
        )

    @staticmethod
    def _check_no_clash(session: Session, version_id: str, path: str) -> None:
        """A file and a folder may not share a name (`a` and `a/b`), as in any archive."""
        rows = session.scalars(
            select(DatasetFile.path).where(
                DatasetFile.version_id == version_id,
                (DatasetFile.path.startswith(path + "/", autoescape=True)),
            )
        ).first()
        parents = ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1)]
        clash = rows or (
            parents
            and session.scalar(
                select(DatasetFile.path).where(
                    DatasetFile.version_id == version_id, DatasetFile.path.in_(parents)
                )
            )
        )
        if clash:
            raise Conflict(f"{path!r} clashes with the file or folder {clash!r}", field="path")

    @staticmethod
    def _recount(session: Session, version_id: str) -> None:
        count, total = session.execute(
            select(func.count(), func.coalesce(func.sum(DatasetFile.size), 0)).where(
                DatasetFile.version_id == version_id
            )
        ).one()
        ver = session.get(DatasetVersion, version_id)
        assert ver is not None
        ver.file_count = int(count)
        ver.total_bytes = int(total)

    def _delete_quietly(self, key: str) -> None:
        try:
            self._blobs.delete(key)
        except MatterHubError:
            log.warning("could not remove blob %r", key, exc_info=True)

    def put_file(
        self,
        identity: Identity,
        sid: str,
        path: str,
        data: bytes | Iterable[bytes],
        *,
        expected_sha512: str | None = None,
        visible_to: Sequence[str] | None = None,
    ) -> ManifestEntry:
        """Store a whole file into a draft (bytes or an iterable of chunks)."""
        pending = self.begin_file(
            identity, sid, path, expected_sha512=expected_sha512, visible_to=visible_to
        )
        try:
            for chunk in [data] if isinstance(data, bytes) else data:
                pending.write(chunk)
        except BaseException:
            pending.discard()
            raise
        result: ManifestEntry = pending.commit()
        return result

    def delete_file(self, identity: Identity, sid: str, path: str) -> None:
        """Remove a file from a draft."""
        check_file_path(path)
        with self._catalog.transaction() as session:
            ds, ver = self._load(session, identity, sid, "manage")
            self._require_draft(ver)
            self._claim_draft(session, ver.id)
            row = session.get(DatasetFile, (ver.id, path))
            if row is None:
                raise NotFound(f"no file {path!r} in {ver.source_id}", field="path")
            key = row.blob_key
            own = key.startswith(self._folder(ds.source_name, ver.major, ver.minor) + "/")
            session.delete(row)
            session.flush()
            self._recount(session, ver.id)
        if own:  # a file kept from an older version is that version's: never touch it
            self._delete_quietly(key)

    def set_records(
        self, identity: Identity, sid: str, records: Iterable[Mapping[str, Any]]
    ) -> int:
        """Write a draft's per-file-group records (records.jsonl); returns how many."""
        with self._catalog.transaction() as session:
            ds, ver = self._load(session, identity, sid, "manage")
            self._require_draft(ver)
            key = f"{self._folder(ds.source_name, ver.major, ver.minor)}/records.jsonl"
        count = 0

        def lines() -> Iterator[bytes]:
            nonlocal count
            for record in records:
                count += 1
                yield json.dumps(record, sort_keys=True, ensure_ascii=False).encode() + b"\n"

        self._blobs.put(key, lines())
        return count

    # -- resumable uploads -------------------------------------------------------------------

    def start_upload(
        self, identity: Identity, sid: str, *, path: str, size: int, sha512: str | None = None
    ) -> UploadPublic:
        """Open a resumable upload of `size` bytes to `path` in a draft."""
        check_file_path(path)
        if size < 0:
            raise InvalidInput("size must be 0 or more", field="size")
        expected = normalize_sha512(sha512)
        with self._catalog.transaction() as session:
            _ds, ver = self._load(session, identity, sid, "manage")
            self._require_draft(ver)
            upload = UploadSession(
                version_id=ver.id,
                owner_id=identity.user_id,
                path=path,
                size=size,
                offset=0,
                sha512=expected,
            )
            session.add(upload)
            session.flush()
            return self._upload_public(upload, ver.source_id)

    @staticmethod
    def _upload_public(upload: UploadSession, source_id: str) -> UploadPublic:
        return UploadPublic(
            id=upload.id,
            source_id=source_id,
            path=upload.path,
            size=upload.size,
            offset=upload.offset,
            sha512=upload.sha512,
            created_at=upload.created_at,
        )

    def _upload(
        self, session: Session, identity: Identity, sid: str, upload_id: str
    ) -> tuple[Dataset, DatasetVersion, UploadSession]:
        ds, ver = self._load(session, identity, sid, "manage")
        upload = session.get(UploadSession, upload_id)
        if upload is None or upload.version_id != ver.id:
            raise NotFound(f"no upload {upload_id!r} in {ver.source_id}", field="upload_id")
        return ds, ver, upload

    def upload_status(self, identity: Identity, sid: str, upload_id: str) -> UploadPublic:
        """Where a resumable upload stands (send the next bytes from `offset`)."""
        with self._catalog.transaction() as session:
            _ds, ver, upload = self._upload(session, identity, sid, upload_id)
            return self._upload_public(upload, ver.source_id)

    def _chunk_prefix(self, upload_id: str) -> str:
        return f"uploads/{upload_id}/"

    def begin_chunk(
        self, identity: Identity, sid: str, upload_id: str, *, offset: int
    ) -> PendingWrite:
        """Start the chunk that begins at `offset`; Conflict (naming the right offset) if not next.

        Each chunk is stored whole or not at all; after the last one, the file is assembled,
        its SHA-512 checked, and only then does it join the draft.
        """
        with self._catalog.transaction() as session:
            _ds, ver, upload = self._upload(session, identity, sid, upload_id)
            self._require_draft(ver)
            if offset != upload.offset:
                raise Conflict(
                    f"the upload is at offset {upload.offset}, not {offset}", field="offset"
                )
            remaining = upload.size - upload.offset
        key = f"{self._chunk_prefix(upload_id)}{offset:020d}"
        writer = self._blobs.open_write(key)

        def on_commit(info: Any) -> Any:
            return self._chunk_done(identity, sid, upload_id, offset, info.size, key)

        return PendingWrite(writer, on_commit, remaining)

    def _chunk_done(
        self, identity: Identity, sid: str, upload_id: str, offset: int, size: int, key: str
    ) -> UploadPublic | ManifestEntry:
        with self._catalog.transaction() as session:
            moved = session.execute(
                update(UploadSession)
                .where(UploadSession.id == upload_id, UploadSession.offset == offset)
                .values(offset=offset + size, updated_at=utcnow())
            )
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                self._delete_quietly(key)
                raise Conflict("another chunk was stored at this offset first", field="offset")
            upload = session.get(UploadSession, upload_id)
            assert upload is not None
            session.refresh(upload)
            status = self._upload_public(upload, sid)
        if status.offset < status.size:
            return status
        return self._assemble(identity, sid, status)

    def _assemble(self, identity: Identity, sid: str, status: UploadPublic) -> ManifestEntry:
        """Join the chunks into the draft's file, checking the SHA-512 on the way."""
        chunks = list(self._blobs.list(self._chunk_prefix(status.id)))
        try:
            pending = self.begin_file(identity, sid, status.path, expected_sha512=status.sha512)
            try:
                for chunk_key in chunks:
                    for data in self._blobs.stream(chunk_key, chunk_size=4 << 20):
                        pending.write(data)
            except BaseException:
                pending.discard()
                raise
            entry: ManifestEntry = pending.commit()
        finally:
            # Whatever happened (a checksum mismatch included), the upload is over: keep nothing.
            self._drop_upload(status.id, chunks)
        return entry

    def _drop_upload(self, upload_id: str, chunks: Iterable[str] | None = None) -> None:
        for key in (
            chunks if chunks is not None else self._blobs.list(self._chunk_prefix(upload_id))
        ):
            self._delete_quietly(key)
        with self._catalog.transaction() as session:
            upload = session.get(UploadSession, upload_id)
            if upload is not None:
                session.delete(upload)

    def abort_upload(self, identity: Identity, sid: str, upload_id: str) -> None:
        """Cancel a resumable upload and drop its chunks."""
        with self._catalog.transaction() as session:
            self._upload(session, identity, sid, upload_id)
        self._drop_upload(upload_id)

    # -- lifecycle ---------------------------------------------------------------------------

    def submit_for_curation(self, identity: Identity, sid: str) -> VersionPublic:
        """Hand a draft to the curators: they see it, the owner can no longer change it."""
        with self._catalog.transaction() as session:
            _ds, ver = self._load(session, identity, sid, "manage")
            self._move(session, ver, "curation")
        return self.get(identity, sid)

    def reject(self, identity: Identity, sid: str, *, reason: str) -> VersionPublic:
        """A curator turns a version down, with a reason the submitter sees."""
        if not reason.strip():
            raise InvalidInput("a rejection needs a reason", field="reason")
        with self._catalog.transaction() as session:
            _ds, ver = self._load(session, identity, sid)
            if not self._is_curator(session, identity):
                raise PermissionDenied("only curators may reject a version")
            self._move(session, ver, "rejected", reason=reason)
        return self._view(sid)

    def reopen(self, identity: Identity, sid: str) -> VersionPublic:
        """Turn a rejected (or curated) version back into an editable draft."""
        with self._catalog.transaction() as session:
            _ds, ver = self._load(session, identity, sid, "manage")
            self._move(session, ver, "draft")
        return self.get(identity, sid)

    @staticmethod
    def _move(
        session: Session, ver: DatasetVersion, target: str, *, reason: str | None = None
    ) -> None:
        check_transition(ver.state, target)
        moved = session.execute(
            update(DatasetVersion)
            .where(
                DatasetVersion.id == ver.id,
                DatasetVersion.state == ver.state,
                DatasetVersion.publish_lock_until.is_(None),
            )
            .values(state=target, reason=reason)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(
                f"{ver.source_id} changed meanwhile (a publish in progress?)", field="state"
            )

    def publish(self, identity: Identity, sid: str) -> VersionPublic:
        """Freeze a draft (or a curated version): write its manifest, register its identifier."""
        return self._publish(identity, sid, skip_rights=False)

    def _publish(self, identity: Identity, sid: str, *, skip_rights: bool) -> VersionPublic:
        now = utcnow()
        with self._catalog.transaction() as session:
            ds, ver = self._load(session, identity, sid)
            access = self._access(session, ds, ver)
            if not skip_rights:
                if ver.state == "curation":
                    if not self._is_curator(session, identity):
                        raise PermissionDenied("a version in curation is published by a curator")
                else:
                    self._policy.require(identity, access, "manage", what="dataset version")
            check_transition(ver.state, "published")
            # The claim: one conditional UPDATE, so of two racing publishes exactly one wins.
            claimed = session.execute(
                update(DatasetVersion)
                .where(
                    DatasetVersion.id == ver.id,
                    DatasetVersion.state == ver.state,
                    (DatasetVersion.publish_lock_until.is_(None))
                    | (DatasetVersion.publish_lock_until < now),
                )
                .values(publish_lock_until=now + _PUBLISH_CLAIM)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict(
                    f"{ver.source_id} is being published by another request", field="state"
                )
            version_id = ver.id
        try:
            self._freeze(version_id)
        except BaseException:
            with self._catalog.transaction() as session:
                session.execute(
                    update(DatasetVersion)
                    .where(DatasetVersion.id == version_id)
                    .values(publish_lock_until=None)
                )
            raise
        # Not `get`: a curator who published may not be among the readers it now has.
        return self._view(sid)

    def _view(self, sid: str) -> VersionPublic:
        with self._catalog.transaction() as session:
            ds, ver = self._find(session, sid)
            return self._public(session, ds, ver)

    def _freeze(self, version_id: str) -> None:
        """Write dataset.json, records.jsonl and manifest.json, register the PID, mark published."""
        with self._catalog.transaction() as session:
            ver = session.get(DatasetVersion, version_id)
            assert ver is not None
            source_id, pid = ver.source_id, ver.pid
            attrs = datacite_attributes(self._cited(ver))
        if pid is None:
            pid = self.pids.reserve(source_id, attrs)
            with self._catalog.transaction() as session:
                session.execute(
                    update(DatasetVersion)
                    .where(DatasetVersion.id == version_id)
                    .values(pid=pid, pid_state="reserved")
                )
        now = utcnow()
        with self._catalog.transaction() as session:
            ver = session.get(DatasetVersion, version_id)
            assert ver is not None
            ds = session.get(Dataset, ver.dataset_id)
            assert ds is not None
            files = self._files(session, ver)
            document = self._document(ds, ver, files, published_at=now)
            folder = self._folder(ds.source_name, ver.major, ver.minor)
            cited = self._cited(ver)
        for f in files:
            if self._blobs.size(f.blob_key) != f.size:
                raise Conflict(
                    f"file {f.path!r} changed size in storage; not publishing", field="path"
                )
        documents = {}
        dataset_bytes = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).encode()
        documents["dataset.json"] = self._blobs.put(f"{folder}/dataset.json", dataset_bytes)
        if not self._blobs.exists(f"{folder}/records.jsonl"):
            self._blobs.put(f"{folder}/records.jsonl", b"")
        records = f"{folder}/records.jsonl"
        documents["records.jsonl"] = self._info(records)
        manifest = {
            "source_id": source_id,
            "pid": pid,
            "published_at": now.isoformat(),
            "files": [
                {
                    "path": f.path,
                    "size": f.size,
                    "sha512": f.sha512,
                    "mime_type": f.mime_type,
                    **({"restricted": True} if f.visible_to is not None else {}),
                }
                for f in files
            ],
            "documents": {
                name: {"size": info[0], "sha512": info[1]}
                for name, info in ((n, (i.size, i.sha512)) for n, i in documents.items())
            },
        }
        manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
        info = self._blobs.put(f"{folder}/manifest.json", manifest_bytes)
        self.pids.register(pid, datacite_attributes(cited))
        with self._catalog.transaction() as session:
            ver = session.get(DatasetVersion, version_id)
            assert ver is not None
            ds = session.get(Dataset, ver.dataset_id)
            assert ds is not None
            ver.state = "published"
            ver.published_at = now
            ver.manifest_sha512 = info.sha512
            ver.pid_state = "registered"
            ver.publish_lock_until = None
            ver.reason = None
            latest = ds.latest_source_id
            if latest is None or parse_source_id(latest)[1:] < (ver.major, ver.minor):
                ds.latest_source_id = ver.source_id
        log.info("published %s as %s", source_id, pid)

    def _info(self, key: str) -> BlobInfo:
        return BlobInfo(key, self._blobs.size(key), self._blobs.sha512(key))

    def withdraw(self, identity: Identity, sid: str, *, reason: str) -> VersionPublic:
        """Take a published version out of circulation; its citation and tombstone remain."""
        if not reason.strip():
            raise InvalidInput("a withdrawal needs a reason", field="reason")
        with self._catalog.transaction() as session:
            ds, ver = self._load(session, identity, sid, "manage")
            self._move(session, ver, "withdrawn", reason=reason)
            if ds.latest_source_id == ver.source_id:
                previous = session.scalar(
                    select(DatasetVersion.source_id)
                    .where(
                        DatasetVersion.dataset_id == ds.id,
                        DatasetVersion.state == "published",
                        DatasetVersion.id != ver.id,
                    )
                    .order_by(DatasetVersion.major.desc(), DatasetVersion.minor.desc())
                )
                ds.latest_source_id = previous
            pid = ver.pid
        if pid:
            try:
                self.pids.hide(pid)
            except PIDError as exc:
                log.warning("withdrew %s but could not hide %s: %s", sid, pid, exc.detail)
        return self.get(identity, sid)

    # -- integrity ---------------------------------------------------------------------------

    def verify(self, identity: Identity, sid: str) -> list[str]:
        """Re-read a published version's manifest and every file; return what does not match."""
        with self._catalog.transaction() as session:
            ds, ver = self._load(session, identity, sid)
            if ver.state not in ("published", "withdrawn"):
                raise Conflict(f"{ver.source_id} is not published", field="state")
            folder = self._folder(ds.source_name, ver.major, ver.minor)
            keys = {f.path: f.blob_key for f in self._files(session, ver)}
            expected_manifest = ver.manifest_sha512
        problems = []
        raw = self._blobs.get(f"{folder}/manifest.json")
        if hashlib.sha512(raw).hexdigest() != expected_manifest:
            problems.append("manifest.json")
        manifest = json.loads(raw)
        for entry in manifest["files"]:
            key = keys.get(entry["path"])
            if key is None or self._blobs.sha512(key) != entry["sha512"]:
                problems.append(entry["path"])
        for name, doc in manifest["documents"].items():
            if self._blobs.sha512(f"{folder}/{name}") != doc["sha512"]:
                problems.append(name)
        return problems

    def published_source_ids(self) -> list[str]:
        """Every published or withdrawn version (for integrity sweeps)."""
        with self._catalog.transaction() as session:
            return list(
                session.scalars(
                    select(DatasetVersion.source_id)
                    .where(DatasetVersion.state.in_(("published", "withdrawn")))
                    .order_by(DatasetVersion.source_id)
                )
            )
