"""docs/quickstart.md runs as written: its console lines and Python blocks against a real hub.

A real `matterhub demo` process serves over loopback; the CLI lines run as subprocesses with a
private client config; the Python blocks run in order in one namespace. Then the download is
interrupted halfway and resumed, through the client, against the same server.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from matterhub.client import Client, Forge
from matterhub.client.downloads import download
from tests.e2e.test_serve import free_port, start, stop, wait_healthy

pytestmark = pytest.mark.e2e
DOC = Path(__file__).resolve().parents[2] / "docs" / "quickstart.md"
DOC_URL = "http://localhost:8000"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    proc = start(["demo"], tmp_path_factory.mktemp("demo"), port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_healthy(base, proc, timeout=240).status_code == 200
        yield base
    finally:
        stop(proc)


@pytest.fixture
def user_env(tmp_path: Path, demo: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    config = tmp_path / "config" / "client.json"
    monkeypatch.setenv("MATTERHUB_CLIENT_CONFIG", str(config))
    monkeypatch.setenv("MATTERHUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
    env.update(MATTERHUB_CLIENT_CONFIG=str(config), MATTERHUB_CACHE_DIR=str(tmp_path / "cache"))
    env["COLUMNS"] = "200"
    return env


def run_cli(line: str, env: dict[str, str], base: str) -> subprocess.CompletedProcess[str]:
    args = shlex.split(line.replace(DOC_URL, base))
    assert args[0] == "matterhub", line
    return subprocess.run(
        [sys.executable, "-m", "matterhub.cli", *args[1:]],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def test_quickstart_runs_through_cli_and_python(
    demo: str, user_env: dict[str, str], tmp_path: Path
) -> None:
    outputs: dict[str, str] = {}
    for block in blocks("console"):
        for line in block.splitlines():
            if line.startswith("$ "):
                done = run_cli(line[2:], user_env, demo)
                assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
                outputs.setdefault(line[2:].split()[1], done.stdout)
    config = Path(user_env["MATTERHUB_CLIENT_CONFIG"])
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert "material.elements" in outputs["search"] and "│ Fe " in outputs["search"]
    assert "@" in outputs["cite"] and "Delta test" in outputs["cite"]
    with Client(demo) as hub:
        listed = hub.manifest("dcdft")["files"]
    got = {
        str(p.relative_to(tmp_path / "data" / "dcdft_v1.0"))
        for p in (tmp_path / "data").rglob("*")
        if p.is_file()
    }
    assert got == {f["path"] for f in listed}
    namespace: dict[str, Any] = {}
    for code in blocks("python"):
        exec(compile(code, str(DOC), "exec"), namespace)  # the doc's own code, as a reader runs it
    for value in namespace.values():
        if isinstance(value, Client | Forge):
            value.close()
    assert namespace["report"].skipped > 0  # the CLI had already downloaded these files


def test_download_interrupted_halfway_resumes(demo: str, tmp_path: Path) -> None:
    client = Client(demo)
    listed = client.manifest("dcdft")["files"]
    total = sum(f["size"] for f in listed)
    seen = 0

    def interrupt(n: int) -> None:
        nonlocal seen
        seen += n
        if seen > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download(
            client, "dcdft", tmp_path, workers=1, archive=False, progress=False, on_bytes=interrupt
        )
    first = [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".part")]
    assert 0 < len(first) < len(listed)
    report = client.download("dcdft", tmp_path, archive=False, progress=False)
    assert report.skipped == len(first) and len(report.files) == len(listed)
    assert report.resumed_bytes > 0  # the file cut off mid-way continued from its .part
    assert not list(tmp_path.rglob("*.part"))
    cli = subprocess.run(
        [sys.executable, "-m", "matterhub.cli", "download", "dcdft", "--dest", str(tmp_path), "--files"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "MATTERHUB_URL": demo, "MATTERHUB_CLIENT_CONFIG": str(tmp_path / "none.json")},
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert f"{len(listed)} file(s)" in cli.stdout
    client.close()
