"""Settings: every field documented (in code and in docs), defaults derived from data_dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from matterhub.settings import Settings

DOCS = Path(__file__).parents[1] / "docs" / "configuration.md"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_described(name: str) -> None:
    description = Settings.model_fields[name].description
    assert description and len(description) > 15, f"{name} needs a real description"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_in_the_docs(name: str) -> None:
    assert f"MATTERHUB_{name.upper()}" in DOCS.read_text(), f"document MATTERHUB_{name.upper()}"


def test_defaults_live_under_the_data_dir(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.database_url == f"sqlite:///{tmp_path}/catalog.db"
    assert s.storage_url == f"file://{tmp_path}/blobs"
    assert s.index_dir == tmp_path / "index"
    assert s.base_url == "http://127.0.0.1:8000"


def test_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATTERHUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MATTERHUB_PORT", "9123")
    monkeypatch.setenv("MATTERHUB_STORAGE_OPTIONS", '{"endpoint_url": "http://127.0.0.1:9000"}')
    s = Settings()
    assert s.data_dir == tmp_path and s.port == 9123
    assert s.base_url == "http://127.0.0.1:9123"
    assert s.storage_options == {"endpoint_url": "http://127.0.0.1:9000"}
