"""A version's lifecycle after drafting: curation, publish, withdraw and integrity checks."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from matterhub.blobs.base import BlobInfo
from matterhub.catalog.models import Dataset, DatasetVersion, utcnow
from matterhub.core.citations import datacite_attributes
from matterhub.core.datasets import VersionPublic, check_transition, parse_source_id
from matterhub.core.errors import Conflict, InvalidInput, PermissionDenied, PIDError
from matterhub.core.identity import Identity
from matterhub.publish.base import update_unclaimed
from matterhub.publish.manifest import manifest_chunks
from matterhub.publish.reads import DatasetReads

__all__ = ["DatasetLifecycle"]

log = logging.getLogger(__name__)

_PUBLISH_CLAIM = timedelta(minutes=15)
"""How long a publish may hold its claim before another one may take over (a crashed worker)."""


class DatasetLifecycle(DatasetReads):
    """Moving versions between states; publishing freezes a version's folder for good."""

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
        if not update_unclaimed(session, ver.id, ver.state, {"state": target, "reason": reason}):
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
            document = self._document(ds, ver, published_at=now)
            folder = self._folder(ds.source_name, ver.major, ver.minor)
            cited = self._cited(ver)
        # The files stream past a page at a time (twice: checked, then listed), so publishing
        # holds one page of them whatever the version's size.
        for f in self._file_rows(version_id):
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
        head = {
            "source_id": source_id,
            "pid": pid,
            "published_at": now.isoformat(),
            "documents": {
                name: {"size": info.size, "sha512": info.sha512} for name, info in documents.items()
            },
        }
        entries = (
            {
                "path": f.path,
                "size": f.size,
                "sha512": f.sha512,
                "mime_type": f.mime_type,
                **({"restricted": True} if f.visible_to is not None else {}),
            }
            for f in self._file_rows(version_id)
        )
        info = self._blobs.put(f"{folder}/manifest.json", manifest_chunks(head, entries))
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
