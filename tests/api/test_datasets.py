"""The dataset repository through its HTTP API (in-process app), with an integrity guard."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import zipfile
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from matterhub.api import create_app
from matterhub.bootstrap import Services, build_services
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.settings import Settings
from tests.api.conftest import bearer
from tests.fakes.datacite import FakeDataCite
from tests.publish.conftest import DC, check_published

pytestmark = pytest.mark.anyio


def sha(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


@pytest.fixture
async def api(app: FastAPI, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A client that re-reads every published manifest's checksums after each mutating call."""
    frozen: dict[str, str] = {}

    async def guard(response: httpx.Response) -> None:
        if response.request.method not in ("GET", "HEAD"):
            check_published(services.datasets, frozen)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://hub.test", event_hooks={"response": [guard]}
    ) as client:
        yield client


@pytest.fixture
def alice(make_user: Callable[..., str]) -> dict[str, str]:
    return bearer(make_user("alice"))


@pytest.fixture
def bob(make_user: Callable[..., str]) -> dict[str, str]:
    return bearer(make_user("bob"))


async def publish_one(api: httpx.AsyncClient, who: dict[str, str], files: dict[str, bytes]) -> str:
    r = await api.post("/api/datasets", json={"dc": DC, "source_name": "radium"}, headers=who)
    assert r.status_code == 201, r.text
    sid = r.json()["source_id"]
    for path, data in files.items():
        r = await api.put(
            f"/api/datasets/{sid}/files/{path}",
            content=data,
            headers=who,
            params={"sha512": sha(data)},
        )
        assert r.status_code == 201, r.text
    r = await api.post(f"/api/datasets/{sid}/publish", headers=who)
    assert r.status_code == 200, r.text
    return str(sid)


