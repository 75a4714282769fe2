"""A draft's files and records: streamed writes, deletes and records.jsonl."""

from __future__ import annotations

import json
import logging
import mimetypes
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from matterhub.blobs.base import BlobWriter
from matterhub.catalog.models import DatasetFile, DatasetVersion
from matterhub.core.datasets import ManifestEntry, check_file_path
from matterhub.core.errors import Conflict, InvalidInput, MatterHubError, NotFound
from matterhub.core.identity import Identity
from matterhub.publish.base import ServiceBase, update_unclaimed

__all__ = ["DatasetFiles", "PendingWrite"]

log = logging.getLogger(__name__)


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


class DatasetFiles(ServiceBase):
    """Writing a draft's files and records; only a draft's own folder is ever written."""

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
        if not update_unclaimed(session, version_id, "draft", {"state": "draft"}):
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

    def put_local_files(
        self, identity: Identity, sid: str, files: Sequence[tuple[str, Path]]
    ) -> int:
        """Store many local files (path in the version, file on disk) into a draft at once.

        The blobs go in first (made durable together), then one transaction records them all;
        a clash or a draft that stopped being one records none of them. Returns the count.
        """
        for path, _source in files:
            check_file_path(path)
        paths = [path for path, _source in files]
        with self._catalog.transaction() as session:
            ds, ver = self._load(session, identity, sid, "manage")
            self._require_draft(ver)
            folder = f"{self._folder(ds.source_name, ver.major, ver.minor)}/files"
            version_id = ver.id
            # Only the recorded paths this batch can clash with (the same paths, their parent
            # folders as files, files under them as folders): the cost is the batch's, not the
            # draft's, so a draft filled in batches takes linear time and flat memory.
            existing = _clashing_paths(session, version_id, paths)
        _check_tree([*existing, *paths])
        infos = self._blobs.put_files([(f"{folder}/{path}", source) for path, source in files])
        try:
            with self._catalog.transaction() as session:
                self._claim_draft(session, version_id)
                for (path, _source), info in zip(files, infos, strict=True):
                    row = DatasetFile(version_id=version_id, path=path)  # new: none clashed
                    session.add(row)
                    assert info.sha512 is not None  # put_files always hashes
                    row.blob_key, row.size, row.sha512 = info.key, info.size, info.sha512
                    row.mime_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
                    row.visible_to = None
                session.flush()
                self._recount(session, version_id)
        except MatterHubError:
            for info in infos:  # only blobs no recorded file points at
                if info.key.removeprefix(f"{folder}/") not in existing:
                    self._delete_quietly(info.key)
            raise
        return len(infos)

    def clear_files(self, identity: Identity, sid: str) -> int:
        """Remove every file of a draft (a re-run of a submission starts from nothing)."""
        with self._catalog.transaction() as session:
            ds, ver = self._load(session, identity, sid, "manage")
            self._require_draft(ver)
            self._claim_draft(session, ver.id)
            own = self._folder(ds.source_name, ver.major, ver.minor) + "/"
            rows = list(
                session.scalars(select(DatasetFile).where(DatasetFile.version_id == ver.id))
            )
            for row in rows:
                session.delete(row)
            session.flush()
            self._recount(session, ver.id)
        for row in rows:
            if row.blob_key.startswith(own):  # never an older version's blob
                self._delete_quietly(row.blob_key)
        return len(rows)

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


_IN_CHUNK = 500  # SQL parameters per IN (...) list
_UNDER_CHUNK = 200  # paths per OR of "under this folder" ranges (two parameters each)


def _clashing_paths(session: Session, version_id: str, paths: Sequence[str]) -> set[str]:
    """Recorded paths of a version that are one of `paths`, a parent folder of one (as a file)
    or under one (so it would be a folder): what `_check_tree` needs to see for this batch."""
    wanted = set(paths)
    for path in paths:
        parts = path.split("/")
        wanted.update("/".join(parts[:i]) for i in range(1, len(parts)))
    found: set[str] = set()
    ordered = sorted(wanted)
    for start in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[start : start + _IN_CHUNK]
        found.update(
            session.scalars(
                select(DatasetFile.path).where(
                    DatasetFile.version_id == version_id, DatasetFile.path.in_(chunk)
                )
            )
        )
    binary = session.get_bind().dialect.name == "sqlite"  # TEXT compares by code point there

    def under(path: str) -> ColumnElement[bool]:
        if binary:  # '/' is followed by '0': [path/, path0) are the paths under it (indexed)
            return (DatasetFile.path >= path + "/") & (DatasetFile.path < path + "0")
        return DatasetFile.path.startswith(path + "/", autoescape=True)  # any collation

    # One query per chunk of the batch's paths (an OR of their ranges), not one per path: a
    # clash is an error, so a few of its paths are enough to name it.
    distinct = sorted(set(paths))
    for start in range(0, len(distinct), _UNDER_CHUNK):
        chunk = distinct[start : start + _UNDER_CHUNK]
        below = session.scalars(
            select(DatasetFile.path)
            .where(DatasetFile.version_id == version_id, or_(*(under(p) for p in chunk)))
            .limit(5)
        ).all()
        found.update(b for b in below if any(b.startswith(p + "/") for p in chunk))
    return found


def _check_tree(paths: Iterable[str]) -> None:
    """No path may also be a folder of another (`a` and `a/b`), and none may repeat."""
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise Conflict(f"{path!r} is given twice", field="path")
        seen.add(path)
    for path in seen:
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in seen:
                raise Conflict(f"{path!r} clashes with the file {parent!r}", field="path")
