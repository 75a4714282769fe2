"""Resumable uploads: a file sent in chunks, assembled and checked before it joins a draft."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from matterhub.blobs.base import normalize_sha512
from matterhub.catalog.models import Dataset, DatasetVersion, UploadSession, utcnow
from matterhub.core.datasets import ManifestEntry, UploadPublic, check_file_path
from matterhub.core.errors import Conflict, InvalidInput, NotFound
from matterhub.core.identity import Identity
from matterhub.publish.files import DatasetFiles, PendingWrite

__all__ = ["DatasetUploads"]


class DatasetUploads(DatasetFiles):
    """Resumable uploads into a draft, one chunk at a time at the offset the server names."""

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
