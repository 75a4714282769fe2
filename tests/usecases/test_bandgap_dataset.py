"""The band-gap samples as files + a mapping through ONE Connect submission on a served hub:
each sample folder becomes one record with its composition, elements, facts (with units) and
its two files, and Forge cuts composition ranges numerically and by elements.

The samples are a small stand-in with `simulate.simulate`'s keys and shapes (the dataset code
only depends on that interface), with fractions on a 1/4 grid so some elements are absent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from examples._hubtools import submit_and_wait
from examples.bandgap import dataset

from matterhub.client.connect import ConnectClient
from tests.hub.conftest import hub_settings
from tests.hub.served import serve

pytestmark = pytest.mark.timeout(300)
ELEMENTS = ["Bi", "Fe", "Cu", "Zn"]


def stand_in(n: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    grid = [c for c in np.ndindex(5, 5, 5, 5) if sum(c) == 4]  # quarters: 35 compositions
    comp = np.array([grid[i % len(grid)] for i in range(n)], dtype=float) / 4
    wavelength = np.linspace(300.0, 800.0, 51)
    return {
        "composition": comp,
        "elements": ELEMENTS,
        "thickness_nm": rng.uniform(50, 300, n),
        "gap_ev": 1.5 + comp @ np.array([1.0, 0.6, 0.2, 1.8]),
        "wavelength_nm": wavelength,
        "absorbance": rng.uniform(0, 2, (n, wavelength.size)),
        "image": rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8),
        "index": np.arange(n),
    }


def test_formula_balances_oxygen_and_leaves_absent_cations_out() -> None:
    assert dataset.formula(np.array([0.25, 0.5, 0.25, 0.0]), ELEMENTS) == "Bi0.25Fe0.5Cu0.25O1.375"
    assert dataset.formula(np.array([0, 0, 0, 1.0]), ELEMENTS) == "Zn1O1"


def test_files_layout(tmp_path: Path) -> None:
    samples = stand_in(3)
    assert dataset.write(samples, tmp_path) == 6
    rows = list(dataset.read(tmp_path))
    assert [r[0] for r in rows] == ["s000000", "s000001", "s000002"]
    _name, image, spectrum = rows[1]
    assert np.array_equal(image, samples["image"][1])  # lossless
    assert spectrum["sample"]["gap_ev"] == pytest.approx(samples["gap_ev"][1], abs=1e-5)
    assert len(spectrum["absorbance"]) == len(spectrum["wavelength_nm"]) == 51


def test_one_submission_gives_one_searchable_record_per_sample(tmp_path: Path) -> None:
    n = 40
    samples = stand_in(n)
    dataset.write(samples, tmp_path / "films")
    zipped = dataset.archives(tmp_path / "films", tmp_path / "zips")
    assert [z.name for z in zipped] == ["films-0000.zip"]
    with serve(hub_settings(tmp_path / "hub")) as hub, hub.client("alice") as alice:
        connect = ConnectClient(alice)
        dataset.submission(connect, str(zipped[0]), ELEMENTS, source_name="bandgap_test", n=n)
        version = submit_and_wait(alice, connect, timeout=240)
        sid = version["source_id"]
        assert f"{n} records from {2 * n} files" in json.dumps(version["status"])
        with hub.client("bob") as bob:
            forge = bob.forge()
            records = forge.match_source_names(sid).match_resource_types("record").aggregate()
            assert sorted(r["custom"]["index"] for r in records) == list(range(n))
            one = next(r for r in records if r["custom"]["index"] == 7)
            x = samples["composition"][7]
            assert one["material"]["composition"] == dataset.formula(x, ELEMENTS)
            present = {el for el, v in zip(ELEMENTS, x, strict=True) if v > 0}
            assert set(one["material"]["elements"]) == present | {"O"}
            assert one["custom"]["gap_ev"] == pytest.approx(samples["gap_ev"][7], abs=1e-5)
            assert one["custom"]["gap_ev_units"] == "eV"
            assert one["custom"]["thickness_nm_units"] == "nm"
            assert one["custom"]["sample"] == "s000007"
            names = sorted(f["path"] for f in one["files"])
            assert names == ["b0000/s000007/image.png", "b0000/s000007/spectrum.json"]

            # Numeric ranges (0.5 ≤ x_Bi ≤ 1, not a string order) and element sets cut the data.
            cut = (
                forge.match_source_names(sid).match_resource_types("record")
                .match_range("custom.x_Bi", 0.5, 1.0).aggregate()
            )  # fmt: skip
            want = [i for i in range(n) if samples["composition"][i][0] >= 0.5]
            assert 0 < len(want) < n
            assert sorted(r["custom"]["index"] for r in cut) == want
            with_zn = (
                forge.match_source_names(sid).match_resource_types("record")
                .match_elements(["Bi", "Zn"]).aggregate()
            )  # fmt: skip
            want = [i for i in range(n) if samples["composition"][i][[0, 3]].min() > 0]
            assert sorted(r["custom"]["index"] for r in with_zn) == want
