"""The real mdf-forge and globus-sdk clients, unmodified, against a real `matterhub serve`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.test_serve import free_port, stop, wait_healthy
from tests.search.conftest import make_records

pytestmark = pytest.mark.e2e
N_RECORDS = 12_000  # more than one 10,000-result window, so aggregate() has to slice


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    data_dir = tmp_path_factory.mktemp("hub")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
    init = subprocess.run(
        [sys.executable, "-m", "matterhub.cli", "--data-dir", str(data_dir), "init"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    token = re.search(r"(mh_[0-9a-f]{16}_\S+)", init.stdout)
    assert token, init.stdout
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "matterhub.cli", "--data-dir", str(data_dir), "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        records = make_records(N_RECORDS, seed=11, source="forge")
        headers = {"Authorization": f"Bearer {token.group(1)}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            tasks = []
            for start in range(0, N_RECORDS, 3000):
                body = {
                    "ingest_type": "GMetaList",
                    "ingest_data": {"gmeta": records[start : start + 3000]},
                }
                tasks.append(client.post("/v1/index/mdf/ingest", json=body).json()["task_id"])
            for task_id in tasks:
                for _ in range(600):
                    state = client.get(f"/v1/task/{task_id}").json()["state"]
                    if state in ("SUCCESS", "FAILED"):
                        break
                    time.sleep(0.1)
                assert state == "SUCCESS"
        yield base, records
    finally:
        stop(proc)


@pytest.fixture
def forge(hub: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_SEARCH", hub[0] + "/")
    from mdf_forge import Forge

    return Forge(index="mdf", anonymous=True)


def expected(records: list[dict[str, Any]], keep: Any) -> list[int]:
    return sorted(r["content"]["mdf"]["scroll_id"] for r in records if keep(r["content"]))


def ids(results: list[dict[str, Any]]) -> list[int]:
    return sorted(r["mdf"]["scroll_id"] for r in results)


def test_forge_match_field(forge: Any, hub: tuple[str, list[dict[str, Any]]]) -> None:
    records = hub[1]
    results = (
        forge.match_field("mdf.source_name", "forge_1").match_range("n_atoms", 195, 200).search()
    )
    want = expected(
        records, lambda c: c["mdf"]["source_name"] == "forge_1" and 195 <= c["n_atoms"] <= 200
    )
    assert want and ids(results) == want


def test_forge_match_range_and_exclude(forge: Any, hub: tuple[str, list[dict[str, Any]]]) -> None:
    records = hub[1]
    results = (
        forge.match_range("band_gap", 1, 1.05).exclude_field("material.elements", "O").search()
    )
    want = expected(
        records, lambda c: 1 <= c["band_gap"] <= 1.05 and "O" not in c["material"]["elements"]
    )
    assert want and ids(results) == want


def test_forge_elements(forge: Any, hub: tuple[str, list[dict[str, Any]]]) -> None:
    records = hub[1]
    both = forge.search_by_elements(["Fe", "Ti"], limit=10_000)
    want = expected(records, lambda c: {"Fe", "Ti"} <= set(c["material"]["elements"]))
    assert ids(both) == want
    results, info = forge.match_elements(["Cu"]).match_range("n_atoms", 1, 3).search(info=True)
    assert info["total_query_matches"] == len(results) > 0


def test_forge_aggregate_beyond_ten_thousand(
    forge: Any, hub: tuple[str, list[dict[str, Any]]]
) -> None:
    results = forge.match_field("mdf.resource_type", "record").aggregate()
    assert len(results) == N_RECORDS
    assert len({r["mdf"]["scroll_id"] for r in results}) == N_RECORDS


def test_forge_show_fields(forge: Any) -> None:
    fields = forge.show_fields()
    assert fields["mdf.source_name"] == "string"
    assert fields["band_gap"] == "double"
    assert forge.show_fields("top")["material"] == "object"


def test_forge_basic_full_text(forge: Any) -> None:
    results = forge.search("perovskite", limit=5)
    assert len(results) == 5
    assert all("perovskite" in r["dc"]["titles"][0]["title"].lower() for r in results)


def test_globus_sdk_search_client(
    hub: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_SEARCH", hub[0] + "/")
    import globus_sdk

    client = globus_sdk.SearchClient()
    response = client.post_search(
        "mdf",
        {
            "q": "material.elements:Fe",
            "advanced": True,
            "limit": 3,
            "facets": [{"name": "src", "field_name": "mdf.source_name", "type": "terms"}],
        },
    )
    assert response["total"] == len(expected(hub[1], lambda c: "Fe" in c["material"]["elements"]))
    assert {b["value"] for b in response["facet_results"][0]["buckets"]} == {
        "forge_0",
        "forge_1",
        "forge_2",
    }
    subject = client.get_subject("mdf", "forge.42")
    assert subject["entries"][0]["content"]["mdf"]["scroll_id"] == 42
    with pytest.raises(globus_sdk.SearchAPIError) as caught:
        client.post_search("mdf", {"q": "a AND (b", "advanced": True})
    assert caught.value.http_status == 400
