"""Fixtures for the Connect tests: an incoming-data folder and a hub allowed to collect from it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from matterhub.bootstrap import Services, build_services
from matterhub.settings import Settings
from tests.connect.helpers import CIF


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "incoming"
    (root / "set1" / "sub").mkdir(parents=True)
    (root / "set1" / "Fe.cif").write_text(CIF)
    (root / "set1" / "notes.txt").write_text("measured on a Tuesday\n")
    (root / "set1" / "sub" / "table.csv").write_text("a,b\n1,2\n3,4\n")
    return root


@pytest.fixture
def hub(tmp_path: Path, data_root: Path) -> Iterator[Services]:
    settings = Settings(
        data_dir=tmp_path / "hub",
        connect_allowed_roots=[data_root],
        connect_allow_private_urls=True,
        # memory:// is not allowed by default (a hub whose blobs live in memory would expose
        # them); the tests collect from it.
        connect_fsspec_protocols=["memory", "s3", "zip", "tar"],
    )
    services = build_services(settings)
    services.start()
    yield services
    services.close()
