"""Files uploaded with a submission: `/connect/uploads`, `/connect/submit/files`, ownership."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from matterhub.bootstrap import Services
from tests.api.conftest import bearer
from tests.connect.helpers import CIF, dc

pytestmark = pytest.mark.anyio


async def settled(client: httpx.AsyncClient, token: str, source_id: str) -> dict[str, Any]:
    for _ in range(600):
        answer = await client.get(f"/connect/status/{source_id}", headers=bearer(token))
        status: dict[str, Any] = answer.json()
        if status["status"]["state"] in ("succeeded", "failed", "cancelled", "curation"):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"{source_id} did not settle")


async def test_upload_then_submit_publishes_searchable_files(
    client: httpx.AsyncClient, make_user: Callable[..., str], services: Services
) -> None:
    uma = make_user("uma")
    files = [
        ("files", ("Fe.cif", CIF.encode(), "chemical/x-cif")),
        ("files", ("notes/readme.txt", b"uploaded with the submission\n", "text/plain")),
    ]
    answer = await client.post("/connect/uploads", files=files, headers=bearer(uma))
    assert answer.status_code == 201, answer.text
    source = answer.json()["data_source"]
    assert source.startswith("upload://") and answer.json()["files"] == 2

    body = {"dc": dc("Uploaded iron files"), "data_sources": [source]}
    answer = await client.post("/connect/submit", json=body, headers=bearer(uma))
    assert answer.status_code == 202, answer.text
    sid = answer.json()["source_id"]
    status = await settled(client, uma, sid)
    assert status["status"]["state"] == "succeeded", status

    manifest = (await client.get(f"/api/datasets/{sid}/files")).json()
    assert {"Fe.cif", "notes/readme.txt"} <= {entry["path"] for entry in manifest}
    got = await client.get(f"/api/datasets/{sid}/files/notes/readme.txt")
    assert got.content == b"uploaded with the submission\n"
    hits = await client.post(
        "/v1/index/mdf/search",
        json={"q": f'mdf.source_id:"{sid}" AND material.elements:Fe', "advanced": True},
    )
    assert hits.json()["total"] >= 1
    # Published: the uploaded copy is gone, the version keeps the bytes.
    upload_root = services.settings.data_dir / "uploads" / source.removeprefix("upload://")
    for _ in range(200):  # removed just after the submission is marked succeeded
        if not upload_root.exists():
            break
        await asyncio.sleep(0.05)
    assert not upload_root.exists()


async def test_one_request_with_the_files(
    client: httpx.AsyncClient, make_user: Callable[..., str]
) -> None:
    vic = make_user("vic")
    submission = json.dumps({"dc": dc("One shot upload of iron")})
    answer = await client.post(
        "/connect/submit/files",
        data={"submission": submission},
        files=[("files", ("Fe.cif", CIF.encode(), "chemical/x-cif"))],
        headers=bearer(vic),
    )
    assert answer.status_code == 202, answer.text
    status = await settled(client, vic, answer.json()["source_id"])
    assert status["status"]["state"] == "succeeded"


async def test_bad_uploads_are_refused_clearly(
    client: httpx.AsyncClient, make_user: Callable[..., str], services: Services
) -> None:
    wes = make_user("wes")
    xia = make_user("xia")
    one = [("files", ("Fe.cif", CIF.encode(), "chemical/x-cif"))]

    anonymous = await client.post("/connect/uploads", files=one)
    assert anonymous.status_code == 401

    escape = await client.post(
        "/connect/uploads",
        files=[("files", ("../evil.txt", b"x", "text/plain"))],
        headers=bearer(wes),
    )
    assert escape.status_code == 422 and escape.json()["field"] == "files"

    mine = (await client.post("/connect/uploads", files=one, headers=bearer(wes))).json()
    body = {"dc": dc("Someone else's upload"), "data_sources": [mine["data_source"]]}
    stolen = await client.post("/connect/submit", json=body, headers=bearer(xia))
    assert stolen.status_code == 403

    body = {"dc": dc("No such upload"), "data_sources": ["upload://0123abcd"]}
    missing = await client.post("/connect/submit", json=body, headers=bearer(wes))
    assert missing.status_code == 422 and missing.json()["field"] == "data_sources"

    bad_json = await client.post(
        "/connect/submit/files", data={"submission": "{not json"}, files=one, headers=bearer(wes)
    )
    assert bad_json.status_code == 422 and bad_json.json()["field"] == "submission"
    no_dc = await client.post(
        "/connect/submit/files", data={"submission": "{}"}, files=one, headers=bearer(wes)
    )
    assert no_dc.status_code == 422 and "dc is required" in no_dc.json()["detail"]
    # Refused submissions leave no upload behind (only the one made on purpose above).
    uploads = services.settings.data_dir / "uploads"
    assert sorted(p.name for p in uploads.iterdir()) == [
        mine["data_source"].removeprefix("upload://")
    ]
