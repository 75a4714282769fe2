"""The Globus Search v1 API over the in-process app."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.conftest import bearer
from tests.search.conftest import make_records

pytestmark = pytest.mark.anyio
MDF_UUID = "1a57bbe5-5272-477f-9d31-343b8258b7a5"


async def wait_task(client: httpx.AsyncClient, task_id: str, token: str) -> dict[str, Any]:
    """A write task's final state, read as the caller who queued it (tasks are theirs)."""
    for _ in range(400):
        task = (await client.get(f"/v1/task/{task_id}", headers=bearer(token))).json()
        if task["state"] in ("SUCCESS", "FAILED"):
            return task
        time.sleep(0.02)
    raise AssertionError("task did not finish")


@pytest.fixture
async def admin(client: httpx.AsyncClient, make_user: Callable[..., str]) -> str:
    token = make_user("root", admin=True)
    body = {"ingest_type": "GMetaList", "ingest_data": {"gmeta": make_records(50)}}
    response = await client.post(f"/v1/index/{MDF_UUID}/ingest", json=body, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["acknowledged"] is True
    assert (await wait_task(client, response.json()["task_id"], token))["state"] == "SUCCESS"
    return token


async def test_search_result_has_the_globus_shape(client: httpx.AsyncClient, admin: str) -> None:
    body = {"q": "mdf.scroll_id:[1 TO 3]", "advanced": True, "limit": 2}
    result = (await client.post("/v1/index/mdf/search", json=body)).json()
    assert result["@datatype"] == "GSearchResult"
    assert result["total"] == 3 and result["count"] == 2 and result["offset"] == 0
    assert result["has_next_page"] is True
    first = result["gmeta"][0]
    assert first["@datatype"] == "GMetaResult"
    assert first["subject"].startswith("demo_src.")
    entry = first["entries"][0]
    assert set(entry) == {"content", "entry_id", "matched_principal_sets"}
    assert list(entry["content"]) == [
        "mdf",
        "dc",
        "material",
        "band_gap",
        "n_atoms",
    ]  # key order kept


async def test_get_search_and_legacy_format(client: httpx.AsyncClient, admin: str) -> None:
    result = (await client.get(f"/v1/index/{MDF_UUID}/search", params={"q": "perovskite"})).json()
    assert result["total"] > 0
    legacy = await client.post(
        "/v1/index/mdf/search", json={"q": "perovskite", "result_format_version": "2017-09-01"}
    )
    assert isinstance(legacy.json()["gmeta"][0]["content"], list)


async def test_facets_and_filters(client: httpx.AsyncClient, admin: str) -> None:
    body = {
        "q": "*",
        "advanced": True,
        "limit": 0,
        "filters": [
            {"type": "match_any", "field_name": "mdf.source_name", "values": ["demo_src_0"]}
        ],
        "facets": [{"name": "elements", "field_name": "material.elements", "size": 3}],
    }
    result = (await client.post("/v1/index/mdf/search", json=body)).json()
    assert result["total"] == 17
    facet = result["facet_results"][0]
    assert facet["name"] == "elements" and len(facet["buckets"]) == 3
    assert all(set(b) == {"value", "count"} for b in facet["buckets"])


async def test_scroll(client: httpx.AsyncClient, admin: str) -> None:
    seen: list[str] = []
    marker = None
    while True:
        body: dict[str, Any] = {"q": "*", "advanced": True, "limit": 20}
        if marker:
            body["marker"] = marker
        page = (await client.post("/v1/index/mdf/scroll", json=body)).json()
        seen += [g["subject"] for g in page["gmeta"]]
        marker = page["marker"]
        if not page["has_next_page"]:
            break
    assert len(set(seen)) == 50


async def test_subject_entry_mapping_and_index(client: httpx.AsyncClient, admin: str) -> None:
    subject = (await client.get("/v1/index/mdf/subject", params={"subject": "demo_src.4"})).json()
    assert (
        subject["subject"] == "demo_src.4"
        and subject["entries"][0]["content"]["mdf"]["scroll_id"] == 4
    )
    entry = (await client.get("/v1/index/mdf/entry", params={"subject": "demo_src.4"})).json()
    assert entry["entries"][0]["entry_id"] is None
    mapping = (await client.get(f"/beta/index/{MDF_UUID}/mapping")).json()["mappings"]
    assert mapping["material.elements"] == "string" and mapping["band_gap"] == "double"
    index = (await client.get(f"/v1/index/{MDF_UUID}")).json()
    assert index["display_name"] == "mdf" and index["num_entries"] == 50
    names = [i["display_name"] for i in (await client.get("/v1/index_list")).json()["index_list"]]
    assert {"mdf", "mdf-test", "dlhub"} <= set(names)


async def test_deletes_over_http(client: httpx.AsyncClient, admin: str) -> None:
    gone = await client.request(
        "DELETE", "/v1/index/mdf/subject", params={"subject": "demo_src.4"}, headers=bearer(admin)
    )
    assert (await wait_task(client, gone.json()["task_id"], admin))["state"] == "SUCCESS"
    missing = await client.get("/v1/index/mdf/subject", params={"subject": "demo_src.4"})
    assert missing.status_code == 404
    body = {"q": "mdf.source_name:demo_src_1", "advanced": True}
    task = await client.post("/v1/index/mdf/delete_by_query", json=body, headers=bearer(admin))
    assert (await wait_task(client, task.json()["task_id"], admin))["state"] == "SUCCESS"
    left = (await client.post("/v1/index/mdf/search", json={"q": "*", "limit": 0})).json()
    assert left["total"] == 50 - 1 - 17


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"q": "a AND (b", "advanced": True}, 400, "position 9"),
        ({"q": "x", "limit": 10_001}, 400, "scroll"),
        ({"q": "x", "offset": 9_999, "limit": 2}, 400, "scroll"),
        ({"q": "*", "facets": [{"field_name": "mdf.source_name", "type": "sum"}]}, 400, "numeric"),
        ({"q": "x", "limit": "many"}, 422, "limit"),
    ],
)
async def test_bad_searches(
    client: httpx.AsyncClient, admin: str, body: dict[str, Any], status: int, needle: str
) -> None:
    response = await client.post("/v1/index/mdf/search", json=body)
    assert response.status_code == status, response.text
    assert needle in response.json()["detail"]


