"""A dataset service over a real SQLite catalog and a real blob folder, and an integrity guard."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from matterhub.blobs import open_blobs
from matterhub.catalog import Catalog, open_catalog
from matterhub.catalog.accounts import AccountService
from matterhub.core.identity import SYSTEM_IDENTITY, Identity
from matterhub.core.policy import Policy
from matterhub.publish import DatasetService, PIDProvider
from matterhub.publish.local import LocalPIDProvider
from tests.fakes.datacite import FakeDataCite

MUTATING = {
    "create",
    "new_version",
    "update_metadata",
    "put_file",
    "delete_file",
    "set_records",
    "start_upload",
    "abort_upload",
    "submit_for_curation",
    "reject",
    "reopen",
    "publish",
    "withdraw",
}

DC = {
    "creators": [
        {
            "creatorName": "Curie, Marie",
            "familyName": "Curie",
            "givenName": "Marie",
            "affiliations": ["Sorbonne"],
        }
    ],
    "titles": [{"title": "Radium chloride diffraction patterns"}],
    "publisher": "MatterHub",
    "publicationYear": "2024",
    "descriptions": [{"description": "XRD of RaCl2.", "descriptionType": "Abstract"}],
    "subjects": [{"subject": "XRD"}],
    "rightsList": [
        {"rights": "CC-BY 4.0", "rightsURI": "https://creativecommons.org/licenses/by/4.0/"}
    ],
}


def check_published(service: DatasetService, frozen: dict[str, str]) -> None:
    """Every published version still matches its manifest, and no manifest ever changed."""
    with service._catalog.transaction() as session:
        from sqlalchemy import select

        from matterhub.catalog.models import DatasetVersion

        rows = session.execute(
            select(DatasetVersion.source_id, DatasetVersion.manifest_sha512).where(
                DatasetVersion.state.in_(("published", "withdrawn"))
            )
        ).all()
    for source_id, manifest_sha in rows:
        assert service.verify(SYSTEM_IDENTITY, source_id) == [], f"{source_id} changed"
        assert frozen.setdefault(source_id, manifest_sha) == manifest_sha, source_id


class Guarded:
    """The service, re-reading every published manifest's checksums after each mutation."""

    def __init__(self, service: DatasetService) -> None:
        self.service = service
        self.frozen: dict[str, str] = {}
        self.checks = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.service, name)
        if name not in MUTATING:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            finally:
                check_published(self.service, self.frozen)
                self.checks += 1

        return call


@pytest.fixture
def catalog(tmp_path: Any) -> Iterator[Catalog]:
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield catalog
    catalog.close()


@pytest.fixture
def accounts(catalog: Catalog) -> AccountService:
    return AccountService(catalog, Policy())


@pytest.fixture
def make_identity(accounts: AccountService) -> Callable[..., Identity]:
    def make(name: str, *, groups: tuple[str, ...] = ()) -> Identity:
        user = accounts.create_user(SYSTEM_IDENTITY, name)
        gids = []
        for group in groups:
            try:
                g = accounts.create_group(SYSTEM_IDENTITY, group)
            except Exception:
                g = next(x for x in accounts.list_groups(SYSTEM_IDENTITY) if x.name == group)
            accounts.add_member(SYSTEM_IDENTITY, group, name)
            gids.append(g.id)
        return Identity(user_id=user.id, username=name, group_ids=frozenset(gids))

    return make


def build(catalog: Catalog, tmp_path: Any, pids: PIDProvider) -> Guarded:
    blobs = open_blobs(str(tmp_path / "blobs"))
    return Guarded(DatasetService(catalog, blobs, Policy(), pids, base_url="http://hub.test"))


@pytest.fixture
def repo(catalog: Catalog, tmp_path: Any) -> Guarded:
    return build(catalog, tmp_path, LocalPIDProvider("mh"))


@pytest.fixture
def datacite() -> Iterator[FakeDataCite]:
    fake = FakeDataCite().start()
    yield fake
    fake.stop()
