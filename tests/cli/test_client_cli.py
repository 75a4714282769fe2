"""The user-side CLI (login, search, show, cite, download, submit, status, curate) over real HTTP.

The app runs under uvicorn on a loopback port in this process; the commands run through Typer's
runner with a private client config file, exactly as a user's terminal would use them.
"""

from __future__ import annotations

import json
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from matterhub.api import create_app
from matterhub.bootstrap import Services, build_services
from matterhub.cli.main import app
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.settings import Settings
from tests.e2e.test_serve import free_port
from tests.search.conftest import ingest, make_records

runner = CliRunner()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[str, Services]]:
    data = tmp_path / "incoming"
    data.mkdir()
    (data / "notes.txt").write_text("iron, measured twice\n")
    settings = Settings(data_dir=tmp_path / "hub", connect_allowed_roots=[tmp_path])
    services = build_services(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, services=services),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", services
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    monkeypatch.setenv("MATTERHUB_CLIENT_CONFIG", str(tmp_path / "cfg" / "client.json"))
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args))

    return run


def token_for(services: Services, username: str, *, admin: bool = False) -> str:
    services.accounts.create_user(SYSTEM_IDENTITY, username, is_admin=admin)
    return services.accounts.create_token(SYSTEM_IDENTITY, username).token


def test_login_errors_are_one_clear_line(
    cli: Callable[..., Any], hub: tuple[str, Services]
) -> None:
    down = cli("login", "--url", f"http://127.0.0.1:{free_port()}", "--token", "x")
    assert down.exit_code == 1
    assert down.output.count("\n") == 1 and "cannot reach MatterHub" in down.output
    bad = cli("login", "--url", hub[0], "--token", "mh_0123456789abcdef_wrong")
    assert bad.exit_code == 2 and "matterhub login" in bad.output and "Traceback" not in bad.output
    nothing = cli("search")
    assert nothing.exit_code == 1 and "no hub configured" in nothing.output


def test_login_saves_a_private_profile(
    cli: Callable[..., Any], hub: tuple[str, Services], tmp_path: Path
) -> None:
    base, services = hub
    token = token_for(services, "ada")
    done = cli("login", "--url", base, "--token", token, "--profile", "work", "--default")
    assert done.exit_code == 0, done.output
    assert "as ada" in done.output
    config = tmp_path / "cfg" / "client.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text())["profiles"]["work"] == {"url": base, "token": token}
    assert cli("login", "--url", base, "--token", "", "--profile", "anon").exit_code == 0
    missing = cli("status", "--profile", "nope")
    assert missing.exit_code == 1 and "no profile 'nope'" in missing.output


def test_search_show_cite_download(
    cli: Callable[..., Any], hub: tuple[str, Services], tmp_path: Path
) -> None:
    base, services = hub
    ingest(services, make_records(40, seed=3, source="cli"))
    assert cli("login", "--url", base, "--token", "").exit_code == 0
    table = cli("search", "--elements", "Fe", "--facet", "mdf.source_name", "--limit", "3")
    assert table.exit_code == 0, table.output
    assert "showing 3" in table.output and "cli_0" in table.output and "count" in table.output
    as_json = json.loads(cli("search", "mdf.source_name:cli_1", "--advanced", "--json").output)
    assert as_json["total"] == 13 and len(as_json["results"]) == 13
    bad = cli("search", "band_gap:[1 TO", "--advanced")
    assert bad.exit_code == 2 and "error:" in bad.output and bad.output.count("\n") == 1
    owner = "bob"
    services.accounts.create_user(SYSTEM_IDENTITY, owner)
    dc = {
        "creators": [{"creatorName": "Bob, B"}],
        "titles": [{"title": "CLI data"}],
        "publisher": "X",
        "publicationYear": "2024",
    }
    sid = services.datasets.create(
        SYSTEM_IDENTITY, dc=dc, source_name="clidata", owner=owner
    ).source_id
    services.datasets.put_file(SYSTEM_IDENTITY, sid, "a/b.txt", b"hello")
    services.datasets.publish(SYSTEM_IDENTITY, sid)
    shown = cli("show", "clidata", "--files")
    assert shown.exit_code == 0 and "CLI data" in shown.output and "a/b.txt" in shown.output
    cite = cli("cite", "clidata", "--format", "bibtex")
    assert cite.exit_code == 0 and cite.output.startswith("@")
    got = cli("download", "clidata", "--dest", str(tmp_path / "dl"))
    assert got.exit_code == 0, got.output
    assert (tmp_path / "dl" / "clidata_v1.0" / "a" / "b.txt").read_bytes() == b"hello"
    assert cli("show", "nothere").exit_code == 2


def test_submit_watch_status_and_curate(
    cli: Callable[..., Any], hub: tuple[str, Services], tmp_path: Path
) -> None:
    base, services = hub
    token = token_for(services, "carol")
    assert cli("login", "--url", base, "--token", token).exit_code == 0
    (tmp_path / "matterhub.yaml").write_text(
        "title: Iron test data\nauthors: [Carol Curie]\ndata_sources: [incoming]\ntest: true\n"
    )
    done = cli("submit", str(tmp_path / "matterhub.yaml"), "--watch")
    assert done.exit_code == 0, done.output
    assert "Submitted:" in done.output and "S" in done.output
    source_id = done.output.split("Submitted:")[1].split()[0]
    status = json.loads(cli("status", source_id, "--json").output)
    assert status["source_id"] == source_id and status["active"] is False
    listed = cli("status")
    assert source_id in listed.output
    missing = cli("submit", "--title", "x")
    assert missing.exit_code == 2 and "author" in missing.output
    both = cli("curate", source_id, "--accept", "--reject")
    assert both.exit_code == 2 and "exactly one" in both.output
    refused = cli("curate", source_id, "--accept")
    assert refused.exit_code == 2  # carol is no curator


def test_submit_uploads_local_paths_unless_hub_paths(
    cli: Callable[..., Any], hub: tuple[str, Services], tmp_path: Path
) -> None:
    base, services = hub
    token = token_for(services, "erin")
    assert cli("login", "--url", base, "--token", token).exit_code == 0
    (tmp_path / "matterhub.yaml").write_text(
        "title: Uploaded by the CLI\nauthors: [Erin Eyre]\ndata_sources: [incoming]\n"
    )
    done = cli("submit", str(tmp_path / "matterhub.yaml"), "--watch")
    assert done.exit_code == 0, done.output
    source_id = done.output.split("Submitted:")[1].split()[0]
    paths = {f.path for f in services.datasets.manifest(SYSTEM_IDENTITY, source_id)}
    assert "incoming/notes.txt" in paths
    on_hub = cli(
        "submit", "--title", "Named on the hub", "--author", "Erin Eyre",
        "--data", str(tmp_path / "incoming"), "--hub-paths", "--watch",
    )  # fmt: skip
    assert on_hub.exit_code == 0, on_hub.output
    hub_id = on_hub.output.split("Submitted:")[1].split()[0]
    paths = {f.path for f in services.datasets.manifest(SYSTEM_IDENTITY, hub_id)}
    assert "notes.txt" in paths and "incoming/notes.txt" not in paths