async def test_unknown_index_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/index/nope/search", json={"q": "x"})
    assert response.status_code == 404


async def test_ingest_needs_write_rights(
    client: httpx.AsyncClient, make_user: Callable[..., str]
) -> None:
    body = {
        "ingest_type": "GMetaEntry",
        "ingest_data": {"subject": "s", "visible_to": ["public"], "content": {}},
    }
    assert (await client.post("/v1/index/mdf/ingest", json=body)).status_code == 403
    user = make_user("plain")
    assert (
        await client.post("/v1/index/mdf/ingest", json=body, headers=bearer(user))
    ).status_code == 403


async def test_bad_entry_names_it_and_nothing_is_written(
    client: httpx.AsyncClient, make_user: Callable[..., str]
) -> None:
    token = make_user("root", admin=True)
    entries = [
        {"subject": "ok", "visible_to": ["public"], "content": {"a": 1}},
        {"subject": "bad", "visible_to": ["public"], "content": {"big": "x" * 40_000}},
    ]
    body = {"ingest_type": "GMetaList", "ingest_data": {"gmeta": entries}}
    response = await client.post("/v1/index/mdf/ingest", json=body, headers=bearer(token))
    assert response.status_code == 400
    assert response.json()["field"] == "ingest_data.gmeta[1].content.big"
    tasks = (await client.get("/v1/task_list/mdf", headers=bearer(token))).json()["tasks"]
    assert tasks == []
