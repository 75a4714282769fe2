"""No working sandbox, no servable code — unless the operator chose `hub_sandbox = "none"`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from matterhub.client.describe import describe_function
from matterhub.core.errors import InvalidInput
from matterhub.hub.runtime import Call, LocalExecutor, WorkerSpec
from matterhub.sandbox import Limits, Sandbox, SandboxUnavailable
from tests.hub.conftest import hub_settings, import_function, start_hub, write_module


@pytest.fixture
def no_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with the tools a server needs but without bubblewrap (as on a host lacking it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("setpriv", "prlimit", "git", "uv"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_a_host_without_bubblewrap_has_no_sandbox(no_bwrap: Path) -> None:
    sandbox = Sandbox("bwrap")
    assert sandbox.problem() == "bubblewrap (bwrap) is not installed"
    with pytest.raises(SandboxUnavailable, match="hub_sandbox = 'none'"):
        sandbox.require()
    assert sandbox.describe()["working"] is False


def test_auto_no_longer_falls_back_and_unknown_modes_are_refused(no_bwrap: Path) -> None:
    assert Sandbox("auto").problem() == "bubblewrap (bwrap) is not installed"
    with pytest.raises(InvalidInput):
        Sandbox("chroot")


def test_the_executor_refuses_to_start_a_worker(no_bwrap: Path, tmp_path: Path) -> None:
    executor = LocalExecutor(tmp_path / "scratch", Sandbox("bwrap"), max_workers=1)
    spec = WorkerSpec(
        key="v1",
        python=Path("/usr/bin/python3"),
        shim=tmp_path / "shim.py",
        files_dir=tmp_path,
        document_path=tmp_path / "document.json",
        env_dir=tmp_path,
        limits=Limits(),
    )
    try:
        with pytest.raises(SandboxUnavailable, match="no working sandbox"):
            executor.run(spec, [Call("x")])
    finally:
        executor.close()


def publish_echo(hub, folder: Path) -> dict:  # type: ignore[no-untyped-def]
    path = write_module(folder, "echo", "def echo(x: str) -> str:\n    return x\n")
    description = describe_function(import_function(path, "echo"), "echo")
    description.set_title("Echo").set_creators(["Doe, Jane"]).set_example("a", "a")
    build: dict = hub.client("alice").publish_servable(description, wait=True, timeout=300)
    return build


def test_builds_fail_naming_the_missing_sandbox(no_bwrap: Path, tmp_path: Path) -> None:
    for hub in start_hub(hub_settings(tmp_path / "hub")):
        build = publish_echo(hub, tmp_path / "src")
        assert build["status"] == "failed"
        assert "no working sandbox" in build["log"] and "bubblewrap" in build["log"]
        health = hub.client(None)._request("GET", "/health").json()
        assert health["sandbox"].startswith("refusing servable code: bubblewrap")


def test_the_operator_may_choose_unsandboxed(no_bwrap: Path, tmp_path: Path) -> None:
    settings = hub_settings(tmp_path / "hub", hub_sandbox="none")
    for hub in start_hub(settings):
        build = publish_echo(hub, tmp_path / "src")
        assert build["status"] == "succeeded", build["log"]
        assert hub.client("alice").run("alice/echo", "hello") == "hello"
        health = hub.client(None)._request("GET", "/health").json()
        assert health["sandbox"].startswith("none (unsandboxed")
    assert os.environ["PATH"] == str(no_bwrap)
