"""OPTIMADE end to end: a real `matterhub serve` with the demo datasets, checked by the
`optimade` package's own validator and queried with its own client (`OptimadeClient`)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from matterhub.bootstrap import build_services
from matterhub.cli.demo_data import demo_source_root, publish_demo_datasets
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.settings import Settings
from tests.e2e.test_serve import free_port, start, stop, wait_healthy

pytestmark = pytest.mark.e2e
VALIDATOR = Path(sys.executable).with_name("optimade-validator")


def seed_demo(data_dir: Path) -> None:
    """Publish the demo datasets (dcdft crystals, g2 molecules) through Connect, in-process."""
    settings = Settings(data_dir=data_dir, connect_allowed_roots=[demo_source_root(data_dir)])
    services = build_services(settings)
    try:
        services.search.start()
        services.connect.start()
        services.accounts.create_user(SYSTEM_IDENTITY, "alice")
        token = services.accounts.create_token(SYSTEM_IDENTITY, "alice").token
        published = publish_demo_datasets(services, services.accounts.authenticate(token))
        assert published == ["dcdft_v1.0", "g2_v1.0"], "the demo needs ASE (matterhub[demo])"
    finally:
        services.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("optimade") / "hub"
    seed_demo(data_dir)
    port = free_port()
    proc = start(["serve"], data_dir, port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_healthy(base, proc).status_code == 200
        yield base
    finally:
        if proc.poll() is None:
            stop(proc)


@pytest.mark.parametrize("root", ["/optimade/v1", "/optimade"])
def test_the_optimade_validator_finds_no_failure(served: str, root: str) -> None:
    run = subprocess.run(
        [str(VALIDATOR), "--json", served + root],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(run.stdout)
    problems = (
        report["failure_messages"]
        + report["internal_failure_messages"]
        + report["optional_failure_messages"]
    )
    assert problems == [], json.dumps(problems, indent=1)
    assert report["failure_count"] == report["internal_failure_count"] == 0
    assert report["optional_failure_count"] == 0
    # info, versions, both entry types with their info, filters on every queryable property…
    assert report["success_count"] >= 55 and report["optional_success_count"] >= 9
    assert run.returncode == 0, run.stderr[-2000:]


def test_the_optimade_client_queries_the_hub(served: str) -> None:
    from optimade.client import OptimadeClient

    base = served + "/optimade"
    client = OptimadeClient(base_urls=[base], use_async=False, silent=True)
    counts = client.count("nperiodic_dimensions=3")["structures"]["nperiodic_dimensions=3"]
    assert counts[base] == 71  # the dcdft crystals (its CSV rows are no structures)
    molecules = client.count("nperiodic_dimensions=0")["structures"]["nperiodic_dimensions=0"]
    assert molecules[base] == 162  # the G2 set

    hydrocarbons = 'elements HAS ONLY "C","H" AND nelements=2'
    found = client.get(hydrocarbons)["structures"][hydrocarbons][base]
    assert found["errors"] == [] and found["data"]
    assert found["meta"]["data_returned"] == len(found["data"])
    for entry in found["data"]:
        attributes = entry["attributes"]
        assert attributes["elements"] == ["C", "H"]
        assert sorted(set(attributes["species_at_sites"])) == ["C", "H"]
        assert len(attributes["cartesian_site_positions"]) == attributes["nsites"]

    # Every page followed: all 233 structures, each once.
    everything = client.get("", response_fields=["nsites"])["structures"][""][base]
    ids = [entry["id"] for entry in everything["data"]]
    assert len(ids) == len(set(ids)) == 71 + 162


def test_sites_are_the_demo_geometries(served: str) -> None:
    from ase.collections import dcdft, g2

    base = served + "/optimade/v1"
    with httpx.Client(base_url=base, timeout=30) as http:
        water = http.get("/structures", params={"filter": 'chemical_formula_hill="H2O"'}).json()[
            "data"
        ]
        assert len(water) == 1
        attributes = water[0]["attributes"]
        atoms = g2["H2O"]
        assert attributes["species_at_sites"] == atoms.get_chemical_symbols()
        assert np.allclose(attributes["cartesian_site_positions"], atoms.positions, atol=1e-5)
        assert attributes["lattice_vectors"] is None and attributes["dimension_types"] == [0, 0, 0]

        iron = http.get(
            "/structures",
            params={"filter": 'chemical_formula_reduced="Fe" AND nperiodic_dimensions=3'},
        ).json()["data"][0]["attributes"]
        cell = np.array(iron["lattice_vectors"])
        assert abs(abs(np.linalg.det(cell)) - dcdft["Fe"].get_volume()) < 1e-3
        assert iron["nsites"] == len(dcdft["Fe"]) and iron["space_group_it_number"] == 229
        reference = iron["_matterhub_source_name"]
        cited = http.get(f"/references/{reference}").json()["data"]
        assert cited["attributes"]["title"].startswith("Delta test")
        assert cited["attributes"]["authors"][0]["lastname"] == "Lejaeghere"
