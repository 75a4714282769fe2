"""`examples/scale_servable.py` run as a user would, against a hub served on loopback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_scaling_cli import serve
from tests.hub.conftest import hub_settings

pytestmark = pytest.mark.timeout(600)
SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "scale_servable.py"


def test_scale_servable_example(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path / "hub", hub_autoscale_interval_s=0.1)
    with serve(settings) as hub:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
        env |= {"MATTERHUB_URL": hub.base, "MATTERHUB_TOKEN": hub.tokens["alice"]}
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--min", "1", "--max", "2", "--seconds", "3"],
            env=env,
            capture_output=True,
            text=True,
            timeout=540,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert re.fullmatch(r"published alice/matmul version \S+", lines[0]), lines
        assert lines[1] == "bounds: min 1, max 2, target queue 0.0 (hub cap 4, executor local)"
        load = re.fullmatch(
            r"load: (\d+) runs from 4 threads in [\d.]+ s \([\d.]+ runs/s\)", lines[2]
        )
        assert load and int(load[1]) > 10, lines
        assert re.match(r"version \S+: 2 replicas \(target 2\)", lines[4]), lines
        workers = [line for line in lines[5:] if line.startswith("  worker ")]
        assert len(workers) == 2 and all(" MiB" in w for w in workers)
        calls = sum(int(re.search(r"(\d+) calls", w)[1]) for w in workers)  # type: ignore[index]
        assert calls == int(load[1])
        # The hub agrees: the bounds are stored, and the pool ran two workers.
        with hub.client("alice") as alice:
            view = alice.servable_workers("alice/matmul")
        assert view["scaling"] == {"min_replicas": 1, "max_replicas": 2, "target_queue": 0.0}
        assert view["pools"][0]["replicas"] == 2

    missing = subprocess.run(
        [sys.executable, str(SCRIPT), "--url", "http://127.0.0.1:9"],
        env={k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2 and "--token" in missing.stderr
    assert "Traceback" not in missing.stderr
