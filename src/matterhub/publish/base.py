"""The state and helpers every part of DatasetService shares: lookups, access and rendering."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from matterhub.blobs import BlobStore
from matterhub.catalog import Catalog
from matterhub.catalog.models import Dataset, DatasetFile, DatasetVersion, Group
from matterhub.catalog.principals import resolve_principals
from matterhub.core.citations import CitedVersion
from matterhub.core.datasets import VersionAccess, VersionPublic, parse_source_id, version_access
from matterhub.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from matterhub.core.identity import Identity, group_principal, user_principal
from matterhub.core.policy import Action, Policy, ResourcePolicy
from matterhub.publish.pid import PIDProvider

__all__ = ["ServiceBase", "update_unclaimed"]

# Files read per catalog transaction when a whole version's files are streamed.
_FILE_PAGE = 5000


def update_unclaimed(session: Session, version_id: str, state: str, values: dict[str, Any]) -> bool:
    """Set `values` on a version still in `state` that no publish has claimed; False if not."""
    # One conditional UPDATE, so a change racing a publish (or another change) cannot slip in.
    result = session.execute(
        update(DatasetVersion)
        .where(
            DatasetVersion.id == version_id,
            DatasetVersion.state == state,
            DatasetVersion.publish_lock_until.is_(None),
        )
        .values(**values)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


class ServiceBase:
    """What the parts of DatasetService share: its backends, settings and common lookups."""

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

    @staticmethod
    def _folder(source_name: str, major: int, minor: int) -> str:
        return f"datasets/{source_name}/v{major}.{minor}"

    def _curators(self, session: Session) -> tuple[str, ...]:
        """The principal of the reserved curators role group (AccountService.role_groups).

        The name is reserved: only administrators create, join or manage that group, so its
        members are exactly the curators an administrator chose.
        """
        group_id = session.scalar(select(Group.id).where(Group.name == self._curator_group))
        return (group_principal(group_id),) if group_id else ()

    def _rules(self, session: Session) -> ResourcePolicy:
        """The version policy with this catalog's curators group."""
        return self._policy.versions(self._curators(session))

    def _access(self, session: Session, ds: Dataset, ver: DatasetVersion) -> VersionAccess:
        return version_access(
            ver.state,
            owner_id=ds.owner_id,
            visible_to=ver.visible_to,
            shared_with=ver.shared_with,
            curators=self._curators(session),
        )

    def is_curator(self, identity: Identity) -> bool:
        """Whether the caller curates (a member of the curator group, or an administrator)."""
        with self._catalog.transaction() as session:
            return self._is_curator(session, identity)

    def _is_curator(self, session: Session, identity: Identity) -> bool:
        return self._rules(session).allows(identity, None, "curate")

    def require(self, identity: Identity, sid: str, action: Action = "read") -> None:
        """Raise unless `identity` may do `action` on a version (NotFound when it is unseen)."""
        with self._catalog.transaction() as session:
            self._load(session, identity, sid, action)

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
        rules = self._rules(session)
        view = SimpleNamespace(
            owner_id=ds.owner_id,
            shared_with=ver.shared_with,
            visible_to=ver.visible_to,
            state=ver.state,
        )
        if rules.allows(identity, view, "read"):
            if rules.allows(identity, view, action):
                return ds, ver
            raise PermissionDenied(f"you may not {action} this dataset version")
        raise NotFound("dataset version not found")

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
        return resolve_principals(session, values, field=field)

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
        *,
        published_at: datetime | None = None,
    ) -> dict[str, Any]:
        """The MDF dataset document (dataset.json) of a version (its size from the version's
        running totals, never from loading its files: a version may hold 361,804 of them)."""
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
            # An empty access list is owner-only (never public): say so in the document.
            acl=list(ver.visible_to) or [user_principal(ds.owner_id)],
            ingest_date=(published_at or ver.published_at or ver.created_at).isoformat(),
        )
        data = dict(doc.get("data", {}))
        data.update(
            link=f"{self._base_url}/api/datasets/{ver.source_id}/archive.zip",
            total_size=ver.total_bytes,
        )
        doc.update(dc=dc, mdf=mdf, data=data)
        doc.setdefault("services", {})
        return doc

    def _public(self, session: Session, ds: Dataset, ver: DatasetVersion) -> VersionPublic:
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
            document=self._document(ds, ver),
            file_count=ver.file_count,
            total_bytes=ver.total_bytes,
            created_at=ver.created_at,
            published_at=ver.published_at,
            manifest_sha512=ver.manifest_sha512,
            reason=ver.reason,
            is_latest=ds.latest_source_id == ver.source_id,
        )

    def _file_rows(self, version_id: str, page: int = _FILE_PAGE) -> Iterator[Row[Any]]:
        """A version's files in path order, a page per short transaction (keyset paging): the
        caller holds one page, not the version (publish streams 361,804 files this way). Rows
        have `path`, `blob_key`, `size`, `sha512`, `mime_type` and `visible_to`."""
        columns = (
            DatasetFile.path,
            DatasetFile.blob_key,
            DatasetFile.size,
            DatasetFile.sha512,
            DatasetFile.mime_type,
            DatasetFile.visible_to,
        )
        after: str | None = None
        while True:
            query = select(*columns).where(DatasetFile.version_id == version_id)
            if after is not None:
                query = query.where(DatasetFile.path > after)
            with self._catalog.transaction() as session:
                rows = list(session.execute(query.order_by(DatasetFile.path).limit(page)))
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1].path

    @staticmethod
    def _files(session: Session, ver: DatasetVersion) -> list[DatasetFile]:
        return list(
            session.scalars(
                select(DatasetFile)
                .where(DatasetFile.version_id == ver.id)
                .order_by(DatasetFile.path)
            )
        )
