"""The install step of a build: wheels only by default; a source build runs in the sandbox.

A requirement that exists only as a source distribution carries a build backend of its own
(`backend-path = ["."]`, no build requirements, so nothing is downloaded): when it runs it tries
to read the hub's catalog and secret, list the data folder, find the server's environment
variables and write beside the shared package cache, prints what it saw, and fails on purpose so
its report lands in the build log.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from matterhub.client.describe import describe_function
from tests.hub.conftest import LOCAL_WHEELS, hub_settings, import_function, start_hub, write_module

BACKEND = r"""
import json, os, sys

def _try(action):
    try:
        return "allowed:" + repr(action())[:200]
    except Exception as exc:
        return "refused:" + type(exc).__name__

def _read(path):
    def read():
        if os.path.isdir(path):
            return os.listdir(path)
        with open(path, "rb") as handle:
            return handle.read(32)
    return read

def _write(path):
    def write():
        with open(path, "w") as handle:
            handle.write("planted")
        return path
    return write

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    data = __DATA__
    report = {
        "uid": os.getuid(),
        "catalog": _try(_read(os.path.join(data, "catalog.db"))),
        "secret": _try(_read(os.path.join(data, "secret"))),
        "data_dir": _try(_read(data)),
        "shadow": _try(_read("/etc/shadow")),
        "root_home": _try(_read("/root/.bashrc")),
        "hub_variables": sorted(k for k in os.environ if k.startswith("MATTERHUB")),
        "write_usr": _try(_write("/usr/planted.txt")),
        "write_data_dir": _try(_write(os.path.join(data, "planted.txt"))),
    }
    print("INSTALL-REPORT " + json.dumps(report, sort_keys=True), file=sys.stderr, flush=True)
    raise RuntimeError("the probe stops here")
"""


def make_sdist(folder: Path, data_dir: Path) -> Path:
    """`mhprobe-1.0.tar.gz` in `folder` (world-readable: the install uid reads it)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    files = {
        "mhprobe-1.0/PKG-INFO": "Metadata-Version: 2.1\nName: mhprobe\nVersion: 1.0\n",
        "mhprobe-1.0/pyproject.toml": (
            '[build-system]\nrequires = []\nbuild-backend = "probe_backend"\n'
            'backend-path = ["."]\n\n[project]\nname = "mhprobe"\nversion = "1.0"\n'
        ),
        "mhprobe-1.0/probe_backend.py": BACKEND.replace("__DATA__", repr(str(data_dir))),
    }
    target = folder / "mhprobe-1.0.tar.gz"
    with tarfile.open(target, "w:gz") as archive:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            body = text.encode()
            info.size, info.mode = len(body), 0o644
            archive.addfile(info, io.BytesIO(body))
    target.chmod(0o644)
    return folder


def publish(hub, folder: Path) -> dict:  # type: ignore[no-untyped-def]
    path = write_module(folder, "needs", "def needs(x: int) -> int:\n    return x\n")
    description = describe_function(import_function(path, "needs"), "needs")
    description.set_title("Needs").set_creators(["Doe, Jane"]).set_example(1, 1)
    description.add_requirement("mhprobe", "1.0")
    build: dict = hub.client("alice").publish_servable(description, wait=True, timeout=300)
    return build


def test_installs_take_wheels_only_by_default(tmp_path: Path) -> None:
    data_dir = tmp_path / "hub"
    links = make_sdist(tmp_path / "links", data_dir)
    # Its own environments: what the installer may see is the point here.
    settings = hub_settings(data_dir, hub_find_links=[str(links), *LOCAL_WHEELS], hub_envs_dir=None)
    for hub in start_hub(settings):
        build = publish(hub, tmp_path / "src")
        assert build["status"] == "failed" and build["step"] == "environment", build["log"]
        assert "MATTERHUB_HUB_SOURCE_BUILDS" in build["log"]
        assert "INSTALL-REPORT" not in build["log"]  # the package's code never ran


def test_a_source_build_runs_sandboxed_with_no_view_of_the_hub(tmp_path: Path) -> None:
    data_dir = tmp_path / "hub"
    links = make_sdist(tmp_path / "links", data_dir)
    settings = hub_settings(
        data_dir,
        hub_find_links=[str(links), *LOCAL_WHEELS],
        hub_source_builds=True,
        hub_envs_dir=None,
    )
    for hub in start_hub(settings):
        build = publish(hub, tmp_path / "src")
        assert build["status"] == "failed" and build["step"] == "environment"
        lines = [line for line in build["log"].splitlines() if "INSTALL-REPORT " in line]
        assert lines, build["log"]  # the build backend ran, and said what it saw
        report = json.loads(lines[-1].split("INSTALL-REPORT ", 1)[1])
        assert report["uid"] != 0
        for name in ("catalog", "secret", "shadow", "root_home", "write_usr"):
            assert report[name].startswith("refused:"), (name, report[name])
        # only the empty folders on the way to the environment being built are there
        assert report["data_dir"] in ("refused:PermissionError", "allowed:['hub']")
        assert report["hub_variables"] == []
        # data_dir lies below /tmp here: any write lands in the sandbox's own /tmp, not the host
        assert not (data_dir / "planted.txt").exists()
