"""The API skeleton: health, OpenAPI, identity, errors and limits, over the in-process app."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from matterhub.bootstrap import Services
from tests.api.conftest import bearer

pytestmark = pytest.mark.anyio


async def test_health_reports_each_backend(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"catalog": "ok", "storage": "ok"}
    assert body["catalog_backend"] == "sqlite"


async def test_openapi_and_docs_list_the_routes(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in ("/health", "/api/whoami", "/api/users", "/api/users/{username}/tokens"):
        assert path in spec["paths"], path
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_home_page_links_to_docs(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert 'href="/docs"' in page.text


async def test_anonymous_whoami_is_public_only(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/whoami")).json()
    assert body["authenticated"] is False
    assert body["username"] is None
    assert body["principals"] == ["public"]


async def test_whoami_with_a_token(
    client: httpx.AsyncClient, make_user: Callable[..., str]
) -> None:
    token = make_user("alice")
    body = (await client.get("/api/whoami", headers=bearer(token))).json()
    assert body["authenticated"] is True
    assert body["username"] == "alice"
    assert f"urn:matterhub:user:{body['user_id']}" in body["principals"]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer mh_0123456789abcdef_nope", "invalid API token"),
        ("Bearer garbage", "malformed"),
        ("Basic dXNlcjpwYXNz", "must be 'Bearer <token>'"),
    ],
)
async def test_bad_credentials_get_401(
    client: httpx.AsyncClient, header: str, message: str
) -> None:
    response = await client.get("/api/whoami", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert message in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_revoked_token_gets_401(
    client: httpx.AsyncClient, make_user: Callable[..., str], services: Services
) -> None:
    token = make_user("bob")
    assert (await client.get("/api/whoami", headers=bearer(token))).status_code == 200
    token_id = token.split("_")[1]
    revoke = await client.delete(f"/api/tokens/{token_id}", headers=bearer(token))
    assert revoke.status_code == 200 and revoke.json()["revoked_at"]
    response = await client.get("/api/whoami", headers=bearer(token))
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


async def test_missing_permission_is_403(
    client: httpx.AsyncClient, make_user: Callable[..., str]
) -> None:
    token = make_user("carol")
    response = await client.post("/api/users", json={"username": "x"}, headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


async def test_anonymous_admin_call_is_403(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/users")
    assert response.status_code == 403


async def test_admin_creates_user_and_token_over_the_api(
    client: httpx.AsyncClient, make_user: Callable[..., str]
) -> None:
    admin = make_user("root", admin=True)
    created = await client.post(
        "/api/users", json={"username": "dora", "email": "dora@example.org"}, headers=bearer(admin)
    )
    assert created.status_code == 201, created.text
    token = await client.post(
        "/api/users/dora/tokens", json={"name": "nb", "expires_in_days": 7}, headers=bearer(admin)
    )
    assert token.status_code == 201
    secret = token.json()["token"]
    me = (await client.get("/api/whoami", headers=bearer(secret))).json()
    assert me["username"] == "dora"
    listed = (await client.get("/api/users/dora/tokens", headers=bearer(secret))).json()
    assert [t["name"] for t in listed] == ["nb"] and "token" not in listed[0]


async def test_wrong_field_type_is_422_naming_the_field(
    client: httpx.AsyncClient, make_user: Callable[..., str]
) -> None:
    admin = make_user("root", admin=True)
    response = await client.post(
        "/api/users", json={"username": "eve", "is_admin": "maybe"}, headers=bearer(admin)
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_input" and body["field"] == "is_admin"
    nested = await client.post(
        "/api/users/root/tokens", json={"expires_in_days": -3}, headers=bearer(admin)
    )
    assert nested.status_code == 422 and nested.json()["field"] == "expires_in_days"


async def test_unknown_field_is_422(
    client: httpx.AsyncClient, make_user: Callable[..., str]
) -> None:
    admin = make_user("root", admin=True)
    response = await client.post(
        "/api/users", json={"username": "eve", "admn": True}, headers=bearer(admin)
    )
    assert response.status_code == 422 and response.json()["field"] == "admn"


async def test_malformed_json_is_422(
    client: httpx.AsyncClient, make_user: Callable[..., str]
) -> None:
    admin = make_user("root", admin=True)
    response = await client.post(
        "/api/users",
        content=b'{"username": ',
        headers={**bearer(admin), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_input"
    assert "JSON" in response.json()["detail"]


async def test_invalid_name_is_422_from_the_service(
    client: httpx.AsyncClient, make_user: Callable[..., str]
) -> None:
    admin = make_user("root", admin=True)
    response = await client.post(
        "/api/users", json={"username": "no spaces"}, headers=bearer(admin)
    )
    assert response.status_code == 422 and response.json()["field"] == "username"


async def test_duplicate_is_409(client: httpx.AsyncClient, make_user: Callable[..., str]) -> None:
    admin = make_user("root", admin=True)
    first = await client.post("/api/users", json={"username": "fay"}, headers=bearer(admin))
    again = await client.post("/api/users", json={"username": "fay"}, headers=bearer(admin))
    assert first.status_code == 201
    assert again.status_code == 409 and again.json()["field"] == "username"


async def test_unknown_user_is_404(
    client: httpx.AsyncClient, make_user: Callable[..., str]
) -> None:
    admin = make_user("root", admin=True)
    response = await client.get("/api/users/nobody", headers=bearer(admin))
    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "detail": "no user named 'nobody'",
        "field": "username",
    }


async def test_unknown_route_is_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/route")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


async def test_oversized_body_is_413(client: httpx.AsyncClient, services: Services) -> None:
    too_big = b"x" * (services.settings.max_request_bytes + 1)
    response = await client.post("/api/users", content=too_big)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


async def test_oversized_streamed_body_is_413(
    client: httpx.AsyncClient, services: Services
) -> None:
    chunk = b"y" * (1 << 20)
    count = services.settings.max_request_bytes // len(chunk) + 2

    async def body():  # type: ignore[no-untyped-def]
        for _ in range(count):
            yield chunk

    response = await client.post(
        "/api/users", content=body(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


async def test_groups_over_the_api(
    client: httpx.AsyncClient, make_user: Callable[..., str]
) -> None:
    lead = make_user("lead")
    make_user("postdoc")
    created = await client.post("/api/groups", json={"name": "xrd-lab"}, headers=bearer(lead))
    assert created.status_code == 201 and created.json()["members"] == ["lead"]
    added = await client.put("/api/groups/xrd-lab/members/postdoc", headers=bearer(lead))
    assert added.status_code == 200 and added.json()["members"] == ["lead", "postdoc"]
    mine = (await client.get("/api/groups", headers=bearer(lead))).json()
    assert [g["name"] for g in mine] == ["xrd-lab"]


async def test_schemas_are_served(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/schemas/")).json()
    assert listed["schemas"] == ["record", "dataset", "servable", "submission"]
    record = (await client.get("/schemas/record.json")).json()
    assert record["required"] == ["mdf", "files"]
    submission = (await client.get("/schemas/submission")).json()
    assert "data_sources" in submission["properties"]
    assert (await client.get("/schemas/nope")).status_code == 404