async def test_anonymous_download_of_a_public_version(
    api: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    data = bytes(range(256)) * 40
    sid = await publish_one(api, alice, {"raw/pattern.xy": data, "README.md": b"# hi\n"})
    r = await api.get(f"/api/datasets/{sid}/files/raw/pattern.xy")
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["etag"] == f'"{sha(data)}"'
    assert (
        r.headers["repr-digest"]
        == f"sha-512=:{base64.b64encode(bytes.fromhex(sha(data))).decode()}:"
    )
    assert (await api.get("/api/datasets/radium")).json()["source_id"] == sid
    listed = (await api.get("/api/datasets")).json()
    assert [d["source_name"] for d in listed] == ["radium"]
    head = await api.head(f"/api/datasets/{sid}/files/raw/pattern.xy")
    assert (
        head.status_code == 200
        and head.content == b""
        and head.headers["content-length"] == "10240"
    )


async def test_ranges_conditional_requests_and_bad_paths(
    api: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    data = bytes(range(100))
    sid = await publish_one(api, alice, {"a.bin": data})
    url = f"/api/datasets/{sid}/files/a.bin"
    r = await api.get(url, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == "bytes 10-19/100"
    r = await api.get(url, headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[95:]
    r = await api.get(url, headers={"Range": "bytes=0-1,50-52"})
    assert r.status_code == 206
    assert r.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert int(r.headers["content-length"]) == len(r.content)
    assert b"content-range: bytes 0-1/100" in r.content and data[50:53] in r.content
    r = await api.get(url, headers={"Range": "bytes=100-200"})
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */100"
    etag = (await api.get(url)).headers["etag"]
    r = await api.get(url, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    r = await api.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert r.status_code == 200 and r.content == data
    for bad in ("..%2Fa.bin", "x/../../a.bin"):
        r = await api.get(f"/api/datasets/{sid}/files/{bad}")
        assert r.status_code in (404, 422), (bad, r.status_code)
    r = await api.get(f"/api/datasets/{sid}/files/missing.bin")
    assert r.status_code == 404
    r = await api.get("/api/datasets/radium_v7.0/files/a.bin")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_private_draft_is_refused_to_others(
    api: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    r = await api.post("/api/datasets", json={"dc": DC, "source_name": "radium"}, headers=alice)
    sid = r.json()["source_id"]
    await api.put(f"/api/datasets/{sid}/files/a.txt", content=b"alpha", headers=alice)
    assert (await api.get(f"/api/datasets/{sid}", headers=alice)).status_code == 200
    for who in ({}, bob):
        assert (await api.get(f"/api/datasets/{sid}", headers=who)).status_code == 404
        assert (await api.get(f"/api/datasets/{sid}/files/a.txt", headers=who)).status_code == 404
        assert (await api.get(f"/api/datasets/{sid}/archive.zip", headers=who)).status_code == 404
    r = await api.put(f"/api/datasets/{sid}/files/b.txt", content=b"x", headers=bob)
    assert r.status_code == 404
    r = await api.post("/api/datasets", json={"dc": DC, "source_name": "anon"})
    assert r.status_code == 403
    r = await api.patch(f"/api/datasets/{sid}", json={"shared_with": ["user:bob"]}, headers=alice)
    assert r.status_code == 200
    assert (await api.get(f"/api/datasets/{sid}/files/a.txt", headers=bob)).content == b"alpha"


async def test_old_version_stays_downloadable_and_citable(
    api: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    sid = await publish_one(api, alice, {"a.txt": b"version one"})
    r = await api.post("/api/datasets/radium/versions", json={}, headers=alice)
    assert r.status_code == 201 and r.json()["source_id"] == "radium_v2.0"
    r = await api.put(
        "/api/datasets/radium_v2.0/files/a.txt", content=b"version two", headers=alice
    )
    assert r.status_code == 201
    assert (await api.post("/api/datasets/radium_v2.0/publish", headers=alice)).status_code == 200
    assert (await api.get(f"/api/datasets/{sid}/files/a.txt")).content == b"version one"
    assert (await api.get("/api/datasets/radium_v2.0/files/a.txt")).content == b"version two"
    assert (await api.get("/api/datasets/radium")).json()["source_id"] == "radium_v2.0"
    bib = await api.get(f"/api/datasets/{sid}/cite", params={"format": "bibtex"})
    assert bib.status_code == 200 and "version = {1.0}" in bib.text
    assert bib.headers["content-type"].startswith("application/x-bibtex")
    for fmt in ("ris", "datacite-json", "datacite-xml", "schema.org"):
        assert (
            await api.get(f"/api/datasets/{sid}/cite", params={"format": fmt})
        ).status_code == 200
    assert (
        await api.get(f"/api/datasets/{sid}/cite", params={"format": "nope"})
    ).status_code == 422
    versions = (await api.get("/api/datasets/radium/versions")).json()
    assert [v["source_id"] for v in versions] == ["radium_v1.0", "radium_v2.0"]


async def test_metadata_update_after_publish_makes_a_minor_version(
    api: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    sid = await publish_one(api, alice, {"a.txt": b"alpha"})
    before = (await api.get(f"/api/datasets/{sid}/manifest")).content
    dc = {**DC, "titles": [{"title": "Better title"}]}
    r = await api.patch(f"/api/datasets/{sid}", json={"dc": dc}, headers=alice)
    assert r.status_code == 200 and r.json()["source_id"] == "radium_v1.1"
    assert r.json()["state"] == "published"
    assert (await api.get(f"/api/datasets/{sid}")).json()["dc"]["titles"] == DC["titles"]
    assert (await api.get(f"/api/datasets/{sid}/manifest")).content == before
    r = await api.put(f"/api/datasets/{sid}/files/b.txt", content=b"x", headers=alice)
    assert r.status_code == 409


async def test_manifest_zip_and_tar(api: httpx.AsyncClient, alice: dict[str, str]) -> None:
    files = {"a.txt": b"alpha", "sub/b.bin": bytes(2_500_000)}
    sid = await publish_one(api, alice, files)
    manifest = (await api.get(f"/api/datasets/{sid}/manifest")).json()
    assert {f["path"]: f["sha512"] for f in manifest["files"]} == {
        p: sha(d) for p, d in files.items()
    }
    assert set(manifest["documents"]) == {"dataset.json", "records.jsonl"}
    r = await api.get(f"/api/datasets/{sid}/archive.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    # A published version's archive also carries its RO-Crate metadata (docs/interop.md).
    crate = json.loads(members.pop(f"{sid}/ro-crate-metadata.json"))
    assert crate == (await api.get(f"/api/datasets/{sid}/ro-crate-metadata.json")).json()
    assert members == {f"{sid}/{p}": d for p, d in files.items()}
    r = await api.get(f"/api/datasets/{sid}/archive.tar")
    assert r.status_code == 200 and len(r.content) > 2_500_000


async def test_checksum_mismatch_is_422_and_keeps_nothing(
    api: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    r = await api.post("/api/datasets", json={"dc": DC, "source_name": "radium"}, headers=alice)
    sid = r.json()["source_id"]
    r = await api.put(
        f"/api/datasets/{sid}/files/a.txt",
        content=b"alpha",
        headers=alice,
        params={"sha512": sha(b"beta")},
    )
    assert r.status_code == 422 and r.json()["field"] == "sha512"
    digest = base64.b64encode(hashlib.sha512(b"gamma").digest()).decode()
    r = await api.put(
        f"/api/datasets/{sid}/files/b.txt",
        content=b"alpha",
        headers={**alice, "Content-Digest": f"sha-512=:{digest}:"},
    )
    assert r.status_code == 422
    assert (await api.get(f"/api/datasets/{sid}/files", headers=alice)).json() == []


async def test_multipart_upload(api: httpx.AsyncClient, alice: dict[str, str]) -> None:
    r = await api.post("/api/datasets", json={"dc": DC, "source_name": "radium"}, headers=alice)
    sid = r.json()["source_id"]
    r = await api.post(
        f"/api/datasets/{sid}/files",
        headers=alice,
        data={"prefix": "raw"},
        files=[("files", ("a.cif", b"data_a\n")), ("files", ("b.cif", b"data_b\n"))],
    )
    assert r.status_code == 201, r.text
    assert [f["path"] for f in r.json()] == ["raw/a.cif", "raw/b.cif"]
    listed = (await api.get(f"/api/datasets/{sid}/files", headers=alice)).json()
    assert [f["sha512"] for f in listed] == [sha(b"data_a\n"), sha(b"data_b\n")]


async def test_resumable_chunked_upload(api: httpx.AsyncClient, alice: dict[str, str]) -> None:
    data = bytes(range(256)) * 1000
    r = await api.post("/api/datasets", json={"dc": DC, "source_name": "radium"}, headers=alice)
    sid = r.json()["source_id"]
    r = await api.post(
        f"/api/datasets/{sid}/uploads",
        headers=alice,
        json={"path": "big.bin", "size": len(data), "sha512": sha(data)},
    )
    assert r.status_code == 201
    url = f"/api/datasets/{sid}/uploads/{r.json()['id']}"
    r = await api.patch(url, content=data[:100_000], headers={**alice, "Upload-Offset": "0"})
    assert r.status_code == 200 and r.json() == {**r.json(), "file": None}
    assert r.json()["upload"]["offset"] == 100_000
    # a client that lost the answer retries from 0: told where to resume instead
    r = await api.patch(url, content=data[:100_000], headers={**alice, "Upload-Offset": "0"})
    assert r.status_code == 409
    offset = (await api.get(url, headers=alice)).json()["offset"]
    assert offset == 100_000
    assert (await api.get(f"/api/datasets/{sid}/files", headers=alice)).json() == []
    r = await api.patch(url, content=data[offset:], headers={**alice, "Upload-Offset": str(offset)})
    assert r.status_code == 200 and r.json()["file"]["sha512"] == sha(data)
    got = await api.get(f"/api/datasets/{sid}/files/big.bin", headers=alice)
    assert got.content == data
    assert (await api.get(url, headers=alice)).status_code == 404


async def test_publish_race_gives_one_409(api: httpx.AsyncClient, alice: dict[str, str]) -> None:
    r = await api.post("/api/datasets", json={"dc": DC, "source_name": "radium"}, headers=alice)
    sid = r.json()["source_id"]
    await api.put(f"/api/datasets/{sid}/files/a.txt", content=b"alpha", headers=alice)
    results = await asyncio.gather(
        *(api.post(f"/api/datasets/{sid}/publish", headers=alice) for _ in range(2))
    )
    assert sorted(r.status_code for r in results) == [200, 409]


async def test_withdraw_and_pid_landing_page(api: httpx.AsyncClient, alice: dict[str, str]) -> None:
    sid = await publish_one(api, alice, {"a.txt": b"alpha"})
    pid = (await api.get(f"/api/datasets/{sid}")).json()["pid"]
    page = await api.get(f"/pid/{pid}")
    assert page.status_code == 200 and "Radium chloride diffraction patterns" in page.text
    assert f"/api/datasets/{sid}/archive.zip" in page.text
    doc = await api.get(f"/pid/{pid}", headers={"Accept": "application/json"})
    assert doc.json()["source_id"] == sid
    assert (await api.get("/pid/mh/none-such")).status_code == 404
    r = await api.post(f"/api/datasets/{sid}/withdraw", json={"reason": "bad data"}, headers=alice)
    assert r.status_code == 200 and r.json()["state"] == "withdrawn"
    assert (await api.get(f"/api/datasets/{sid}/files/a.txt")).status_code == 404
    assert "Withdrawn" in (await api.get(f"/pid/{pid}")).text


async def test_datacite_fake_receives_the_metadata(tmp_path: Any) -> None:
    fake = FakeDataCite().start()
    try:
        configured = Settings(
            data_dir=tmp_path / "dc-hub",
            pid_provider="datacite",
            datacite_url=fake.url,
            datacite_user=fake.user,
            datacite_password=fake.password,
            datacite_prefix=fake.prefix,
        )
        services = build_services(configured)
        services.accounts.create_user(SYSTEM_IDENTITY, "dora")
        secret = services.accounts.create_token(SYSTEM_IDENTITY, "dora").token
        app = create_app(configured, services=services)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hub.test"
        ) as api:
            r = await api.post(
                "/api/datasets", json={"dc": DC, "source_name": "radium"}, headers=bearer(secret)
            )
            doi = r.json()["pid"]
            assert doi.startswith("10.5072/")
            r = await api.post("/api/datasets/radium_v1.0/publish", headers=bearer(secret))
            assert r.status_code == 200 and r.json()["pid_url"] == f"https://doi.org/{doi}"
            xml = await api.get("/api/datasets/radium_v1.0/cite", params={"format": "datacite-xml"})
            assert f'<identifier identifierType="DOI">{doi}</identifier>' in xml.text
        attrs = fake.requests[-1].body["data"]["attributes"]  # type: ignore[index]
        assert attrs["event"] == "publish" and attrs["doi"] == doi
        assert attrs["titles"] == DC["titles"] and attrs["publisher"] == "MatterHub"
        assert fake.dois[doi]["attributes"]["state"] == "findable"
        services.close()
    finally:
        fake.stop()


async def test_a_large_version_is_listed_in_pages_and_counted_from_its_totals(
    api: httpx.AsyncClient, alice: dict[str, str], services: Services, tmp_path: Any
) -> None:
    r = await api.post("/api/datasets", json={"dc": DC, "source_name": "many"}, headers=alice)
    sid = r.json()["source_id"]
    local = []
    for i in range(1005):  # more files than a dataset page lists
        path = tmp_path / f"{i:04d}.txt"
        path.write_text(f"file {i}\n")
        local.append((f"d{i // 500}/{i:04d}.txt", path))
    assert services.datasets.put_local_files(SYSTEM_IDENTITY, sid, local) == 1005
    records = [{"custom": {"i": i}, "files": []} for i in range(250)]
    assert services.datasets.set_records(SYSTEM_IDENTITY, sid, records) == 250
    r = await api.post(f"/api/datasets/{sid}/publish", headers=alice)
    assert r.status_code == 200, r.text
    version = (await api.get(f"/api/datasets/{sid}")).json()
    size = sum(p.stat().st_size for _name, p in local)
    assert (version["file_count"], version["total_bytes"]) == (1005, size)
    assert version["document"]["data"]["total_size"] == size
    manifest = (await api.get(f"/api/datasets/{sid}/manifest")).json()
    assert [f["path"] for f in manifest["files"]] == sorted(name for name, _p in local)
    page = await api.get(f"/datasets/{sid}")
    assert page.status_code == 200
    assert "The first 1000 of 1005 files" in page.text
    assert "d2/1004.txt" not in page.text and "d1/0999.txt" in page.text
    assert "250, first 10 shown" in page.text  # every record counted, ten rendered
    assert services.datasets.count_records(SYSTEM_IDENTITY, sid) == 250
