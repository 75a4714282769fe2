"""`python -m examples.cdi.workflow --quick` as a user runs it, against a hub served on loopback
and the real `git daemon` the script starts: the test images become searchable records with their
simulation parameters, the CNN is published from its git location with the pushed commit pinned,
both servables cite their identifiers, and the served answers are what the same code computes
in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from examples.cdi import metrics as met
from examples.cdi import phase_retrieval as pr
from examples.cdi import simulate as sim
from examples.cdi.workflow import QUICK_TEST, SIZE_RANGE

from tests.hub.conftest import hub_settings
from tests.hub.served import serve
from tests.hub.test_sources import LOOPBACK

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
]
ROOT = Path(__file__).resolve().parents[2]


def test_the_quick_cdi_workflow_against_a_hub_and_a_git_server(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with serve(hub_settings(tmp_path / "hub", outbound_allowed_networks=LOOPBACK)) as hub:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
        env = clean | {"MATTERHUB_URL": hub.base, "MATTERHUB_TOKEN": hub.tokens["alice"]}
        done = subprocess.run(
            [sys.executable, "-m", "examples.cdi.workflow", "--quick", "--out", str(out)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=840, check=False,
        )  # fmt: skip
        printed = done.stdout
        assert done.returncode == 0, printed + done.stderr
        summary = json.loads((out / "summary.json").read_text())
        test = sim.load(out / "data" / "test.h5")
        params = test["params"][:QUICK_TEST]

        # 1. Each submitted image is a record with its parameters; another user finds them.
        sid = summary["dataset"]["source_id"]
        assert sid == "cdi_simulated_test_quick_v1.0" and summary["dataset"]["pid"]
        with hub.client("bob") as bob:
            found = bob.forge().match_source_names(sid).match_field("custom.index", 3).search()
            assert len(found) == 1
            record = found[0]["custom"]
            assert record["area_px"] == pytest.approx(params[3]["area_px"])
            assert record["family"] == params[3]["family"]
            assert record["phase_max_rad_units"] == "rad"
            paths = {f["path"].rsplit("/", 1)[-1] for f in found[0]["files"]}
            assert paths == {"intensity.h5", "truth.h5", "parameters.csv"}
    lo, hi = SIZE_RANGE
    assert summary["found"] == {
        "records": list(range(QUICK_TEST)),
        "in_range": [i for i, p in enumerate(params) if lo <= p["area_px"] <= hi],
        "faceted": [i for i, p in enumerate(params) if p["family"] == "faceted"],
    }
    assert 0 < len(summary["found"]["in_range"]) < QUICK_TEST  # the range selects

    # 2. Published from git: the commit pushed to the daemon is the one the hub pinned.
    cnn = summary["servables"]["cdi_structure"]
    head = subprocess.run(
        ["git", "-C", str(out / "git" / "repos" / "cdi_structure.git"), "rev-parse", "v1"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert cnn["commit_pinned"] == cnn["commit_pushed"] == head
    assert cnn["files"] == sorted(
        ["README.md", "LICENSE", "cdi_structure.json", "cdi_structure.weights.h5"]
    )
    assert cnn["location"].startswith("git://127.0.0.1:")
    assert "Cherukara" in cnn["bibtex"]
    for name, entry in summary["servables"].items():
        assert entry["ref"] == f"alice/{name}"
        assert entry["identifier"] and entry["identifier"] in entry["bibtex"], name
        assert f"{entry['ref']}: identifier {entry['identifier']}" in printed

    # 3. The served answers are the trained model's and phase retrieval's, in-process.
    os.environ.setdefault("KERAS_BACKEND", "torch")
    from examples.cdi import model as cnn_model

    served = np.load(out / "served.npz")
    assert served["indices"].tolist() == list(range(QUICK_TEST))
    intensity = test["intensity"][:QUICK_TEST]
    amplitude, phase = cnn_model.predict(cnn_model.load(out / "trained"), intensity)
    assert np.allclose(served["cnn_amplitude"], amplitude, atol=1e-4)
    assert np.allclose(served["cnn_phase"], phase, atol=1e-4)
    for i in range(2):
        assert np.allclose(served["phase_retrieval"][i], pr.retrieve_phase(intensity[i]), atol=1e-4)
    scores = summary["use"]["scores"]
    expected = [
        met.score(*served["phase_retrieval"][i], test["support"][i], test["phase"][i])
        for i in range(QUICK_TEST)
    ]
    assert scores["phase retrieval"]["phase"] == pytest.approx([s.phase_error for s in expected])
    assert scores["phase retrieval"]["shape_mean"] < 0.5  # crystals, not noise
    assert all(gap < 1e-4 for gap in summary["use"]["gaps"].values()), summary["use"]["gaps"]

    # 4. The figure.
    assert (out / "figure5.png").read_bytes().startswith(b"\x89PNG")
