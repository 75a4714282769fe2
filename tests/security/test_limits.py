"""Every input bounded: query length, clause count and nesting depth, pages past the end, JSON depth.

Each test drives the in-process app (real catalog, real tantivy index) as an anonymous caller
would, and checks the answer is a 4xx naming the limit — never a 5xx, never minutes of work.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgpack  # type: ignore[import-untyped]
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from matterhub.api import create_app
from matterhub.bootstrap import Services, build_services
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.settings import Settings

pytestmark = pytest.mark.anyio

MDF_UUID = "1a57bbe5-5272-477f-9d31-343b8258b7a5"


@pytest.fixture
def services(settings: Settings) -> Services:
    services = build_services(settings)
    services.accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return services


@pytest.fixture
def app(settings: Settings, services: Services) -> FastAPI:
    app = create_app(settings, services=services)  # starts the ingest worker
    # Three public records to search, sort and page through.
    gmeta = [
        {
            "subject": f"rec-{i}",
            "visible_to": ["public"],
            "content": {"mdf": {"source_name": f"limits_{i}", "n": i}, "dc": {"title": "oxide"}},
        }
        for i in range(3)
    ]
    task = services.search.ingest(
        SYSTEM_IDENTITY, "mdf", {"ingest_type": "GMetaList", "ingest_data": {"gmeta": gmeta}}
    )
    assert services.search.wait(task.task_id).state == "SUCCESS"
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
        yield client


@pytest.fixture
def admin(services: Services) -> dict[str, str]:
    services.accounts.create_user(SYSTEM_IDENTITY, "root", is_admin=True)
    token = services.accounts.create_token(SYSTEM_IDENTITY, "root").token
    return {"Authorization": f"Bearer {token}"}


def nested(depth: int, inner: str = "oxide") -> str:
    return "(" * depth + inner + ")" * depth


def clauses(count: int) -> str:
    return " OR ".join(f"w{i}" for i in range(count))


def assert_limit(response: httpx.Response, setting: str, *, field: str = "q") -> None:
    """A 400 whose body names the limit (the setting that sets it) and the offending field."""
    assert response.status_code == 400, response.text[:300]
    body = response.json()
    assert body["error"] == "query_too_large"
    assert body["field"] == field
    assert setting in body["detail"], body["detail"]


# The query string limits -----------------------------------------------------------------------


async def test_a_query_longer_than_the_limit_is_refused_before_any_parsing(
    client: httpx.AsyncClient,
) -> None:
    # 256 KiB of words took seconds to parse (3 MB took ~45 s); the byte cap answers first. The
    # text is also a syntax error and nested far too deep: only a check made before the parser
    # runs can name the byte limit for it (no clock in the test: it failed on loaded cores).
    text = "oxide AND (" * (256 * 1024 // 11)
    response = await client.post("/v1/index/mdf/search", json={"q": text, "advanced": True})
    assert_limit(response, "MATTERHUB_MAX_QUERY_BYTES")
    assert "32768" in response.json()["detail"]
    just_under = "oxide AND (" * 20
    parsed = await client.post("/v1/index/mdf/search", json={"q": just_under, "advanced": True})
    assert parsed.status_code == 400 and "MAX_QUERY_BYTES" not in parsed.text  # the parser's own


async def test_query_length_counts_bytes_not_characters(client: httpx.AsyncClient) -> None:
    # 10,000 three-byte characters: within 32768 characters, over 32768 bytes.
    response = await client.post("/v1/index/mdf/search", json={"q": "€" * 11_000})
    assert_limit(response, "MATTERHUB_MAX_QUERY_BYTES")


async def test_deep_parentheses_are_a_400_not_a_recursion_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/index/mdf/search", json={"q": nested(500), "advanced": True})
    assert_limit(response, "MATTERHUB_MAX_QUERY_DEPTH")


async def test_nesting_up_to_the_limit_is_answered(client: httpx.AsyncClient) -> None:
    ok = await client.post("/v1/index/mdf/search", json={"q": nested(30), "advanced": True})
    assert ok.status_code == 200, ok.text
    assert ok.json()["total"] == 3
    over = await client.post("/v1/index/mdf/search", json={"q": nested(31), "advanced": True})
    assert_limit(over, "MATTERHUB_MAX_QUERY_DEPTH")


async def test_fielded_groups_count_towards_depth(client: httpx.AsyncClient) -> None:
    text = "dc.title:" + nested(31)
    response = await client.post("/v1/index/mdf/search", json={"q": text, "advanced": True})
    assert_limit(response, "MATTERHUB_MAX_QUERY_DEPTH")


async def test_parentheses_inside_a_phrase_do_not_count_as_nesting(
    client: httpx.AsyncClient,
) -> None:
    text = '"' + "(" * 100 + 'oxide"'
    response = await client.post("/v1/index/mdf/search", json={"q": text, "advanced": True})
    assert response.status_code == 200, response.text


async def test_clause_count_is_capped(client: httpx.AsyncClient) -> None:
    ok = await client.post("/v1/index/mdf/search", json={"q": clauses(1024), "advanced": True})
    assert ok.status_code == 200, ok.text
    over = await client.post("/v1/index/mdf/search", json={"q": clauses(1025), "advanced": True})
    assert_limit(over, "MATTERHUB_MAX_QUERY_CLAUSES")


async def test_clauses_in_groups_count_too(client: httpx.AsyncClient) -> None:
    text = " ".join(f"(a{i} b{i})" for i in range(400))  # 400 groups + 800 terms
    response = await client.post("/v1/index/mdf/search", json={"q": text, "advanced": True})
    assert_limit(response, "MATTERHUB_MAX_QUERY_CLAUSES")


async def test_a_basic_query_does_not_fall_back_to_words_past_a_limit(
    client: httpx.AsyncClient,
) -> None:
    # Basic mode turns bad syntax into words; a limit is not bad syntax, and stays a 400.
    deep = await client.get("/v1/index/mdf/search", params={"q": nested(200)})
    assert_limit(deep, "MATTERHUB_MAX_QUERY_DEPTH")
    # Unbalanced, so not valid syntax: its 2,000 words are still more clauses than allowed.
    words = await client.get("/v1/index/mdf/search", params={"q": "( " + clauses(1000)})
    assert_limit(words, "MATTERHUB_MAX_QUERY_CLAUSES")


async def test_limits_come_from_settings(tmp_path: Any) -> None:
    settings = Settings(
        data_dir=tmp_path / "small",
        max_query_bytes=64,
        max_query_clauses=3,
        max_query_depth=2,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
        url = "/v1/index/mdf/search"
        assert (await client.post(url, json={"q": nested(2), "advanced": True})).status_code == 200
        too_deep = await client.post(url, json={"q": nested(3), "advanced": True})
        assert_limit(too_deep, "MATTERHUB_MAX_QUERY_DEPTH")
        assert "limit is 2" in too_deep.json()["detail"]
        assert (await client.post(url, json={"q": "a b c", "advanced": True})).status_code == 200
        assert_limit(
            await client.post(url, json={"q": "a b c d", "advanced": True}),
            "MATTERHUB_MAX_QUERY_CLAUSES",
        )
        assert_limit(await client.post(url, json={"q": "a" * 65}), "MATTERHUB_MAX_QUERY_BYTES")
    app.state.services.close()


@pytest.mark.parametrize(
    ("method", "url", "payload"),
    [
        ("GET", "/v1/index/mdf/search", None),
        ("GET", f"/v1/index/{MDF_UUID}/search", None),
        ("POST", "/v1/index/mdf/search", {"advanced": True}),
        ("POST", f"/v1/index/{MDF_UUID}/search", {"advanced": False}),
        ("POST", "/v1/index/mdf/scroll", {"advanced": True}),
        ("POST", "/v1/index/mdf/delete_by_query", {"advanced": True}),
        ("GET", "/api/servables", None),
        ("GET", "/search", None),
    ],
)
async def test_every_route_that_parses_a_query_applies_the_limits(
    client: httpx.AsyncClient, admin: dict[str, str], method: str, url: str, payload: Any
) -> None:
    for text, setting in (
        (nested(100), "MATTERHUB_MAX_QUERY_DEPTH"),
        (clauses(2000), "MATTERHUB_MAX_QUERY_CLAUSES"),
        ("oxide " * 6000, "MATTERHUB_MAX_QUERY_BYTES"),
    ):
        if method == "GET":
            params = {"q": text, "advanced": "true"} if url != "/search" else {"q": text}
            response = await client.get(url, params=params, headers=admin)
        else:
            response = await client.post(url, json={**payload, "q": text}, headers=admin)
        if url == "/search":  # the web page shows the message beside the search box
            assert response.status_code == 400, response.text[:300]
            assert setting in response.text
        else:
            assert_limit(response, setting)


# Pages past the end ----------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [3, 4, 5, 500, 9_990])
async def test_a_sorted_page_past_the_end_is_empty(
    client: httpx.AsyncClient, capfd: pytest.CaptureFixture[str], offset: int
) -> None:
    body = {"q": "*", "sort": [{"field_name": "mdf.n", "order": "asc"}], "offset": offset}
    response = await client.post("/v1/index/mdf/search", json=body)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["gmeta"] == []
    assert page["total"] == 3
    assert page["count"] == 0
    assert page["has_next_page"] is False
    assert "panicked" not in capfd.readouterr().err


async def test_a_sorted_page_overlapping_the_end_holds_the_last_hits(
    client: httpx.AsyncClient,
) -> None:
    body = {"q": "*", "sort": [{"field_name": "mdf.n", "order": "desc"}], "offset": 2, "limit": 5}
    page = (await client.post("/v1/index/mdf/search", json=body)).json()
    assert [g["subject"] for g in page["gmeta"]] == ["rec-0"]
    assert page["has_next_page"] is False


async def test_servable_listing_past_the_end_is_empty(
    client: httpx.AsyncClient, capfd: pytest.CaptureFixture[str]
) -> None:
    response = await client.get("/api/servables", params={"offset": 1})
    assert response.status_code == 200, response.text
    assert response.json()["servables"] == []
    assert "panicked" not in capfd.readouterr().err


# JSON depth ------------------------------------------------------------------------------------


def deep_json(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def assert_json_limit(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text[:300]
    body = response.json()
    assert body == {
        "error": "json_too_deep",
        "detail": body["detail"],
        "field": "body",
    }
    assert "MATTERHUB_MAX_JSON_DEPTH" in body["detail"]
    assert "64" in body["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "/v1/index/mdf/search",
        "/v1/index/mdf/ingest",
        "/api/servables/nobody/nothing/run",
        "/servables/nobody/nothing/run",
        "/connect/submit",
    ],
)
async def test_json_nested_past_the_limit_is_a_400_naming_it(
    client: httpx.AsyncClient, url: str
) -> None:
    headers = {"content-type": "application/json"}
    response = await client.post(url, content=deep_json(5000), headers=headers)
    assert_json_limit(response)
    response = await client.post(url, content=deep_json(65), headers=headers)
    assert_json_limit(response)


async def test_json_without_a_content_type_is_checked_too(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/index/mdf/search", content=deep_json(100))
    assert_json_limit(response)


async def test_json_depth_counts_objects_and_arrays(client: httpx.AsyncClient) -> None:
    body: dict[str, Any] = {"q": "oxide"}
    for _ in range(70):
        body = {"q": "oxide", "x": [body]}  # depth 141
    response = await client.post("/v1/index/mdf/search", json=body)
    assert_json_limit(response)


async def test_deeply_nested_not_filters_are_refused(client: httpx.AsyncClient) -> None:
    flt: dict[str, Any] = {"type": "match_any", "field_name": "mdf.n", "values": [1]}
    for _ in range(300):
        flt = {"type": "not", "filter": flt}
    response = await client.post("/v1/index/mdf/search", json={"q": "*", "filters": [flt]})
    assert_json_limit(response)


async def test_json_at_the_limit_and_brackets_in_strings_pass(client: httpx.AsyncClient) -> None:
    # Depth 64 exactly: the body is an object (1) holding filters (2)... it is only parsed.
    flt: dict[str, Any] = {"type": "match_any", "field_name": "mdf.n", "values": [1]}
    for _ in range(29):
        flt = {"type": "not", "filter": flt}
    response = await client.post("/v1/index/mdf/search", json={"q": "*", "filters": [flt]})
    assert response.status_code == 200, response.text[:300]
    # Brackets and escaped quotes inside strings are text, not structure.
    text = '\\"' + "[{" * 200 + ' oxide"'
    body = json.dumps({"q": text, "advanced": False})
    response = await client.post(
        "/v1/index/mdf/search", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text[:300]


async def test_json_split_over_chunks_is_checked_whole(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"q": "oxide", "x": '
        yield b"[" * 40
        yield b"[" * 40 + b"]" * 80
        yield b"}"

    response = await client.post(
        "/v1/index/mdf/search", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_json_limit(response)


async def test_bodies_that_are_not_json_are_not_depth_checked(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # A form post full of brackets reaches its route (which then answers as it always does).
    response = await client.post(
        "/api/servables/nobody/nothing/run",
        content=deep_json(200),
        headers={**admin, "content-type": "application/octet-stream"},
    )
    assert response.status_code in (404, 415), response.text[:300]
    assert response.json()["error"] != "json_too_deep"


# Found by the fuzz run (tests/security/test_fuzz.py) ---------------------------------------------


async def test_a_dataset_listing_offset_past_64_bits_is_refused(client: httpx.AsyncClient) -> None:
    # The catalog's integers are 64-bit: the driver overflowed and the route answered 500.
    response = await client.get("/api/datasets", params={"offset": 70280087673320603910144})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "offset"
    ok = await client.get("/api/datasets", params={"offset": 1_000_000_000})
    assert ok.status_code == 200 and ok.json() == []


# JSON that reaches a run outside the JSON body is bounded the same way.


def assert_run_limit(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text[:300]
    body = response.json()
    assert body["error"] == "json_too_deep" and body["field"] == field
    assert "MATTERHUB_MAX_JSON_DEPTH" in body["detail"]


@pytest.mark.parametrize("prefix", ["/api/servables", "/servables"])
async def test_a_deep_multipart_request_part_is_a_400(
    client: httpx.AsyncClient, prefix: str
) -> None:
    inner = {"inputs": json.loads(deep_json(100))}
    response = await client.post(
        f"{prefix}/alice/echo/run",
        files={"request": (None, json.dumps(inner)), "x": ("x.txt", b"data")},
    )
    assert_run_limit(response, "request")


def npy_bytes() -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.array([1.0, 2.0]))
    return buffer.getvalue()


async def test_deep_query_parameters_are_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/servables/alice/echo/run",
        params={"parameters": deep_json(100).decode()},
        content=npy_bytes(),  # an .npy body takes its options from the query
        headers={"content-type": "application/x-npy"},
    )
    assert_run_limit(response, "parameters")


async def test_a_deep_msgpack_body_is_a_400(client: httpx.AsyncClient) -> None:
    value: Any = 1
    for _ in range(200):
        value = [value]
    response = await client.post(
        "/api/servables/alice/echo/run",
        content=msgpack.packb({"inputs": value}),
        headers={"content-type": "application/msgpack"},
    )
    assert_run_limit(response, "body")


async def test_shallow_run_bodies_pass_the_depth_check(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/servables/alice/echo/run",
        content=msgpack.packb({"inputs": [[1, 2], [3, 4]]}),
        headers={"content-type": "application/msgpack"},
    )
    assert response.status_code == 404  # past the body: no such servable
