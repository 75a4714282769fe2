"""The dataset repository service on a real SQLite catalog and a real blob folder."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from matterhub.catalog import Catalog
from matterhub.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, PIDError
from matterhub.core.identity import ANONYMOUS, SYSTEM_IDENTITY, Identity
from matterhub.publish.datacite import DataCitePIDProvider
from matterhub.publish.local import LocalPIDProvider
from tests.fakes.datacite import FakeDataCite
from tests.publish.conftest import DC, Guarded, build


def sha(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


@pytest.fixture
def alice(make_identity: Callable[..., Identity]) -> Identity:
    return make_identity("alice")


@pytest.fixture
def bob(make_identity: Callable[..., Identity]) -> Identity:
    return make_identity("bob")


def published(repo: Guarded, owner: Identity, files: dict[str, bytes], **kw: Any) -> str:
    v = repo.create(owner, dc=DC, source_name="radium", **kw)
    for path, data in files.items():
        repo.put_file(owner, v.source_id, path, data, expected_sha512=sha(data))
    return repo.publish(owner, v.source_id).source_id


def test_lifecycle_draft_private_then_public(repo: Guarded, alice: Identity, bob: Identity) -> None:
    v = repo.create(alice, dc=DC, source_name="radium")
    assert (v.source_id, v.state, v.version) == ("radium_v1.0", "draft", "1.0")
    assert v.pid and v.pid.startswith("mh/")
    repo.put_file(alice, v.source_id, "raw/a.xy", b"1 2\n3 4\n")
    with pytest.raises(NotFound):
        repo.get(bob, v.source_id)
    with pytest.raises(NotFound):
        repo.open_file(ANONYMOUS, v.source_id, "raw/a.xy")
    assert repo.list_datasets(ANONYMOUS) == []
    out = repo.publish(alice, v.source_id)
    assert out.state == "published" and out.is_latest and out.manifest_sha512
    assert repo.open_file(ANONYMOUS, "radium", "raw/a.xy").sha512 == sha(b"1 2\n3 4\n")
    assert [d.source_name for d in repo.list_datasets(ANONYMOUS)] == ["radium"]
    manifest = json.loads(repo.manifest_document(ANONYMOUS, "radium_v1.0"))
    assert manifest["files"] == [
        {
            "path": "raw/a.xy",
            "size": 8,
            "sha512": sha(b"1 2\n3 4\n"),
            "mime_type": "application/octet-stream",
        }
    ]
    doc = json.loads(repo._blobs.get("datasets/radium/v1.0/dataset.json"))
    assert doc["mdf"]["source_id"] == "radium_v1.0" and doc["dc"]["version"] == "1.0"
    assert doc["data"]["total_size"] == 8 and doc["dc"]["identifier"]["identifierType"] == "URL"
    assert repo.checks >= 3


def test_published_version_is_immutable_and_updates_make_minor_versions(
    repo: Guarded, alice: Identity
) -> None:
    sid = published(repo, alice, {"a.txt": b"alpha"})
    with pytest.raises(Conflict):
        repo.put_file(alice, sid, "b.txt", b"beta")
    with pytest.raises(Conflict):
        repo.delete_file(alice, sid, "a.txt")
    dc2 = {**DC, "titles": [{"title": "Radium chloride, corrected title"}]}
    v11 = repo.update_metadata(alice, sid, dc=dc2)
    assert (v11.source_id, v11.state, v11.is_latest) == ("radium_v1.1", "published", True)
    old = repo.get(alice, sid)
    assert old.dc["titles"][0]["title"] == DC["titles"][0]["title"] and not old.is_latest
    assert repo.get(ANONYMOUS, "radium").source_id == "radium_v1.1"
    # the minor version shares the bytes: same blob, no copy
    assert (
        repo.open_file(ANONYMOUS, "radium_v1.1", "a.txt").key == "datasets/radium/v1.0/files/a.txt"
    )
    with pytest.raises(Conflict):
        repo.update_metadata(alice, sid, dc=dc2)  # not the latest any more
    assert v11.pid != old.pid


def test_new_major_version_keeps_old_versions_downloadable(repo: Guarded, alice: Identity) -> None:
    sid = published(repo, alice, {"a.txt": b"alpha", "b.txt": b"beta"})
    v2 = repo.new_version(alice, "radium")
    assert (v2.source_id, v2.state, v2.file_count) == ("radium_v2.0", "draft", 2)
    with pytest.raises(Conflict):
        repo.new_version(alice, "radium")  # one open draft at a time
    repo.put_file(alice, v2.source_id, "a.txt", b"ALPHA v2")
    repo.delete_file(alice, v2.source_id, "b.txt")
    repo.publish(alice, v2.source_id)
    assert b"".join(repo._blobs.stream(repo.open_file(ANONYMOUS, sid, "a.txt").key)) == b"alpha"
    assert repo.open_file(ANONYMOUS, sid, "b.txt").size == 4
    assert repo.open_file(ANONYMOUS, "radium", "a.txt").size == 8
    with pytest.raises(NotFound):
        repo.open_file(ANONYMOUS, "radium", "b.txt")
    assert [v.source_id for v in repo.versions(ANONYMOUS, "radium")] == [
        "radium_v1.0",
        "radium_v2.0",
    ]


def test_bad_paths_and_unknown_versions(repo: Guarded, alice: Identity) -> None:
    sid = published(repo, alice, {"a.txt": b"alpha"})
    for bad in ("../a.txt", "x/../../a.txt", "/etc/passwd", "a//b", "./a.txt", ""):
        with pytest.raises(InvalidInput):
            repo.open_file(ANONYMOUS, sid, bad)
    with pytest.raises(NotFound):
        repo.get(ANONYMOUS, "radium_v9.0")
    with pytest.raises(NotFound):
        repo.get(ANONYMOUS, "nothing-here")
    with pytest.raises(InvalidInput):
        repo.create(alice, dc=DC, source_name="Bad Name")
    with pytest.raises(InvalidInput) as exc:
        repo.create(alice, dc={"titles": [{"title": "t"}]}, source_name="x")
    assert exc.value.field == "dc.creators"


def test_checksum_mismatch_keeps_nothing(repo: Guarded, alice: Identity) -> None:
    v = repo.create(alice, dc=DC, source_name="radium")
    with pytest.raises(InvalidInput) as exc:
        repo.put_file(alice, v.source_id, "a.txt", b"alpha", expected_sha512=sha(b"other"))
    assert exc.value.field == "sha512"
    assert repo.manifest(alice, v.source_id) == []
    assert list(repo._blobs.list("datasets/")) == []


def test_access_shared_users_curators_and_restricted_files(
    repo: Guarded, alice: Identity, bob: Identity, make_identity: Callable[..., Identity]
) -> None:
    carol = make_identity("carol")
    curator = make_identity("cura", groups=("curators",))
    v = repo.create(
        alice,
        dc=DC,
        source_name="radium",
        shared_with=["user:bob"],
        visible_to=["user:bob", "user:carol"],
    )
    repo.put_file(alice, v.source_id, "open.txt", b"open")
    repo.put_file(alice, v.source_id, "secret.txt", b"secret", visible_to=["user:bob"])
    assert repo.get(bob, v.source_id).state == "draft"
    with pytest.raises(NotFound):
        repo.get(carol, v.source_id)
    with pytest.raises(NotFound):
        repo.get(curator, v.source_id)  # curators see it only once in curation
    with pytest.raises(PermissionDenied):
        repo.put_file(bob, v.source_id, "x.txt", b"x")  # bob may look, not change
    repo.submit_for_curation(alice, v.source_id)
    assert repo.get(curator, v.source_id).state == "curation"
    with pytest.raises(PermissionDenied):
        repo.publish(alice, v.source_id)  # the curator decides now
    repo.publish(curator, v.source_id)
    assert repo.open_file(carol, v.source_id, "open.txt").size == 4
    with pytest.raises(NotFound):
        repo.open_file(carol, v.source_id, "secret.txt")
    assert repo.open_file(bob, v.source_id, "secret.txt").size == 6
    with pytest.raises(NotFound):
        repo.get(ANONYMOUS, v.source_id)  # visible_to did not include public
    _sid, members = repo.archive_members(carol, v.source_id)
    assert [m.name for m in members] == ["radium_v1.0/open.txt"]
    assert [e.restricted for e in repo.manifest(carol, v.source_id)] == [False, True]


def test_curator_rejects_and_owner_reopens(
    repo: Guarded, alice: Identity, make_identity: Callable[..., Identity]
) -> None:
    curator = make_identity("cura", groups=("curators",))
    v = repo.create(alice, dc=DC, source_name="radium")
    repo.submit_for_curation(alice, v.source_id)
    with pytest.raises(PermissionDenied):
        repo.reject(alice, v.source_id, reason="self-rejection")
    out = repo.reject(curator, v.source_id, reason="needs a description of the samples")
    assert (out.state, out.reason) == ("rejected", "needs a description of the samples")
    with pytest.raises(Conflict):
        repo.publish(alice, v.source_id)
    assert repo.reopen(alice, v.source_id).state == "draft"


def test_withdraw_keeps_citation_but_stops_downloads(repo: Guarded, alice: Identity) -> None:
    sid = published(repo, alice, {"a.txt": b"alpha"})
    v2 = repo.new_version(alice, "radium")
    repo.publish(alice, v2.source_id)
    out = repo.withdraw(alice, v2.source_id, reason="wrong calibration")
    assert out.state == "withdrawn"
    assert repo.get(ANONYMOUS, "radium").source_id == sid  # latest falls back
    with pytest.raises(NotFound):
        repo.open_file(ANONYMOUS, v2.source_id, "a.txt")
    assert "Curie" in repo.cite(ANONYMOUS, v2.source_id, "bibtex")[1]
    assert repo.open_file(alice, v2.source_id, "a.txt").size == 5  # the owner still can


def test_publish_race_gives_conflict(catalog: Catalog, tmp_path: Any, alice: Identity) -> None:
    entered, release = threading.Event(), threading.Event()

    class SlowPIDs(LocalPIDProvider):
        def register(self, pid: str, metadata: Any) -> None:
            entered.set()
            release.wait(10)

    repo = build(catalog, tmp_path, SlowPIDs("mh"))
    v = repo.create(alice, dc=DC, source_name="radium")
    repo.put_file(alice, v.source_id, "a.txt", b"alpha")
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(repo.publish(alice, v.source_id)))
    first.start()
    assert entered.wait(10)
    with pytest.raises(Conflict):
        repo.publish(alice, v.source_id)
    with pytest.raises(Conflict):
        repo.put_file(alice, v.source_id, "late.txt", b"too late")  # no write during publish
    release.set()
    first.join()
    assert results[0].state == "published"
    with pytest.raises(Conflict):
        repo.publish(alice, v.source_id)
    assert [e.path for e in repo.manifest(alice, v.source_id)] == ["a.txt"]


def test_failed_publish_leaves_a_draft(catalog: Catalog, tmp_path: Any, alice: Identity) -> None:
    class BrokenPIDs(LocalPIDProvider):
        fail = True

        def register(self, pid: str, metadata: Any) -> None:
            if self.fail:
                raise PIDError("registry down")

    pids = BrokenPIDs("mh")
    repo = build(catalog, tmp_path, pids)
    v = repo.create(alice, dc=DC, source_name="radium")
    with pytest.raises(PIDError):
        repo.publish(alice, v.source_id)
    assert repo.get(alice, v.source_id).state == "draft"
    pids.fail = False
    assert repo.publish(alice, v.source_id).state == "published"


def test_resumable_upload_survives_an_interruption(repo: Guarded, alice: Identity) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    v = repo.create(alice, dc=DC, source_name="radium")
    up = repo.start_upload(alice, v.source_id, path="big.bin", size=len(data), sha512=sha(data))
    first = repo.begin_chunk(alice, v.source_id, up.id, offset=0)
    first.write(data[:300_000])
    assert first.commit().offset == 300_000
    broken = repo.begin_chunk(alice, v.source_id, up.id, offset=300_000)
    broken.write(data[300_000:500_000])
    broken.discard()  # the connection dropped mid-chunk
    status = repo.upload_status(alice, v.source_id, up.id)
    assert status.offset == 300_000
    assert repo.manifest(alice, v.source_id) == []  # nothing half-published
    with pytest.raises(Conflict):
        repo.begin_chunk(alice, v.source_id, up.id, offset=0)
    rest = repo.begin_chunk(alice, v.source_id, up.id, offset=status.offset)
    with pytest.raises(InvalidInput):
        rest.write(data[300_000:] + b"extra")  # more than declared
    rest = repo.begin_chunk(alice, v.source_id, up.id, offset=status.offset)
    rest.write(data[300_000:])
    entry = rest.commit()
    assert (entry.path, entry.size, entry.sha512) == ("big.bin", len(data), sha(data))
    assert list(repo._blobs.list("uploads/")) == []
    with pytest.raises(NotFound):
        repo.upload_status(alice, v.source_id, up.id)


def test_resumable_upload_with_wrong_checksum_keeps_nothing(repo: Guarded, alice: Identity) -> None:
    v = repo.create(alice, dc=DC, source_name="radium")
    up = repo.start_upload(alice, v.source_id, path="x.bin", size=4, sha512=sha(b"abcd"))
    chunk = repo.begin_chunk(alice, v.source_id, up.id, offset=0)
    chunk.write(b"abce")
    with pytest.raises(InvalidInput):
        chunk.commit()
    assert repo.manifest(alice, v.source_id) == []
    assert list(repo._blobs.list("")) == []


def test_archives_stream_every_readable_file(repo: Guarded, alice: Identity) -> None:
    files = {"a.txt": b"alpha", "dir/b.bin": bytes(3_000_000)}
    sid = published(repo, alice, files)
    _sid, members = repo.archive_members(ANONYMOUS, sid)
    zipped = b"".join(repo.stream_archive(members, "zip"))
    with zipfile.ZipFile(io.BytesIO(zipped)) as zf:
        assert zf.testzip() is None
        assert {n: zf.read(n) for n in zf.namelist()} == {f"{sid}/{k}": v for k, v in files.items()}
    tarred = b"".join(repo.stream_archive(members, "tar"))
    with tarfile.open(fileobj=io.BytesIO(tarred)) as tf:
        got = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}  # type: ignore[union-attr]
    assert got == {f"{sid}/{k}": v for k, v in files.items()}


def test_records_are_frozen_with_the_version(repo: Guarded, alice: Identity) -> None:
    v = repo.create(alice, dc=DC, source_name="radium")
    assert (
        repo.set_records(alice, v.source_id, [{"mdf": {"scroll_id": 1}}, {"mdf": {"scroll_id": 2}}])
        == 2
    )
    repo.publish(alice, v.source_id)
    lines = repo._blobs.get("datasets/radium/v1.0/records.jsonl").splitlines()
    assert [json.loads(x)["mdf"]["scroll_id"] for x in lines] == [1, 2]
    with pytest.raises(Conflict):
        repo.set_records(alice, v.source_id, [])


def test_anonymous_cannot_create(repo: Guarded) -> None:
    with pytest.raises(PermissionDenied):
        repo.create(ANONYMOUS, dc=DC, source_name="radium")


@pytest.fixture
def datacite_repo(catalog: Catalog, tmp_path: Any, datacite: FakeDataCite) -> Iterator[Guarded]:
    pids = DataCitePIDProvider.from_options(
        {
            "datacite_url": datacite.url,
            "datacite_user": datacite.user,
            "datacite_password": datacite.password,
            "datacite_prefix": datacite.prefix,
        }
    )
    return build(catalog, tmp_path, pids)


def test_datacite_reserves_then_registers_with_dc_metadata(
    datacite_repo: Guarded, datacite: FakeDataCite, alice: Identity
) -> None:
    repo = datacite_repo
    v = repo.create(alice, dc=DC, source_name="radium")
    assert v.pid and v.pid.startswith("10.5072/")
    assert datacite.dois[v.pid]["attributes"]["state"] == "draft"
    post = datacite.requests[0]
    assert (post.method, post.path) == ("POST", "/dois")
    assert post.body and post.body["data"]["attributes"]["prefix"] == "10.5072"
    out = repo.publish(alice, v.source_id)
    assert out.pid_url == f"https://doi.org/{v.pid}"
    put = datacite.requests[-1]
    assert (put.method, put.path) == ("PUT", f"/dois/{v.pid}")
    attrs = put.body["data"]["attributes"]  # type: ignore[index]
    assert attrs["event"] == "publish"
    assert attrs["url"] == f"http://hub.test/pid/{v.pid}"
    assert attrs["titles"] == [{"title": "Radium chloride diffraction patterns"}]
    assert attrs["creators"][0] == {
        "name": "Curie, Marie",
        "nameType": "Personal",
        "givenName": "Marie",
        "familyName": "Curie",
        "affiliation": [{"name": "Sorbonne"}],
    }
    assert attrs["publicationYear"] == 2024 and attrs["version"] == "1.0"
    assert attrs["types"] == {"resourceTypeGeneral": "Dataset", "resourceType": "Dataset"}
    assert datacite.dois[v.pid]["attributes"]["state"] == "findable"
    doc = json.loads(repo._blobs.get("datasets/radium/v1.0/dataset.json"))
    assert doc["dc"]["identifier"] == {"identifier": v.pid, "identifierType": "DOI"}
    repo.withdraw(alice, v.source_id, reason="duplicate")
    assert datacite.dois[v.pid]["attributes"]["state"] == "registered"


def test_datacite_outage_delays_the_doi_to_publish(
    datacite_repo: Guarded, datacite: FakeDataCite, alice: Identity
) -> None:
    datacite.fail_next = 1
    v = datacite_repo.create(alice, dc=DC, source_name="radium")
    assert v.pid is None
    out = datacite_repo.publish(alice, v.source_id)
    assert out.pid and datacite.dois[out.pid]["attributes"]["state"] == "findable"


def test_datacite_wrong_password_is_a_pid_error(datacite: FakeDataCite) -> None:
    pids = DataCitePIDProvider(url=datacite.url, user="MH.TEST", password="nope", prefix="10.5072")
    with pytest.raises(PIDError, match="401"):
        pids.reserve("x_v1.0", {"titles": []})


def test_system_creates_for_an_owner(repo: Guarded, alice: Identity) -> None:
    v = repo.create(SYSTEM_IDENTITY, dc=DC, source_name="radium", owner="alice")
    assert repo.get(alice, v.source_id).state == "draft"
    with pytest.raises(PermissionDenied):
        repo.create(alice, dc=DC, source_name="other", owner="bob")


def test_many_local_files_at_once(
    repo: Guarded, alice: Identity, bob: Identity, tmp_path: Any
) -> None:
    source = tmp_path / "many"
    (source / "sub").mkdir(parents=True)
    files = {"a.txt": b"alpha", "sub/b.txt": b"beta", "sub/c.bin": bytes(range(256))}
    for path, data in files.items():
        (source / path).write_bytes(data)
    v = repo.create(alice, dc=DC, source_name="radium")
    pairs = [(path, source / path) for path in files]
    with pytest.raises(NotFound):
        repo.put_local_files(bob, v.source_id, pairs)  # not bob's draft (not even visible)
    assert repo.put_local_files(alice, v.source_id, pairs) == 3
    manifest = {e.path: e for e in repo.manifest(alice, v.source_id)}
    assert {p: e.sha512 for p, e in manifest.items()} == {p: sha(d) for p, d in files.items()}
    assert repo.get(alice, v.source_id).file_count == 3

    # A clash (a file where a folder is) or a repeat records none of the batch.
    (source / "sub.txt").write_bytes(b"x")
    with pytest.raises(Conflict):
        repo.put_local_files(
            alice, v.source_id, [("d.txt", source / "a.txt"), ("a.txt/x", source / "sub.txt")]
        )
    with pytest.raises(Conflict):
        repo.put_local_files(alice, v.source_id, [("e.txt", source / "a.txt")] * 2)
    with pytest.raises(Conflict, match="sub"):  # a file where recorded files have their folder
        repo.put_local_files(alice, v.source_id, [("sub", source / "a.txt")])
    with pytest.raises(Conflict):  # a path recorded already
        repo.put_local_files(alice, v.source_id, [("sub/b.txt", source / "a.txt")])
    assert sorted(e.path for e in repo.manifest(alice, v.source_id)) == sorted(files)

    # Clearing empties the draft; the published version keeps its bytes even after the
    # staged copies it was linked from are gone.
    assert repo.clear_files(alice, v.source_id) == 3
    assert repo.manifest(alice, v.source_id) == []
    repo.put_local_files(alice, v.source_id, pairs)
    repo.publish(alice, v.source_id)
    for path in files:
        (source / path).unlink()
    handle = repo.open_file(ANONYMOUS, v.source_id, "sub/c.bin")
    assert handle.local_path is not None and handle.local_path.read_bytes() == bytes(range(256))
    with pytest.raises(Conflict):
        repo.clear_files(alice, v.source_id)  # published: immutable


def test_records_stream_back_whole_across_chunks(repo: Guarded, alice: Identity) -> None:
    v = repo.create(alice, dc=DC, source_name="radium")
    records = [{"n": i, "text": f"{i:06d}" * 80} for i in range(3000)]  # ~1.5 MB > one chunk
    assert repo.set_records(alice, v.source_id, iter(records)) == 3000
    assert list(repo.iter_records(alice, v.source_id)) == records
    assert repo.records(alice, v.source_id) == records
