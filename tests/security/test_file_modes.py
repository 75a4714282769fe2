"""Files the server creates are the server user's alone: 0600 files, 0700 folders.

Issue #14: `catalog.db` was created world-readable, so any local account could read every
private dataset's metadata and the password hashes. The one exception is the hub's servable
environments and unpacked servable files (`<data>/hub/envs`, `<data>/hub/versions`), which the
sandbox's unprivileged user must read; their 0700 parents keep them from everyone else.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from matterhub.bootstrap import build_services, server_secret
from matterhub.catalog import open_catalog
from matterhub.client import Client
from matterhub.client.connect import ConnectClient
from matterhub.settings import Settings
from tests.e2e.test_serve import MATTERHUB, free_port, stop, wait_healthy

# Sandboxed servables read these (the sandbox binds them in); everything else is private.
SANDBOX_READABLE = (Path("hub") / "envs", Path("hub") / "versions")


def loose_paths(data_dir: Path) -> list[str]:
    """Every path under `data_dir` that its group or others may use, with its mode."""
    found = []
    for root, dirs, files in os.walk(data_dir):
        for name in [*dirs, *files, *([""] if Path(root) == data_dir else [])]:
            path = Path(root) / name
            relative = path.relative_to(data_dir)
            if any(relative.is_relative_to(p) and relative != p for p in SANDBOX_READABLE):
                continue
            mode = stat.S_IMODE(path.lstat().st_mode)
            if not stat.S_ISLNK(path.lstat().st_mode) and mode & 0o077:
                found.append(f"{relative} {mode:o}")
    return found


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def test_a_served_hub_keeps_its_data_folder_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "hub"
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "pattern.xy").write_text("10.0 5\n10.1 7\n")
    (incoming / "notes.txt").write_text("Cu K-alpha\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
    cli = [*MATTERHUB, "--data-dir", str(data_dir)]
    # A permissive umask, as a default login shell has: the server must not rely on it.
    init = subprocess.run(
        ["sh", "-c", 'umask 022 && exec "$@"', "sh", *cli, "init"],
        capture_output=True, text=True, env=env, check=True, timeout=120,
    )  # fmt: skip
    token = re.search(r"(mh_[0-9a-f]{16}_\S+)", init.stdout)
    assert token, init.stdout
    assert loose_paths(data_dir) == []

    port = free_port()
    proc = subprocess.Popen(
        ["sh", "-c", 'umask 022 && exec "$@"', "sh", *cli, "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        # Data through Connect: an upload, staging, extraction, blobs, the search index.
        with Client(base, token.group(1)) as client:
            mdfcc = ConnectClient(client)
            mdfcc.create_dc_block(title="Copper patterns", authors=["Ada Lovelace"])
            mdfcc.add_data_source(str(incoming))
            result = mdfcc.submit_dataset()
            assert result["success"] is True, result
            deadline = time.monotonic() + 120
            while client.status(result["source_id"]).get("active", True):
                assert time.monotonic() < deadline, client.status(result["source_id"])
                time.sleep(0.2)
            assert client.status(result["source_id"])["state"] == "succeeded"
        # A web session (a catalog row) signed in with the token.
        with httpx.Client(base_url=base) as browser:
            form = browser.get("/signin").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert csrf
            signed = browser.post(
                "/signin/token", data={"token": token.group(1), "csrf_token": csrf.group(1)}
            )
            assert signed.status_code == 303
    finally:
        stop(proc)

    created = {p.relative_to(data_dir).parts[0] for p in data_dir.iterdir()}
    assert {"catalog.db", "secret", "blobs", "index"} <= created, created
    assert loose_paths(data_dir) == []


def test_catalog_and_secret_are_private_whatever_the_umask(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "hub"
    with umask(0o022):
        catalog = open_catalog(f"sqlite:///{data_dir / 'catalog.db'}")
        try:
            catalog.ping()
            with catalog.engine.begin() as conn:  # a write, so SQLite opens its WAL
                conn.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
            names = sorted(p.name for p in data_dir.iterdir())
            assert names == ["catalog.db", "catalog.db-shm", "catalog.db-wal"]
            for path in data_dir.iterdir():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        finally:
            catalog.close()
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        server_secret(Settings(data_dir=data_dir))
        assert stat.S_IMODE((data_dir / "secret").stat().st_mode) == 0o600


def test_an_older_data_folder_is_closed_at_start(tmp_path: Path) -> None:
    # What an earlier version left: a 0755 folder, a 0644 catalog, a 0644 secret.
    data_dir = tmp_path / "hub"
    with umask(0o022):
        services = build_services(Settings(data_dir=data_dir))
        services.close()
        for path in (data_dir, data_dir / "catalog.db", data_dir / "secret"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        services = build_services(Settings(data_dir=data_dir))
        services.close()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "catalog.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "secret").stat().st_mode) == 0o600
