"""Every collector end to end: Zenodo and Figshare (local fakes of their APIs) and git."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from matterhub.bootstrap import Services, build_services
from matterhub.settings import Settings
from tests.connect.helpers import CIF, data_paths, dc, search, submit, user
from tests.fakes.repositories import FakeRepositories


@pytest.fixture
def fake() -> Iterator[FakeRepositories]:
    repos = FakeRepositories()
    repos.files = {"Fe.cif": CIF.encode(), "readme.md": b"# data\n", "broken.txt": b"payload"}
    repos.zenodo = {"4242": ["Fe.cif", "readme.md"], "999": ["broken.txt"]}
    repos.figshare = {"777": ["Fe.cif"]}
    repos.corrupt = {"broken.txt"}
    yield repos
    repos.close()


@pytest.fixture
def repo_hub(tmp_path: Path, fake: FakeRepositories) -> Iterator[Services]:
    settings = Settings(
        data_dir=tmp_path / "hub",
        connect_allowed_roots=[tmp_path / "git"],
        connect_zenodo_url=fake.url,
        connect_figshare_url=fake.url,
    )
    services = build_services(settings)
    services.start()
    yield services
    services.close()


@pytest.mark.parametrize(
    "source",
    ["zenodo:4242", "https://zenodo.org/records/4242", "10.5281/zenodo.4242"],
)
def test_zenodo_record_by_id_url_or_doi(repo_hub: Services, source: str) -> None:
    ann = user(repo_hub, "ann")
    sid = submit(repo_hub, ann, dc=dc("Zenodo collected iron"), data_sources=[source])
    status = repo_hub.connect.wait(sid)
    assert status["flow_status"]["status"] == "SUCCEEDED", status["display_status"]
    assert data_paths(repo_hub, sid) == {"Fe.cif", "readme.md"}
    assert (
        search(
            repo_hub, "mdf.source_name:tester_zenodo_collected_iron AND material.elements:Fe"
        ).total
        == 1
    )


def test_figshare_article(repo_hub: Services) -> None:
    ben = user(repo_hub, "ben")
    sid = submit(
        repo_hub,
        ben,
        dc=dc("Figshare collected iron"),
        data_sources=["https://figshare.com/articles/dataset/iron/777"],
    )
    assert repo_hub.connect.wait(sid)["flow_status"]["status"] == "SUCCEEDED"
    assert sorted(data_paths(repo_hub, sid)) == ["Fe.cif"]
    assert search(repo_hub, f'mdf.source_id:"{sid}" AND material.elements:Fe').total == 1


def test_checksum_mismatch_and_missing_records_fail_clearly(repo_hub: Services) -> None:
    cy = user(repo_hub, "cy")
    bad = submit(repo_hub, cy, dc=dc("Corrupted download here"), data_sources=["zenodo:999"])
    status = repo_hub.connect.wait(bad, timeout=60)
    assert status["flow_status"]["status"] == "FAILED"
    assert "MD5 mismatch" in status["display_status"]
    missing = submit(repo_hub, cy, dc=dc("Missing record here"), data_sources=["figshare:123"])
    status = repo_hub.connect.wait(missing, timeout=60)
    assert "does not exist" in status["display_status"]


def test_git_repository(repo_hub: Services, tmp_path: Path) -> None:
    work = tmp_path / "git" / "work"
    work.mkdir(parents=True)
    (work / "Fe.cif").write_text(CIF)
    (work / "docs").mkdir()
    (work / "docs" / "about.txt").write_text("a git dataset\n")
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(tmp_path),
    }
    for command in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-qm", "data"]):
        subprocess.run(command, cwd=work, check=True, env=env)
    dee = user(repo_hub, "dee")
    sid = submit(repo_hub, dee, dc=dc("Git collected iron"), data_sources=[f"git+file://{work}"])
    status = repo_hub.connect.wait(sid)
    assert status["flow_status"]["status"] == "SUCCEEDED", status["display_status"]
    assert data_paths(repo_hub, sid) == {
        "Fe.cif",
        "docs/about.txt",
    }
    assert search(repo_hub, f'mdf.source_id:"{sid}" AND material.elements:Fe').total == 1


def test_specific_collectors_win_over_plain_http(repo_hub: Services) -> None:
    names = [c.name for c in repo_hub.connect._collectors]
    assert names.index("zenodo") < names.index("http") and names.index("git") < names.index("local")


def test_an_unknown_scheme_is_a_clear_failure(repo_hub: Services) -> None:
    eve = user(repo_hub, "eve")
    sid = submit(
        repo_hub, eve, dc=dc("Unknown scheme source"), data_sources=["gopher://old.example/x"]
    )
    status = repo_hub.connect.wait(sid)
    assert "not a recognised data source" in status["display_status"]


def test_build_services_uses_settings(tmp_path: Path) -> None:
    services = build_services(
        Settings(data_dir=tmp_path / "x", connect_zenodo_url="http://z.example")
    )
    try:
        assert services.connect._collector_context.options["zenodo_url"] == "http://z.example"
    finally:
        services.close()
