"""`examples/access_request.py` run as a user would, against a hub served on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hub.conftest import hub_settings
from tests.hub.served import serve

pytestmark = pytest.mark.timeout(600)
SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "access_request.py"


def test_access_request_example(tmp_path: Path) -> None:
    with serve(hub_settings(tmp_path / "hub")) as hub:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
        env |= {"MATTERHUB_URL": hub.base, "MATTERHUB_TOKEN": hub.tokens["alice"]}
        carol_token = hub.tokens["carol"]
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--name", "scaler", "--requester-token", carol_token],
            env=env,
            capture_output=True,
            text=True,
            timeout=540,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].startswith("published alice/scaler version 1")
        assert lines[1].startswith("carol may not run it yet: you may not run this servable")
        assert "request" in lines[2] and lines[2].endswith("is pending")
        assert lines[3] == "alice has 1 pending request(s): carol for alice/scaler"
        assert lines[4].startswith("alice granted it to user:carol at ")
        assert lines[5] == "carol ran alice/scaler: [2.5, 5.0, 10.0]"
        assert lines[6].startswith("decision on record: granted by alice at ")
        # The hub agrees: carol holds the right, recorded once.
        with hub.client("carol") as carol:
            assert carol.run("alice/scaler", [4.0]) == [10.0]
            (mine,) = carol.access_requests()
        assert (mine["status"], mine["decided_by"]) == ("granted", "alice")

    # Without the second token the script says what it needs (no traceback).
    missing = subprocess.run(
        [sys.executable, str(SCRIPT), "--url", "http://127.0.0.1:9", "--token", "x"],
        env={k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2 and "--requester-token" in missing.stderr
    assert "Traceback" not in missing.stderr
