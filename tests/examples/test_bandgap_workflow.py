"""`python -m examples.bandgap.workflow --quick` as a user runs it, against a hub served on
loopback: 2,000 simulated samples become 2,000 searchable records through one Connect
submission, Forge cuts the training set and the held-out composition region, the models are
published with identifiers linked to the dataset, and the test images go through the hub in
binary batches with the answers of the same models in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from examples.bandgap import simulate
from examples.bandgap.workflow import QUICK_SIZE, SEED, TEST_REGION, TRAIN_REGION

from tests.hub.conftest import hub_settings
from tests.hub.served import serve

pytestmark = pytest.mark.timeout(900)
ROOT = Path(__file__).resolve().parents[2]


def test_the_quick_bandgap_workflow_against_a_hub(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with serve(hub_settings(tmp_path / "hub")) as hub:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
        env = clean | {"MATTERHUB_URL": hub.base, "MATTERHUB_TOKEN": hub.tokens["alice"]}
        done = subprocess.run(
            [sys.executable, "-m", "examples.bandgap.workflow", "--quick", "--out", str(out)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=840, check=False,
        )  # fmt: skip
        printed = done.stdout
        assert done.returncode == 0, printed + done.stderr
        summary = json.loads((out / "summary.json").read_text())
        truth = simulate.simulate(QUICK_SIZE, SEED)
        sid = summary["dataset"]["source_id"]
        assert sid == "bandgap_simulated_films_quick_v1.0"
        assert summary["dataset"]["extracting"].startswith(f"{QUICK_SIZE} records from 4000 files")

        # 1. Another user finds any sample by its index, with its facts and its two files.
        with hub.client("bob") as bob:
            found = bob.forge().match_source_names(sid).match_field("custom.index", 123).search()
            assert len(found) == 1
            record = found[0]
            assert record["custom"]["gap_ev"] == pytest.approx(truth["gap_ev"][123], abs=1e-5)
            assert record["custom"]["gap_ev_units"] == "eV"
            assert record["material"]["composition"].endswith(
                f"O{round(float(truth['composition'][123] @ [1.5, 2.5, 1.5, 2.0]), 4):g}"
            )
            assert {f["path"].rsplit("/", 1)[-1] for f in record["files"]} == {
                "image.png",
                "spectrum.json",
            }

    # 2. The Forge cuts are exactly the region queries on the simulated compositions.
    x_bi = truth["composition"][:, 0]
    want_test = np.flatnonzero(x_bi >= TEST_REGION[1] - 1e-9)
    want_train = np.flatnonzero(x_bi <= TRAIN_REGION[2] + 1e-9)
    served = np.load(out / "served.npz")
    assert served["index"].tolist() == want_test.tolist()
    assert summary["found"] == {
        "train": len(want_train),
        "test": len(want_test),
        "records": QUICK_SIZE,
    }
    assert 0 < len(want_test) < len(want_train) and len(want_test) + len(want_train) == QUICK_SIZE

    # 3. Published, identified, linked; served answers are the in-process ones.
    for name, entry in summary["servables"].items():
        assert entry["ref"] == f"alice/{name}"
        assert (
            entry["identifier"] and f"{entry['ref']}: identifier {entry['identifier']}" in printed
        )
        if name not in ("bandgap_tauc", "bandgap_pipeline"):
            assert entry["largest_difference"] < 1e-4, name
    assert served["bandgap_vae_encoder"].shape == (len(want_test), 8)
    assert served["bandgap_vae"].shape == (len(want_test), simulate.WAVELENGTH_NM.size)
    maes = summary["mae_ev"]
    assert set(maes) == {
        "bandgap_vae", "bandgap_ae", "bandgap_colour", "bandgap_pipeline", "baseline (training mean)"
    }  # fmt: skip
    # The pipeline's gaps are the Tauc fit of the served VAE spectra.
    assert summary["servables"]["bandgap_pipeline"]["largest_difference"] < 1e-3
    assert all(np.isfinite(v) and v >= 0 for v in maes.values())
