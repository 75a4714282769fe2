"""The only place that picks implementations from settings and wires the services together."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from matterhub.blobs import BlobStore, open_blobs
from matterhub.catalog import Catalog, open_catalog
from matterhub.catalog.accounts import AccountService
from matterhub.core.errors import InvalidInput
from matterhub.core.policy import Policy
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
    secret: str = field(repr=False)

    def close(self) -> None:
        """Release connections and files."""
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
    return Services(
        settings=settings,
        catalog=catalog,
        blobs=blobs,
        policy=policy,
        accounts=accounts,
        secret=server_secret(settings),
    )


def _ensure_dir(path: Path, *, field: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"{field} {str(path)!r} cannot be created: {exc}", field=field) from exc
