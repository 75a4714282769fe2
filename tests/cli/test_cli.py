"""The `matterhub` admin commands, run in-process with Typer's runner against a real data folder."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import click
import httpx
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from matterhub.api import create_app
from matterhub.cli.main import app
from matterhub.settings import Settings

runner = CliRunner()
pytestmark = pytest.mark.anyio


def run(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["--data-dir", str(data_dir), *args], env=env)
    return result.exit_code, result.output


def all_command_paths() -> list[list[str]]:
    paths: list[list[str]] = [[]]

    def walk(command: click.Command, prefix: list[str]) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                paths.append([*prefix, name])
                walk(sub, [*prefix, name])

    walk(get_command(app), [])
    return paths


@pytest.mark.parametrize("path", all_command_paths(), ids=lambda p: " ".join(p) or "matterhub")
def test_every_command_has_help(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


async def test_cli_user_gets_a_token_that_whoami_accepts(tmp_path: Path) -> None:
    code, output = run(tmp_path, "user", "add", "alice", "--email", "alice@example.org")
    assert code == 0, output
    assert "Created user alice" in output
    code, token = run(tmp_path, "token", "create", "alice", "--quiet")
    assert code == 0, token
    token = token.strip()
    settings = Settings(data_dir=tmp_path)
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
        me = await client.get("/api/whoami", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["username"] == "alice"
        token_id = token.split("_")[1]
        code, output = run(tmp_path, "token", "revoke", token_id)
        assert code == 0 and "Revoked" in output
        # The CLI is another process: the server's 2 s verified-token cache may answer until then.
        for _ in range(40):
            again = await client.get("/api/whoami", headers={"Authorization": f"Bearer {token}"})
            if again.status_code == 401:
                break
            await asyncio.sleep(0.1)
        assert again.status_code == 401 and "revoked" in again.json()["detail"]


def test_groups_and_listing(tmp_path: Path) -> None:
    assert run(tmp_path, "user", "add", "bob")[0] == 0
    code, output = run(tmp_path, "group", "add", "lab", "--description", "the lab")
    assert code == 0 and "urn:matterhub:group:" in output
    assert run(tmp_path, "group", "add-member", "lab", "bob")[0] == 0
    code, output = run(tmp_path, "group", "list", "--json")
    assert code == 0 and '"bob"' in output and '"lab"' in output
    code, output = run(tmp_path, "user", "list", "--json")
    assert code == 0 and '"username": "bob"' in output


def test_init_creates_the_admin_once(tmp_path: Path) -> None:
    code, output = run(tmp_path, "init", "--admin", "chief")
    assert code == 0, output
    assert "Created administrator chief" in output and "mh_" in output
    code, output = run(tmp_path, "init")
    assert code == 0 and "exists already" in output


def test_duplicate_user_is_a_clear_error(tmp_path: Path) -> None:
    run(tmp_path, "user", "add", "dup")
    code, output = run(tmp_path, "user", "add", "dup")
    assert code == 2
    assert "error: username 'dup' is taken" in output
    assert "Traceback" not in output


def test_unknown_user_token_is_a_clear_error(tmp_path: Path) -> None:
    code, output = run(tmp_path, "token", "create", "ghost")
    assert code == 2 and "no user named 'ghost'" in output


def test_unopenable_database_names_the_setting(tmp_path: Path) -> None:
    env = {"MATTERHUB_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nowhere"}
    code, output = run(tmp_path, "user", "list", env=env)
    assert code == 1
    assert "MATTERHUB_DATABASE_URL" in output and "cannot be opened" in output
    assert "Traceback" not in output


def test_malformed_setting_names_the_variable(tmp_path: Path) -> None:
    code, output = run(tmp_path, "settings", env={"MATTERHUB_PORT": "eighty"})
    assert code == 2
    assert "MATTERHUB_PORT" in output


def test_settings_hides_the_secret(tmp_path: Path) -> None:
    code, output = run(tmp_path, "settings", env={"MATTERHUB_SECRET": "hunter2"})
    assert code == 0 and "hunter2" not in output and "**" in output


def test_db_commands(tmp_path: Path) -> None:
    code, output = run(tmp_path, "db", "upgrade")
    assert code == 0 and "at revision" in output
    code, output = run(tmp_path, "db", "current")
    found = re.search(r"current: (\w+)\s+head: (\w+)", output)
    assert code == 0 and found and found.group(1) == found.group(2) != "None"


def test_index_commands_and_reindex(tmp_path: Path) -> None:
    code, output = run(tmp_path, "index", "create", "lab-data", "--writer", "public")
    assert code == 0 and "Created index lab-data" in output
    code, output = run(tmp_path, "index", "list")
    assert code == 0 and "lab-data" in output and "1a57bbe5-5272-477f-9d31-343b8258b7a5" in output
    from matterhub.bootstrap import build_services
    from matterhub.core.identity import SYSTEM_IDENTITY

    services = build_services(Settings(data_dir=tmp_path))
    services.start()
    entry = {"subject": "s", "visible_to": ["public"], "content": {"x": 1}}
    task = services.search.ingest(
        SYSTEM_IDENTITY, "lab-data", {"ingest_type": "GMetaEntry", "ingest_data": entry}
    )
    assert services.search.wait(task.task_id).state == "SUCCESS"
    services.close()
    code, output = run(tmp_path, "reindex", "lab-data")
    assert code == 0 and "Rebuilt lab-data: 1 entries" in output
    code, output = run(tmp_path, "reindex", "nope")
    assert code == 2 and "no search index 'nope'" in output
