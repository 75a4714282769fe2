"""The read side of DatasetService: listings, versions, manifests, files, archives, citations."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from matterhub.catalog.models import Dataset, DatasetFile, DatasetVersion, User
from matterhub.catalog.repositories import sql_clause
from matterhub.core.citations import cite
from matterhub.core.datasets import (
    DatasetPublic,
    ManifestEntry,
    VersionAccess,
    VersionPublic,
    check_file_path,
)
from matterhub.core.errors import InvalidInput, NotFound
from matterhub.core.identity import Identity, user_principal
from matterhub.publish.base import ServiceBase
from matterhub.publish.bundles import ArchiveMember, stream_tar, stream_zip

__all__ = ["DatasetReads", "FileHandle"]

# The columns the version policy's conditions name, in a query joining versions to datasets.
_VERSION_COLUMNS = SimpleNamespace(
    owner_id=Dataset.owner_id,
    shared_with=DatasetVersion.shared_with,
    visible_to=DatasetVersion.visible_to,
    state=DatasetVersion.state,
)


@dataclass(frozen=True, slots=True)
class FileHandle:
    """A readable file of a version: where its bytes are and what they are."""

    path: str
    key: str
    size: int
    sha512: str
    mime_type: str
    local_path: Path | None


class DatasetReads(ServiceBase):
    """Reading datasets: what the caller may see, and the bytes of what it may read."""

    def _readable(self, session: Session, identity: Identity) -> ColumnElement[bool]:
        """The SQL clause selecting the versions `identity` may read (joined with Dataset)."""
        return sql_clause(self._rules(session).condition(identity, "read"), _VERSION_COLUMNS)

    def list_datasets(
        self, identity: Identity, *, limit: int = 100, offset: int = 0
    ) -> list[DatasetPublic]:
        """Datasets with at least one version the caller may see, newest first."""
        out: list[DatasetPublic] = []
        with self._catalog.transaction() as session:
            readable = self._readable(session, identity)
            seen_version = (
                select(DatasetVersion.id)
                .where(DatasetVersion.dataset_id == Dataset.id, readable)
                .exists()
            )
            rows = session.execute(
                select(Dataset, User.username)
                .join(User, User.id == Dataset.owner_id, isouter=True)
                .where(seen_version)
                .order_by(Dataset.created_at.desc(), Dataset.id)
                .offset(offset)
                .limit(limit)
            ).all()
            ids = [ds.id for ds, _owner in rows]
            seen: dict[str, list[str]] = {i: [] for i in ids}
            for dataset_id, source_id in session.execute(
                select(DatasetVersion.dataset_id, DatasetVersion.source_id)
                .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                .where(DatasetVersion.dataset_id.in_(ids), readable)
                .order_by(DatasetVersion.major, DatasetVersion.minor)
            ):
                seen[dataset_id].append(source_id)
            for ds, owner in rows:
                out.append(
                    DatasetPublic(
                        source_name=ds.source_name,
                        owner=owner or "",
                        test=ds.test,
                        latest=ds.latest_source_id if ds.latest_source_id in seen[ds.id] else None,
                        versions=seen[ds.id],
                        created_at=ds.created_at,
                    )
                )
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
            out = [
                self._public(session, ds, ver)
                for ver in session.scalars(
                    select(DatasetVersion)
                    .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                    .where(DatasetVersion.dataset_id == ds.id, self._readable(session, identity))
                    .order_by(DatasetVersion.major, DatasetVersion.minor)
                )
            ]
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

    def manifest(
        self, identity: Identity, sid: str, *, limit: int | None = None
    ) -> list[ManifestEntry]:
        """The files of a version (path, size, sha512, mime type), restricted ones flagged; the
        first `limit` of them in path order when given (a page shows some of 361,804)."""
        with self._catalog.transaction() as session:
            _ds, ver = self._readable_version(session, identity, sid)
            query = (
                select(DatasetFile)
                .where(DatasetFile.version_id == ver.id)
                .order_by(DatasetFile.path)
                .limit(limit)
            )
            return [
                ManifestEntry(
                    path=f.path,
                    size=f.size,
                    sha512=f.sha512,
                    mime_type=f.mime_type,
                    restricted=f.visible_to is not None,
                )
                for f in session.scalars(query)
            ]

    def manifest_document(self, identity: Identity, sid: str) -> bytes:
        """A published version's frozen manifest.json, byte for byte."""
        with self._catalog.transaction() as session:
            ds, ver = self._readable_version(session, identity, sid)
            if ver.state not in ("published", "withdrawn"):
                raise NotFound(f"{ver.source_id} is not published yet", field="source_id")
            key = f"{self._folder(ds.source_name, ver.major, ver.minor)}/manifest.json"
        return self._blobs.get(key)

    def records(self, identity: Identity, sid: str) -> list[dict[str, Any]]:
        """A version's per-file-group records (records.jsonl), draft or published."""
        with self._catalog.transaction() as session:
            ds, ver = self._readable_version(session, identity, sid)
            key = f"{self._folder(ds.source_name, ver.major, ver.minor)}/records.jsonl"
        if not self._blobs.exists(key):
            return []
        return [json.loads(line) for line in self._blobs.get(key).splitlines() if line.strip()]

    def count_records(self, identity: Identity, sid: str) -> int:
        """How many records a version has: the lines of records.jsonl, counted as bytes pass."""
        with self._catalog.transaction() as session:
            ds, ver = self._readable_version(session, identity, sid)
            key = f"{self._folder(ds.source_name, ver.major, ver.minor)}/records.jsonl"
        if not self._blobs.exists(key):
            return 0
        count, last = 0, b"\n"
        for chunk in self._blobs.stream(key):
            if chunk:
                count += chunk.count(b"\n")
                last = chunk[-1:]
        return count + (last != b"\n")

    def iter_records(self, identity: Identity, sid: str) -> Iterator[dict[str, Any]]:
        """The records one at a time, streamed from records.jsonl (memory flat in their number)."""
        with self._catalog.transaction() as session:
            ds, ver = self._readable_version(session, identity, sid)
            key = f"{self._folder(ds.source_name, ver.major, ver.minor)}/records.jsonl"
        if not self._blobs.exists(key):
            return
        pending = b""
        for chunk in self._blobs.stream(key):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield json.loads(line)
        if pending.strip():
            yield json.loads(pending)

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
