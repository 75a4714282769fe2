"""Shared fixtures: catalog backends (SQLite always, PostgreSQL when configured) and settings."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from matterhub.settings import Settings

PG_ENV = "MATTERHUB_TEST_DATABASE_URL"


def catalog_backends() -> list[str]:
    """Backends the catalog contract suite runs on in this session."""
    return ["sqlite", "postgresql"] if os.environ.get(PG_ENV) else ["sqlite"]


def pytest_report_header(config: pytest.Config) -> str:
    backends = catalog_backends()
    note = "" if len(backends) > 1 else f" (set {PG_ENV} to add postgresql)"
    return f"matterhub catalog backends: {', '.join(backends)}{note}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The run's shared servable environments (`tests/hub/conftest.py`) end with it."""
    from tests.hub.conftest import SHARED_ENVS

    shutil.rmtree(SHARED_ENVS, ignore_errors=True)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the developer's own MATTERHUB_* settings (except the test database)."""
    for name in list(os.environ):
        if name.startswith("MATTERHUB_") and name != PG_ENV:
            monkeypatch.delenv(name)


def _postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin_url = make_url(os.environ[PG_ENV])
    name = f"mh_test_{uuid.uuid4().hex[:12]}"
    conninfo = admin_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=catalog_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty catalog database on each available backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for an embedded hub in a temporary data folder."""
    return Settings(data_dir=tmp_path / "hub")


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the loop uvicorn uses)."""
    return "asyncio"
