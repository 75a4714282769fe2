"""The only place that picks implementations from settings and wires the services together."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from matterhub.blobs import BlobStore, open_blobs
from matterhub.catalog import Catalog, open_catalog
from matterhub.catalog.accounts import AccountService
from matterhub.connect.collectors import CollectorContext, load_collectors
from matterhub.connect.dispatch import load_dispatchers
from matterhub.connect.service import ConnectService
from matterhub.core.errors import InvalidInput
from matterhub.core.organizations import Organization
from matterhub.core.policy import Policy
from matterhub.publish import DatasetService, load_pid_provider
from matterhub.search.service import SearchService
from matterhub.search.tantivy import TantivyIndex
from matterhub.settings import Settings

__all__ = ["Services", "build_services", "server_secret"]


@dataclass
class Services:
    """Every service of one hub, built from one `Settings`."""

    settings: Settings
    catalog: Catalog
    blobs: BlobStore
    policy: Policy
    accounts: AccountService
    search: SearchService
    secret: str = field(repr=False)
    datasets: DatasetService = field(repr=False)
    connect: ConnectService = field(repr=False)

    def start(self) -> None:
        """Start background work: the search ingest worker and the Connect pipeline; both resume."""
        self.search.start()
        self.connect.start()

    def close(self) -> None:
        """Stop background work and release connections and files."""
        self.connect.stop()
        self.search.stop()
        self.catalog.close()


def server_secret(settings: Settings) -> str:
    """The configured secret, or one generated once and kept in `<data_dir>/secret` (mode 0600)."""
    if settings.secret is not None:
        return settings.secret.get_secret_value()
    path = settings.data_dir / "secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    # O_EXCL: when two processes start at once, one writes and the other reads its value.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def build_services(settings: Settings, *, migrate: bool = True) -> Services:
    """Wire ports to the backends named in settings; the only place that does.

    Raises:
        CatalogError / StorageError / InvalidInput: a setting names a backend that cannot be
            opened; the error's `field` is the setting.
    """
    _ensure_dir(settings.data_dir, field="data_dir")
    catalog = open_catalog(settings.database_url, migrate=migrate)
    blobs = open_blobs(settings.storage_url, settings.storage_options)
    policy = Policy()
    ttl = timedelta(days=settings.token_ttl_days) if settings.token_ttl_days else None
    accounts = AccountService(catalog, policy, default_token_ttl=ttl)
    datasets = DatasetService(
        catalog,
        blobs,
        policy,
        load_pid_provider(settings.pid_provider, _pid_options(settings)),
        base_url=settings.base_url,
        curator_group=settings.curator_group,
    )
    assert settings.index_dir is not None  # derived from data_dir by Settings
    search = SearchService(catalog, policy, index_dir=settings.index_dir, open_backend=TantivyIndex)
    secret = server_secret(settings)
    connect = ConnectService(
        catalog,
        policy,
        datasets,
        search,
        staging_dir=settings.data_dir / "staging",
        collectors=load_collectors(),
        collector_context=CollectorContext(
            allowed_roots=tuple(settings.connect_allowed_roots),
            allow_private_addresses=settings.connect_allow_private_urls,
            max_bytes=settings.connect_max_bytes,
            options={
                "zenodo_url": settings.connect_zenodo_url,
                "figshare_url": settings.connect_figshare_url,
            },
        ),
        base_url=settings.base_url,
        secret=secret,
        dispatchers=load_dispatchers(),
        organizations=_organizations(settings),
    )
    return Services(
        settings=settings,
        catalog=catalog,
        blobs=blobs,
        policy=policy,
        accounts=accounts,
        search=search,
        secret=secret,
        datasets=datasets,
        connect=connect,
    )


def _pid_options(settings: Settings) -> dict[str, object]:
    """What PID providers may read; passed as plain values so providers never see Settings."""
    password = settings.datacite_password
    return {
        "pid_prefix": settings.pid_prefix,
        "datacite_url": settings.datacite_url,
        "datacite_user": settings.datacite_user,
        "datacite_password": password.get_secret_value() if password else "",
        "datacite_prefix": settings.datacite_prefix,
        "datacite_test_mode": settings.datacite_test_mode,
    }


def _organizations(settings: Settings) -> list[Organization]:
    """The organisations file, read once; a broken file names the setting."""
    if settings.organizations_file is None:
        return []
    try:
        raw = json.loads(settings.organizations_file.read_text())
        return [Organization.model_validate(item) for item in raw]
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"organizations_file {settings.organizations_file}: {exc}", field="organizations_file"
        ) from exc


def _ensure_dir(path: Path, *, field: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"{field} {str(path)!r} cannot be created: {exc}", field=field) from exc
