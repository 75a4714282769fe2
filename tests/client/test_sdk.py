"""The SDK against the in-process app: search, facets, stats, scroll, errors, retries, downloads."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from matterhub.bootstrap import Services
from matterhub.client import Client, Forge
from matterhub.client.downloads import download
from matterhub.client.errors import (
    AuthenticationError,
    BadRequestError,
    ChecksumMismatch,
    HubUnreachable,
    NotFoundError,
)
from matterhub.core.identity import SYSTEM_IDENTITY
from tests.e2e.test_serve import free_port
from tests.search.conftest import ingest

MakeClient = Callable[..., Client]


def test_search_info_and_reset(hub_client: MakeClient, records_hub: list[dict[str, Any]]) -> None:
    forge = Forge(client=hub_client())
    forge.match_elements(["Fe"]).match_range("band_gap", 0, 4)
    results, info = forge.search(info=True)
    want = [
        r for r in records_hub
        if "Fe" in r["content"]["material"]["elements"] and r["content"]["band_gap"] <= 4
    ]  # fmt: skip
    assert info["total_query_matches"] == len(want) == len(results) > 0
    assert info["query"] == "(material.elements:Fe AND band_gap:[0 TO 4])"
    assert info["advanced"] is True and info["limit"] == 10_000
    assert forge.current_query() == ""  # reset after search
    assert all("Fe" in r["material"]["elements"] for r in results)


def test_facets_and_stats_are_server_side(
    hub_client: MakeClient, records_hub: list[dict[str, Any]]
) -> None:
    forge = Forge(client=hub_client())
    counts = forge.facets("material.elements", size=20)
    expected: dict[str, int] = {}
    for r in records_hub:
        for el in r["content"]["material"]["elements"]:
            expected[el] = expected.get(el, 0) + 1
    assert counts == expected
    gaps = [r["content"]["band_gap"] for r in records_hub]
    stats = forge.stats("band_gap")
    assert stats["count"] == len(gaps)
    assert stats["sum"] == pytest.approx(sum(gaps))
    assert stats["mean"] == pytest.approx(sum(gaps) / len(gaps))
    assert (stats["min"], stats["max"]) == (min(gaps), max(gaps))
    forge.match_source_names("sdk_1")
    assert sum(forge.facets("mdf.source_name").values()) == 100


def test_scroll_and_windows_return_every_hit(
    hub_client: MakeClient, records_hub: list[dict[str, Any]]
) -> None:
    forge = Forge(client=hub_client())
    forge.match_exists("mdf.scroll_id")
    scrolled = forge._scroll(page_size=70)
    assert sorted(r["mdf"]["scroll_id"] for r in scrolled) == list(range(1, 301))
    windows = forge._windows("mdf.scroll_id", 64, total=300)
    assert sorted(r["mdf"]["scroll_id"] for r in windows) == list(range(1, 301))
    assert len(forge.aggregate("mdf.source_name:sdk_2")) == 100  # ≤ 10,000: one search


def test_unknown_field_is_sent_and_bad_syntax_surfaces(
    hub_client: MakeClient, records_hub: list[dict[str, Any]]
) -> None:
    forge = Forge(client=hub_client())
    assert forge.match_field("no.such.field", "x").search() == []  # sent, as Forge does
    with pytest.raises(BadRequestError) as caught:
        forge.search("band_gap:[1 TO", advanced=True)
    assert caught.value.status == 400 and caught.value.field == "q"


def test_wrong_url_is_one_clear_error_after_retries() -> None:
    client = Client(f"http://127.0.0.1:{free_port()}", retries=2, backoff=0)
    with pytest.raises(HubUnreachable) as caught:
        client.health()
    assert "after 3 attempt(s)" in str(caught.value) and "check the URL" in str(caught.value)
    with pytest.raises(ValueError, match="base_url"):
        Client("localhost:8000")


def test_invalid_token_says_how_to_log_in(hub_client: MakeClient) -> None:
    with pytest.raises(AuthenticationError) as caught:
        hub_client("mh_0123456789abcdef_nope").whoami()
    assert caught.value.status == 401 and "matterhub login" in str(caught.value)


class Flaky(httpx.BaseTransport):
    """Answers 503 for the first `failures` requests, then passes them to the real app."""

    def __init__(self, inner: httpx.BaseTransport, failures: int) -> None:
        self.inner, self.failures, self.calls = inner, failures, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.failures:
            return httpx.Response(503, json={"error": "unavailable", "detail": "busy"})
        return self.inner.handle_request(request)


def test_5xx_is_retried_with_backoff(hub_client: MakeClient) -> None:
    inner = hub_client()._http._transport
    flaky = Flaky(inner, failures=2)
    assert Client("http://hub.test", transport=flaky, backoff=0).health()["status"] == "ok"
    assert flaky.calls == 3
    gives_up = Flaky(inner, failures=10)
    with pytest.raises(Exception, match="503 unavailable: busy") as caught:
        Client("http://hub.test", transport=gives_up, retries=1, backoff=0).health()
    assert "after 2 attempts" in str(caught.value)
    post = Flaky(inner, failures=1)  # a submission is not repeated on 5xx
    with pytest.raises(Exception, match="503"):
        Client("http://hub.test", transport=post, backoff=0).submit({})
    assert post.calls == 1


# -- downloads -----------------------------------------------------------------------------------
DC = {
    "creators": [{"creatorName": "Doe, Jane", "familyName": "Doe", "givenName": "Jane"}],
    "titles": [{"title": "Alloy band gaps"}],
    "publisher": "MatterHub",
    "publicationYear": "2024",
}


def publish(
    services: Services, files: dict[str, bytes], blocks: dict[str, Any] | None = None
) -> str:
    services.accounts.create_user(SYSTEM_IDENTITY, "jane")
    version = services.datasets.create(
        SYSTEM_IDENTITY, dc=DC, source_name="alloys", blocks=blocks, owner="jane"
    )
    for path, data in files.items():
        services.datasets.put_file(SYSTEM_IDENTITY, version.source_id, path, data)
    return services.datasets.publish(SYSTEM_IDENTITY, version.source_id).source_id


FILES = {
    "raw/a.bin": bytes(range(256)) * 4096 * 3,  # 3 MiB: read in 1 MiB blocks
    "raw/b.bin": b"b" * 300_000,
    "README.txt": b"alloys\n",
}


def test_download_dataset_resumes_after_interruption(
    hub_client: MakeClient, services: Services, tmp_path: Path
) -> None:
    sid = publish(services, FILES)
    client = hub_client()  # anonymous: public data needs no token
    seen = 0

    def interrupt(n: int) -> None:
        nonlocal seen
        seen += n
        if seen > 1_500_000:  # halfway through raw/a.bin
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download(
            client, sid, tmp_path, workers=1, archive=False, progress=False, on_bytes=interrupt
        )
    parts = list(tmp_path.rglob("*.part"))
    assert parts and all(p.stat().st_size > 0 for p in parts)
    report = client.download(sid, tmp_path, workers=2, archive=False, progress=False)
    assert report.resumed_bytes > 0
    for path, data in FILES.items():
        assert (tmp_path / sid / path).read_bytes() == data
    assert not list(tmp_path.rglob("*.part"))
    again = client.download(sid, tmp_path, archive=False, progress=False)
    assert again.skipped == 3 and again.downloaded_bytes == 0


def test_download_via_archive_and_from_results(
    hub_client: MakeClient, services: Services, tmp_path: Path
) -> None:
    sid = publish(services, FILES)
    client = hub_client()
    report = client.download(sid, tmp_path / "zip", archive=True, progress=False)
    assert report.via_archive
    assert (tmp_path / "zip" / sid / "raw" / "b.bin").read_bytes() == FILES["raw/b.bin"]
    url = f"http://elsewhere.example/api/datasets/{sid}/files/raw/b.bin"
    records = [
        {
            "mdf": {"resource_type": "record", "source_id": sid},
            "files": [{"url": url, "filename": "b.bin"}],
        },
        {"mdf": {"resource_type": "dataset", "source_id": sid}},
    ]
    forge = Forge(client=client)
    assert forge.http_download(records, tmp_path / "flat", verbose=False)["success"] is True
    assert (tmp_path / "flat" / "b.bin").read_bytes() == FILES["raw/b.bin"]
    assert list(forge.http_stream(records[:1], verbose=False)) == [FILES["raw/b.bin"].decode()]
    too_many = forge.http_download(records[:1] * 51, tmp_path)
    assert too_many["success"] is False and "Too many results" in too_many["message"]


def test_a_large_cut_of_search_results_comes_from_the_archive(
    hub_client: MakeClient, services: Services, tmp_path: Path
) -> None:
    files = {f"s{i:03d}/data.txt": f"sample {i}\n".encode() for i in range(100)}
    sid = publish(services, files)
    client = hub_client()

    def records(indices: range) -> list[dict[str, Any]]:
        base = f"{client.base_url}/api/datasets/{sid}/files"
        return [
            {
                "mdf": {"resource_type": "record", "source_id": sid},
                "files": [{"url": f"{base}/s{i:03d}/data.txt", "filename": "data.txt"}],
            }
            for i in indices
        ]

    most = client.download(records(range(70)), tmp_path / "most", progress=False)
    assert most.via_archive  # 70 of 100 small files: one archive, the wanted members kept
    got = sorted(p.relative_to(tmp_path / "most" / sid).as_posix() for p in most.files)
    assert got == sorted(f"s{i:03d}/data.txt" for i in range(70))
    assert not (tmp_path / "most" / sid / "s070").exists()  # the others are not unpacked
    assert (tmp_path / "most" / sid / "s069" / "data.txt").read_bytes() == b"sample 69\n"
    few = client.download(records(range(30)), tmp_path / "few", progress=False)
    assert not few.via_archive and len(few.files) == 30  # a small share: file by file
    one_by_one = client.download(records(range(70)), tmp_path / "each", archive=False)
    assert not one_by_one.via_archive and len(one_by_one.files) == 70


def test_checksum_mismatch_removes_the_file(
    hub_client: MakeClient, services: Services, tmp_path: Path
) -> None:
    sid = publish(services, {"x.txt": b"original bytes"})
    handle = services.datasets.open_file(SYSTEM_IDENTITY, sid, "x.txt")
    assert handle.local_path is not None
    Path(handle.local_path).write_bytes(b"tampered bytes")  # the disk went bad under the hub
    with pytest.raises(ChecksumMismatch) as caught:
        hub_client().download(sid, tmp_path / "out", progress=False)
    assert caught.value.expected == hashlib.sha512(b"original bytes").hexdigest()
    assert not list((tmp_path / "out").rglob("x.txt*"))


def test_load_dataset_with_keys_splits_and_cache(
    hub_client: MakeClient, services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MATTERHUB_CACHE_DIR", str(tmp_path / "cache"))
    foundry = {
        "keys": [
            {"key": ["composition"], "type": "input"},
            {"key": ["band_gap"], "type": "target"},
        ],
        "splits": [{"type": "train", "path": "train"}, {"type": "test", "path": "test"}],
    }
    sid = publish(
        services, {"train/a.json": b"{}", "test/b.json": b"{}"}, {"projects": {"foundry": foundry}}
    )
    records = [
        {
            "subject": f"{sid}.{i}",
            "visible_to": ["public"],
            "content": {
                "mdf": {
                    "source_name": "alloys",
                    "source_id": sid,
                    "scroll_id": i,
                    "resource_type": "record",
                },
                "files": [
                    {"path": f"{'train' if i <= 3 else 'test'}/{i}.json", "filename": f"{i}.json"}
                ],
                "composition": f"Fe{i}",
                "band_gap": i / 2,
            },
        }
        for i in range(1, 6)
    ]
    ingest(services, records)
    client = hub_client()
    frame = client.load_dataset(sid)
    assert list(frame.columns) == ["composition", "band_gap", "split"]
    assert frame["split"].tolist() == ["train"] * 3 + ["test"] * 2
    train = client.load_dataset("alloys", split="train")
    assert train["composition"].tolist() == ["Fe1", "Fe2", "Fe3"]
    x, y = client.load_dataset(sid, as_arrays=True)
    assert x.shape == (5, 1) and y.tolist() == [[0.5], [1.0], [1.5], [2.0], [2.5]]
    assert list((tmp_path / "cache").rglob(f"{sid}/records.jsonl"))
    with pytest.raises(ValueError, match="no split 'valid'"):
        client.load_dataset(sid, split="valid")
    with pytest.raises(NotFoundError):
        client.load_dataset("nope_v1.0")
