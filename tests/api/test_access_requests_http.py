"""The access-request API over real HTTP on loopback, on SQLite and PostgreSQL: raw JSON in and
out, the recorded decision as both sides read it, and 4xx bodies naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.smtp import FakeSMTP
from tests.hub.conftest import function_servable, hub_settings
from tests.hub.served import Served, body, mail, serve

REF = "alice/gated"
ASK = f"/api/servables/{REF}/access-requests"


@pytest.fixture
def smtp() -> Iterator[FakeSMTP]:
    server = FakeSMTP()
    yield server
    server.close()


@pytest.fixture
def served(tmp_path: Path, database_url: str, smtp: FakeSMTP) -> Iterator[Served]:
    settings = hub_settings(
        tmp_path / "hub", database_url, smtp_url=smtp.url, base_url="http://hub.test"
    )
    with serve(settings) as hub:
        description = function_servable(tmp_path / "s", "gated")
        description.set_visibility(["public"], runnable_by=["user:alice"])
        with hub.client("alice") as alice:
            build = alice.publish_servable(description, wait=True, timeout=600)
        assert build["status"] == "succeeded", build["log"]
        yield hub


def _http(hub: Served, user: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {hub.tokens[user]}"} if user else {}
    return httpx.Client(base_url=hub.base, headers=headers, timeout=60)


def _field(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    assert set(answer) >= {"error", "detail", "field"}
    return str(answer["field"])


def test_request_and_decisions_over_http(served: Served, smtp: FakeSMTP) -> None:
    hub = served
    with _http(hub, "alice") as alice, _http(hub, "carol") as carol, _http(hub, "bob") as bob:
        # Refused runs say how to ask, in the API's JSON error body.
        refused = carol.post(f"/api/servables/{REF}/run", json={"inputs": [1.0]})
        assert refused.status_code == 403 and ASK in refused.json()["detail"]

        # Bounds: every one names its field.
        assert _field(carol.post(ASK, json={"message": "m" * 2001}), 422) == "message"
        assert _field(carol.post(ASK, json={"message": 12}), 422) == "message"
        assert _field(carol.get("/api/access-requests", params={"limit": 501}), 422) == "limit"
        assert _field(carol.get("/api/access-requests", params={"role": "x"}), 422) == "role"
        assert _field(alice.get(ASK, params={"offset": 10_001}), 422) == "offset"
        anonymous = httpx.post(f"{hub.base}{ASK}", json={"message": "hi"})
        assert anonymous.status_code == 401

        asked = carol.post(ASK, json={"message": "for my alloys"})
        assert asked.status_code == 201, asked.text
        request = asked.json()
        rid = request["id"]
        assert request | {"id": "", "created_at": ""} == {
            "id": "",
            "servable": REF,
            "requester": "carol",
            "message": "for my alloys",
            "status": "pending",
            "granted_to": None,
            "reason": None,
            "decided_by": None,
            "created_at": "",
            "decided_at": None,
        }
        assert "carol asks" in body(mail(smtp, "alice@example.org", "access.requested"))
        owner_view = alice.get("/api/access-requests", params={"role": "owner"}).json()
        assert [r["id"] for r in owner_view] == [rid]
        assert bob.get(f"/api/access-requests/{rid}").status_code == 404  # not his to read

        # Decline: the reason is required and bounded; the record says who, when and why.
        assert _field(alice.post(f"/api/access-requests/{rid}/decline", json={}), 422) == "reason"
        long = alice.post(f"/api/access-requests/{rid}/decline", json={"reason": "r" * 2001})
        assert _field(long, 422) == "reason" and "at most 2000" in long.json()["detail"]
        own = carol.post(f"/api/access-requests/{rid}/decline", json={"reason": "no"})
        assert own.status_code == 403 and "only the servable's owner" in own.json()["detail"]
        declined = alice.post(f"/api/access-requests/{rid}/decline", json={"reason": "not yet"})
        assert declined.status_code == 200, declined.text
        for reader in (alice, carol):  # both sides read the same record
            record = reader.get(f"/api/access-requests/{rid}").json()
            assert (record["status"], record["decided_by"], record["reason"]) == (
                "declined",
                "alice",
                "not yet",
            )
            assert record["decided_at"] >= record["created_at"]
        assert "declined: not yet" in body(mail(smtp, "carol@example.org", "access.declined"))

        # Ask again; grant with a bad grantee names `to`; then to the user.
        rid2 = carol.post(ASK, json={"message": "I joined the lab"}).json()["id"]
        bad_to = alice.post(f"/api/access-requests/{rid2}/grant", json={"to": "g" * 300})
        assert _field(bad_to, 422) == "to"
        granted = alice.post(f"/api/access-requests/{rid2}/grant", json={})
        assert granted.status_code == 200 and granted.json()["granted_to"] == "user:carol"
        assert "You may now run" in body(mail(smtp, "carol@example.org", "access.granted"))
        ran = carol.post(f"/api/servables/{REF}/run", json={"inputs": [1.0, 2.0]})
        assert ran.status_code == 200 and ran.json()["output"] == 3.0
        history = carol.get("/api/access-requests").json()
        assert [(r["status"], r["decided_by"]) for r in history] == [
            ("granted", "alice"),
            ("declined", "alice"),
        ]
        again = alice.post(f"/api/access-requests/{rid2}/grant", json={})
        assert _field(again, 409) == "request_id"

        paths = httpx.get(f"{hub.base}/openapi.json").json()["paths"]
        assert {
            "/api/servables/{owner}/{name}/access-requests",
            "/api/access-requests",
            "/api/access-requests/{request_id}/grant",
            "/api/access-requests/{request_id}/decline",
        } <= set(paths)
