"""`python -m examples.delta_learning.workflow --quick` as a user runs it — against a hub served on
loopback, and on a hub of its own that mints DataCite DOIs (the DataCite fake): the molecules
become searchable records, the servables build and cite their identifiers, and the served answers
are the trained model's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from examples.delta_learning import data
from examples.delta_learning import model as delta_model
from examples.delta_learning.workflow import QUICK_MOLECULES, split

from matterhub import Client
from tests.fakes.datacite import FakeDataCite
from tests.hub.conftest import LOCAL_WHEELS, SHARED_CACHE, SHARED_ENVS, hub_settings
from tests.hub.served import serve

pytestmark = pytest.mark.timeout(900)
ROOT = Path(__file__).resolve().parents[2]


def _workflow(env: dict[str, str], out: Path, *args: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
    done = subprocess.run(
        [sys.executable, "-m", "examples.delta_learning.workflow", "--quick", "--out", str(out), *args],
        cwd=ROOT, env=clean | env, capture_output=True, text=True, timeout=840, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _check(printed: str, out: Path, reader: Client | None, owner: str) -> dict[str, Any]:
    """What every quick run must have done (`reader`: a client to search the hub with, while it
    runs); returns the summary it wrote."""
    molecules, table = data.load()
    quick = [m for m in molecules if m.info["name"] in QUICK_MOLECULES]
    rows = table.set_index("name")
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())

    # 1. Every molecule is a record with its energies, units and structure facts.
    sid = summary["dataset"]["source_id"]
    assert sid == "delta_g2_atomization_quick_v1.0"
    pid = summary["dataset"]["pid"]
    assert pid and f"published {sid}: identifier {pid}" in printed
    if reader is not None:
        found = reader.forge().match_field("custom.name", "CH3OH").search()
        assert len(found) == 1
        record = found[0]
        reference = rows.loc["CH3OH", "reference_De_kcal_mol"]
        assert record["custom"]["reference_De"] == pytest.approx(reference)
        assert record["custom"]["xtb_De_units"] == "kcal/mol"
        assert record["dft"]["atomization_energy_units"] == "kcal/mol"
        assert record["dft"]["exchange_correlation_functional"] == "B3LYP"
        assert sorted(record["material"]["elements"]) == ["C", "H", "O"]

    # 2. Forge's counts are what the table says.
    with_co = [m for m in quick if {"C", "O"} <= set(m.get_chemical_symbols())]
    xtb = rows.loc[QUICK_MOLECULES, "xtb_De_kcal_mol"]
    assert summary["found"] == {
        "records": len(QUICK_MOLECULES),
        "with C and O": len(with_co),
        "xtb_De 300-500 kcal/mol": int(((xtb >= 300) & (xtb <= 500)).sum()),
    }
    n = len(QUICK_MOLECULES)
    assert summary["loaded"] == n and f"loaded {n} records, {n} ASE molecules" in printed

    # 3. Four servables, each with an identifier its citation carries; the Δ-model cites the
    # dataset's identifier as what it is derived from.
    servables = summary["servables"]
    assert set(servables) == {
        "xtb_atomization", "xtb_annotate", "delta_atomization", "delta_pipeline",
    }  # fmt: skip
    for name, entry in servables.items():
        assert entry["ref"] == f"{owner}/{name}"
        assert entry["identifier"] and entry["identifier"] in entry["bibtex"], name
        assert f"{entry['ref']}: identifier {entry['identifier']}" in printed
    xml = servables["delta_atomization"]["datacite_xml"]
    assert re.search(rf'relationType="IsDerivedFrom">[^<]*{re.escape(pid)}<', xml), xml

    # 4. The served answers are the trained model's, in-process, on the held-out molecules.
    used = summary["use"]
    loaded = [m for name in data.molecule_names() for m in quick if m.info["name"] == name]
    _, test_idx = split(len(loaded))
    held_out = [loaded[i] for i in test_idx]
    assert used["names"] == [m.info["name"] for m in held_out]
    cheap = [float(rows.loc[m.info["name"], "xtb_De_kcal_mol"]) for m in held_out]
    expected = delta_model.predict(out / "trained", held_out, cheap)
    assert used["corrected"] == pytest.approx(expected, abs=1e-3)
    assert used["counts"] == {"success": len(held_out)}
    assert used["cli_one"]["answer"] == pytest.approx(used["corrected"][0], abs=1e-6)
    assert used["cli_batch"]["answers"] == pytest.approx(used["corrected"][:3], abs=1e-6)
    truth = [float(rows.loc[m.info["name"], "reference_De_kcal_mol"]) for m in held_out]
    mae = sum(abs(a - b) for a, b in zip(used["corrected"], truth, strict=True)) / len(truth)
    assert used["mae_served"] == pytest.approx(mae, abs=1e-6)
    assert "held-out MAE vs experiment" in printed
    assert (out / "parity.png").read_bytes().startswith(b"\x89PNG")
    return summary


def test_the_quick_workflow_against_a_hub(tmp_path: Path) -> None:
    with serve(hub_settings(tmp_path / "hub")) as hub:
        env = {"MATTERHUB_URL": hub.base, "MATTERHUB_TOKEN": hub.tokens["alice"]}
        printed = _workflow(env, tmp_path / "out")
        with hub.client("bob") as bob:  # public records: another user finds them
            summary = _check(printed, tmp_path / "out", bob, "alice")
    assert summary["dataset"]["pid"].startswith("mh/")  # the hub's own identifiers


def test_the_quick_workflow_on_its_own_hub_with_datacite(tmp_path: Path) -> None:
    """No hub given: the script serves one (here minting DOIs, as its settings say)."""
    fake = FakeDataCite().start()
    try:
        env = {
            "MATTERHUB_PID_PROVIDER": "datacite",
            "MATTERHUB_DATACITE_URL": fake.url,
            "MATTERHUB_DATACITE_USER": fake.user,
            "MATTERHUB_DATACITE_PASSWORD": fake.password,
            "MATTERHUB_DATACITE_PREFIX": fake.prefix,
            "MATTERHUB_HUB_CACHE_DIR": str(SHARED_CACHE),
            "MATTERHUB_HUB_ENVS_DIR": str(SHARED_ENVS),
            "MATTERHUB_HUB_FIND_LINKS": json.dumps(LOCAL_WHEELS),
        }
        hub_dir = tmp_path / "own-hub"
        printed = _workflow(env, tmp_path / "out", "--hub-dir", str(hub_dir))
        url = re.search(r"^own hub at (http://127\.0\.0\.1:\d+) \(folder (.+)\)$", printed, re.M)
        assert url is not None and url[2] == str(hub_dir), printed
        # The hub stopped with the script; its folder (kept: --hub-dir) holds the catalog.
        with pytest.raises(httpx.ConnectError):
            httpx.get(url[1] + "/health", timeout=5)
        assert (hub_dir / "hub").is_dir()
        # What it printed and wrote, checked against the table and the saved model.
        summary = _check(printed, tmp_path / "out", None, "delta")
        doi = summary["dataset"]["pid"]
        assert doi.startswith(f"{fake.prefix}/") and doi in fake.dois
        xml = summary["servables"]["delta_atomization"]["datacite_xml"]
        assert f'relatedIdentifierType="DOI" relationType="IsDerivedFrom">{doi}<' in xml
        for entry in summary["servables"].values():
            assert entry["identifier"].startswith(f"{fake.prefix}/")
            assert entry["identifier"] in fake.dois
    finally:
        fake.stop()
