"""Connect end to end over real services: collect, extract, curate, publish, index, update."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from matterhub.bootstrap import Services, build_services
from matterhub.core.errors import Conflict, InvalidInput, PermissionDenied
from matterhub.core.identity import ANONYMOUS, SYSTEM_IDENTITY
from matterhub.core.search import GSearchRequest
from matterhub.settings import Settings
from tests.connect.helpers import CIF, codes, data_paths, dc, search, submit, user


def test_local_folder_to_searchable_records(hub: Services, data_root: Path) -> None:
    alice = user(hub, "alice")
    sid = submit(hub, alice, dc=dc(), data_sources=[str(data_root / "set1")], tags=["iron"])
    assert sid == "tester_iron_bcc_connect_v1.0"
    status = hub.connect.wait(sid)
    assert status["flow_status"]["status"] == "SUCCEEDED", status["display_status"]
    assert codes(status)[0] == "S" and codes(status)[-1] == "S"
    version = hub.datasets.get(ANONYMOUS, sid)
    assert version.state == "published" and version.pid
    assert data_paths(hub, sid) == {
        "Fe.cif",
        "notes.txt",
        "sub/table.csv",
    }
    assert {"subject": "iron"} in version.dc["subjects"]
    found = search(hub, "material.elements:Fe AND crystal_structure.space_group_number:229")
    assert found.total == 1
    record = json.loads(found.hits[0].source)
    assert record["mdf"]["source_id"] == sid and record["mdf"]["scroll_id"] >= 1
    assert record["files"][0]["url"].endswith(f"/api/datasets/{sid}/files/Fe.cif")
    everything = search(hub, "mdf.source_name:tester_iron_bcc_connect")
    assert everything.total == 1 + 3  # the dataset entry and one record per file
    assert (
        search(hub, "mdf.resource_type:dataset AND mdf.source_name:tester_iron_bcc_connect").total
        == 1
    )


def test_http_archive_is_unpacked(hub: Services, tmp_path: Path) -> None:
    served = tmp_path / "www"
    served.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("inner/Fe.cif", CIF)
        zf.writestr("readme.txt", "hello")
    (served / "data.zip").write_bytes(buffer.getvalue())
    handler = partial(SimpleHTTPRequestHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        bob = user(hub, "bob")
        url = f"http://127.0.0.1:{server.server_port}/data.zip"
        sid = submit(hub, bob, dc=dc("Zipped iron over http"), data_sources=[url])
        status = hub.connect.wait(sid)
        assert status["flow_status"]["status"] == "SUCCEEDED", status["display_status"]
        assert data_paths(hub, sid) == {
            "inner/Fe.cif",
            "readme.txt",
        }
        assert search(hub, f'mdf.source_id:"{sid}" AND material.elements:Fe').total == 1
    finally:
        server.shutdown()
        server.server_close()


def test_unsafe_archive_fails_and_publishes_nothing(hub: Services, data_root: Path) -> None:
    with zipfile.ZipFile(data_root / "evil.zip", "w") as zf:
        zf.writestr("../../escape.txt", "nope")
    carol = user(hub, "carol")
    sid = submit(hub, carol, dc=dc("Evil archive test"), data_sources=[str(data_root / "evil.zip")])
    status = hub.connect.wait(sid)
    assert status["flow_status"]["status"] == "FAILED"
    assert "unsafe path" in status["display_status"]
    assert hub.datasets.get(SYSTEM_IDENTITY, sid).state == "draft"
    assert search(hub, "mdf.source_name:tester_evil_archive_test").total == 0


def test_sources_outside_allowed_roots_and_private_urls(tmp_path: Path, data_root: Path) -> None:
    services = build_services(Settings(data_dir=tmp_path / "strict", connect_allowed_roots=[]))
    services.start()
    try:
        dave = user(services, "dave")
        sid = submit(services, dave, dc=dc("Not allowed here"), data_sources=[str(data_root)])
        status = services.connect.wait(sid)
        assert status["flow_status"]["status"] == "FAILED"
        assert "MATTERHUB_CONNECT_ALLOWED_ROOTS" in status["display_status"]
        sid = submit(
            services,
            dave,
            dc=dc("Private address attempt"),
            data_sources=["http://127.0.0.1:9/x.zip"],
        )
        status = services.connect.wait(sid)
        assert "private address" in status["display_status"]
    finally:
        services.close()


def test_curation_accept_and_reject(hub: Services, data_root: Path) -> None:
    erin = user(hub, "erin")
    cura = user(hub, "cura", curator=True)
    accepted = submit(
        hub,
        erin,
        dc=dc("Curated iron accepted"),
        data_sources=[str(data_root / "set1")],
        curation=True,
    )
    rejected = submit(
        hub,
        erin,
        dc=dc("Curated iron rejected"),
        data_sources=[str(data_root / "set1")],
        curation=True,
    )
    for sid in (accepted, rejected):
        assert hub.connect.wait(sid)["status"]["state"] == "curation"
    with pytest.raises(PermissionDenied):
        hub.connect.curation_tasks(erin)
    tasks = {t["source_id"]: t for t in hub.connect.curation_tasks(cura)}
    assert set(tasks) == {accepted, rejected}
    assert tasks[accepted]["submission_info"]["submitter"] == "erin"
    assert len(tasks[accepted]["sample_records"]) == 3
    assert (
        search(hub, "mdf.source_name:tester_curated_iron_accepted").total == 0
    )  # not before acceptance
    hub.connect.curate(cura, accepted, action="accept", reason="looks right")
    hub.connect.curate(cura, rejected, action="reject", reason="missing units")
    assert hub.connect.wait(accepted)["flow_status"]["status"] == "SUCCEEDED"
    assert hub.datasets.get(ANONYMOUS, accepted).state == "published"
    assert search(hub, "mdf.source_name:tester_curated_iron_accepted").total == 4
    status = hub.connect.status(erin, rejected)
    assert (
        status["flow_status"]["status"] == "FAILED" and "missing units" in status["display_status"]
    )
    with pytest.raises(InvalidInput):
        hub.connect.curate(cura, accepted, action="maybe", reason="x")


def test_update_makes_a_new_version_and_keeps_the_old(hub: Services, data_root: Path) -> None:
    fay = user(hub, "fay")
    first = submit(hub, fay, dc=dc("Versioned iron data"), data_sources=[str(data_root / "set1")])
    hub.connect.wait(first)
    with pytest.raises(Conflict):
        submit(hub, fay, dc=dc("Versioned iron data"), data_sources=[str(data_root / "set1")])
    (data_root / "set2").mkdir()
    (data_root / "set2" / "Fe.cif").write_text(CIF)
    second = submit(
        hub, fay, dc=dc("Versioned iron data"), data_sources=[str(data_root / "set2")], update=True
    )
    assert second == "tester_versioned_iron_data_v2.0"
    assert hub.connect.wait(second)["flow_status"]["status"] == "SUCCEEDED"
    assert hub.datasets.get(ANONYMOUS, first).state == "published"  # v1.0 still there
    assert hub.datasets.open_file(ANONYMOUS, first, "notes.txt") is not None
    hits = search(hub, "mdf.source_name:tester_versioned_iron_data")
    assert {json.loads(h.source)["mdf"]["source_id"] for h in hits.hits} == {
        second
    }  # only the latest


def test_naming_rules(hub: Services, data_root: Path) -> None:
    gus = user(hub, "gus")
    hal = user(hub, "hal")
    with pytest.raises(InvalidInput) as caught:
        submit(hub, gus, dc=dc("Brand new"), data_sources=[str(data_root)], update=True)
    assert caught.value.field == "update"
    mine = submit(
        hub,
        gus,
        dc=dc("Owned by gus"),
        data_sources=[str(data_root / "set1")],
        mdf={"source_name": "gus_data"},
    )
    assert mine == "gus_data_v1.0"
    with pytest.raises(PermissionDenied):
        submit(
            hub,
            hal,
            dc=dc("Owned by gus"),
            data_sources=[str(data_root)],
            mdf={"source_name": "gus_data"},
            update=True,
        )
    test_sid = submit(hub, gus, dc=dc("Sandbox"), data_sources=[str(data_root / "set1")], test=True)
    assert test_sid.startswith("_test_")
    hub.connect.wait(test_sid)
    assert hub.search.search(ANONYMOUS, "mdf-test", GSearchRequest(q="*", limit=0)).total == 4


def test_a_restart_finishes_what_was_acknowledged(tmp_path: Path, data_root: Path) -> None:
    settings = Settings(data_dir=tmp_path / "hub", connect_allowed_roots=[data_root])
    stopped = build_services(settings)  # no workers: the "server" dies right after acknowledging
    ivy = user(stopped, "ivy")
    sid = submit(stopped, ivy, dc=dc("Survives a restart"), data_sources=[str(data_root / "set1")])
    assert stopped.connect.status(ivy, sid)["status"]["state"] == "pending"
    stopped.catalog.close()
    restarted = build_services(settings)
    restarted.start()
    try:
        assert restarted.connect.wait(sid)["flow_status"]["status"] == "SUCCEEDED"
        assert restarted.datasets.get(ANONYMOUS, sid).state == "published"
    finally:
        restarted.close()


def test_status_is_private_to_the_submitter(hub: Services, data_root: Path) -> None:
    jo = user(hub, "jo")
    kim = user(hub, "kim")
    sid = submit(hub, jo, dc=dc("Private status"), data_sources=[str(data_root / "set1")])
    hub.connect.wait(sid)
    assert [s["source_id"] for s in hub.connect.submissions(jo)] == [sid]
    assert hub.connect.submissions(kim) == []
    with pytest.raises(Exception, match="no submission"):
        hub.connect.status(kim, sid)
    newer = hub.connect.submissions(jo, [["source_id", "==", sid]])
    assert len(newer) == 1
