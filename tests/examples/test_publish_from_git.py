"""`examples/publish_from_git.py` and `matterhub servable publish <git URL>`, as a user runs them,
against a hub served on loopback and a real `git daemon`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matterhub.cli.main import app
from tests.hub.conftest import ADD_SOURCE, hub_settings
from tests.hub.git_server import GitDaemon, GitRepo
from tests.hub.served import serve
from tests.hub.test_sources import LOOPBACK, TIMES_SOURCE, document

pytestmark = pytest.mark.timeout(600)
SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "publish_from_git.py"


def _example(base: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
    env |= {"MATTERHUB_URL": base, "MATTERHUB_TOKEN": token}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )


def test_publish_from_git_example_and_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = GitRepo(tmp_path / "git")
    doc = document("git-adder")
    v1 = repo.commit({"dlhub.json": json.dumps(doc), "adder.py": ADD_SOURCE}, "v1")
    repo.tag("v1")
    daemon = GitDaemon(repo.repos)
    try:
        settings = hub_settings(tmp_path / "hub", outbound_allowed_networks=LOOPBACK)
        with serve(settings) as hub:
            done = _example(hub.base, hub.tokens["alice"], "--source", daemon.url(), "--ref", "v1")
            assert done.returncode == 0, done.stdout + done.stderr
            lines = done.stdout.splitlines()
            first = re.fullmatch(r"published alice/git-adder version (\S+) in [\d.]+ s", lines[0])
            assert first is not None, lines[0]
            assert lines[1] == f"source {daemon.url()} commit {v1}"
            assert any(line.strip().startswith("adder.py ") for line in lines[2:4])
            assert lines[-1] == "run [1.0, 2.0] -> 3.0"

            # The CLI: the same commit again is the version made before, a new one is new.
            monkeypatch.setenv("MATTERHUB_CLIENT_CONFIG", str(tmp_path / "cfg" / "client.json"))
            env = {"MATTERHUB_URL": hub.base, "MATTERHUB_TOKEN": hub.tokens["alice"]}
            cli = CliRunner()
            again = cli.invoke(app, ["servable", "publish", f"{daemon.url()}@v1"], env=env)
            assert again.exit_code == 0, again.output
            assert f"alice/git-adder {first[1]} was published from this before" in again.output
            v2 = repo.commit({"adder.py": TIMES_SOURCE}, "doubles")
            doc2 = {
                **doc,
                "servable": {**doc["servable"], "example": {"input": [1.0], "output": 2.0}},
            }
            repo.commit({"dlhub.json": json.dumps(doc2)}, "example for v2")
            newer = cli.invoke(app, ["servable", "publish", f"git+{daemon.url()}"], env=env)
            assert newer.exit_code == 0, newer.output
            with hub.client("alice") as alice:
                versions = [v["version"] for v in alice.servable_versions("alice/git-adder")]
                assert len(versions) == 2 and versions[1] == first[1]
                assert f"alice/git-adder {versions[0]}: succeeded" in newer.output
                described = alice.describe_servable("alice/git-adder", versions[0])
                assert described["document"]["dlhub"]["source"]["commit"] not in (v1, v2)
                assert alice.run("alice/git-adder", [1.0, 2.0]) == 6.0

            # A missing ref: one line naming the source, exit 2, no traceback.
            bad = cli.invoke(app, ["servable", "publish", f"{daemon.url()}@nope"], env=env)
            assert bad.exit_code != 0 and "nope" in bad.output and "Traceback" not in bad.output
            refused = _example(hub.base, hub.tokens["alice"], "--source", "git://10.0.0.1/x.git")
            assert refused.returncode == 1 and "private address" in refused.stderr
    finally:
        daemon.close()
