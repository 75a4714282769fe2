"""fsspec sources, previews stored beside the version, telling submitters, a mid-pipeline crash."""

from __future__ import annotations

import functools
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest

from matterhub.bootstrap import Services, build_services
from matterhub.catalog.models import Submission
from matterhub.connect.extractors.base import DerivedFile, Extractor, FileGroup
from matterhub.connect.extractors.generic import GenericExtractor
from matterhub.connect.extractors.registry import run_extractors
from matterhub.connect.extractors.structures import StructureExtractor
from matterhub.core.identity import ANONYMOUS, SYSTEM_IDENTITY
from matterhub.jobs import JobQueue
from matterhub.settings import Settings
from tests.connect.helpers import CIF, dc, search, submit, user
from tests.connect.test_dispatch import Receiver
from tests.fakes.smtp import FakeSMTP


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def smtp() -> Iterator[FakeSMTP]:
    server = FakeSMTP()
    yield server
    server.close()


def test_memory_fsspec_folder_becomes_searchable(hub: Services) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"/connect-{uuid.uuid4().hex}"
    fs.pipe({f"{root}/Fe.cif": CIF.encode(), f"{root}/deep/notes.txt": b"a note\n"})
    ada = user(hub, "ada")
    sid = submit(hub, ada, dc=dc("Iron held in memory"), data_sources=[f"memory://{root}"])
    assert hub.connect.wait(sid)["status"]["state"] == "succeeded"
    paths = {e.path for e in hub.datasets.manifest(ANONYMOUS, sid)}
    assert {p for p in paths if not p.startswith(".derived/")} == {"Fe.cif", "deep/notes.txt"}
    assert search(hub, f'mdf.source_id:"{sid}" AND material.elements:Fe').total == 1


def test_s3_source_with_credentials_from_settings(tmp_path: Path) -> None:
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="lab-data")
        s3.put_object(Bucket="lab-data", Key="run7/Fe.cif", Body=CIF.encode())
        s3.put_object(Bucket="lab-data", Key="run7/log.txt", Body=b"converged\n")
        options = {
            "s3": {
                "key": "testing",
                "secret": "testing",
                "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
            }
        }
        services = build_services(
            Settings(data_dir=tmp_path / "hub", connect_fsspec_options=options)
        )
        services.start()
        try:
            bo = user(services, "bo")
            sid = submit(
                services, bo, dc=dc("Iron from a bucket"), data_sources=["s3://lab-data/run7"]
            )
            assert services.connect.wait(sid)["status"]["state"] == "succeeded"
            paths = {e.path for e in services.datasets.manifest(ANONYMOUS, sid)}
            assert {p for p in paths if not p.startswith(".derived/")} == {"Fe.cif", "log.txt"}
            assert search(services, f'mdf.source_id:"{sid}" AND material.elements:Fe').total == 1
            missing = submit(
                services, bo, dc=dc("Nothing in the bucket"), data_sources=["s3://lab-data/none"]
            )
            status = services.connect.wait(missing)
            assert status["status"]["state"] == "failed"
            assert "does not exist" in status["display_status"]
        finally:
            services.close()
    finally:
        server.stop()


class _Previewer(Extractor):
    """A plugin that derives a small file from each CIF (what image/structure previews do)."""

    name = "previewer"

    def accepts(self, file: Any) -> bool:
        return bool(file.relpath.endswith(".cif"))

    def extract(self, group: FileGroup, context: Any) -> dict[str, Any]:
        return {}

    def derive(self, group: FileGroup, context: Any) -> list[DerivedFile]:
        source = group.files[0].relpath
        return [DerivedFile(source, "thumb.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"0" * 16)]


def test_derived_files_are_stored_beside_the_version_and_linked(
    tmp_path: Path, data_root: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "hub", connect_allowed_roots=[data_root])
    services = build_services(settings)
    extract = functools.partial(
        run_extractors,
        extractors=[GenericExtractor(), StructureExtractor(), _Previewer()],
    )
    services.connect._extract = extract
    services.start()
    try:
        cy = user(services, "cy")
        sid = submit(
            services, cy, dc=dc("Iron with previews"), data_sources=[str(data_root / "set1")]
        )
        assert services.connect.wait(sid)["status"]["state"] == "succeeded"
        path = ".derived/Fe.cif/thumb.png"
        assert path in {e.path for e in services.datasets.manifest(ANONYMOUS, sid)}
        record = next(
            r
            for r in services.datasets.records(ANONYMOUS, sid)
            if any(f["filename"] == "Fe.cif" for f in r["files"])
        )
        links = next(f for f in record["files"] if f["filename"] == "Fe.cif")["previews"]
        link = next(x for x in links if x["path"] == path)
        assert link["path"] == path and link["media_type"] == "image/png"
        assert link["url"].endswith(f"/api/datasets/{sid}/files/{path}")
        handle = services.datasets.open_file(ANONYMOUS, sid, path)
        assert handle.local_path is not None
        assert handle.local_path.read_bytes().startswith(b"\x89PNG")
    finally:
        services.close()


def test_submitters_hear_curation_decisions(
    tmp_path: Path, data_root: Path, receiver: Receiver, smtp: FakeSMTP
) -> None:
    settings = Settings(
        data_dir=tmp_path / "hub",
        connect_allowed_roots=[data_root],
        connect_notify_url=receiver.url,
        smtp_url=smtp.url,
        secret="s3cret-for-signing",
    )
    services = build_services(settings)
    services.start()
    try:
        services.accounts.create_user(SYSTEM_IDENTITY, "dee", email="dee@lab.example")
        dee = services.accounts.authenticate(
            services.accounts.create_token(SYSTEM_IDENTITY, "dee").token
        )
        cur = user(services, "cur", curator=True)
        sid = submit(
            services,
            dee,
            dc=dc("Needs a curator"),
            data_sources=[str(data_root / "set1")],
            curation=True,
        )
        assert services.connect.wait(sid)["status"]["state"] == "curation"
        services.connect.curate(cur, sid, action="reject", reason="titles are too vague")
        headers, body = receiver.requests[-1]
        notice = json.loads(body)
        assert notice["event"] == "curation.rejected" and notice["source_id"] == sid
        assert notice["reason"] == "titles are too vague" and notice["submitter"] == "dee"
        expected = hmac.new(b"s3cret-for-signing", body, sha256).hexdigest()
        assert headers["X-MatterHub-Signature"] == f"sha256={expected}"
        (mail,) = smtp.messages
        assert mail["To"] == "dee@lab.example" and sid in mail["Subject"]
        assert "titles are too vague" in mail.get_payload(decode=True).decode()
        # The decision is in the status too.
        status = services.connect.status(dee, sid)
        assert "rejected: titles are too vague" in json.dumps(status)

        again = submit(
            services,
            dee,
            dc=dc("Needs a curator"),
            data_sources=[str(data_root / "set1")],
            curation=True,
            update=True,
        )
        assert services.connect.wait(again)["status"]["state"] == "curation"
        services.connect.curate(cur, again, action="accept", reason="fine now")
        assert services.connect.wait(again)["status"]["state"] == "succeeded"
        deadline = time.monotonic() + 10  # the outcome is told right after it is recorded
        while len(smtp.messages) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        events = [json.loads(b)["event"] for _h, b in receiver.requests]
        assert events[-2:] == ["curation.accepted", "submission.succeeded"]
        assert [m["Subject"].split(": ")[-1] for m in smtp.messages] == [
            "curation.rejected",
            "curation.accepted",
            "submission.succeeded",
        ]
    finally:
        services.close()


def test_a_crash_mid_pipeline_resumes_and_publishes_once(tmp_path: Path, data_root: Path) -> None:
    settings = Settings(data_dir=tmp_path / "hub", connect_allowed_roots=[data_root])
    first = build_services(settings)  # no workers started: we play the worker and "crash"
    eli = user(first, "eli")
    sid = submit(first, eli, dc=dc("Crash in the middle"), data_sources=[str(data_root / "set1")])
    job = first.jobs.claim(["connect.submission"])
    assert job is not None
    with first.catalog.transaction() as session:  # the worker got as far as collecting
        sub = session.get(Submission, job.payload["submission_id"])
        assert sub is not None
        sub.status = "processing"
        next(s for s in sub.steps if s.step == "data_download").code = "P"
    first.catalog.close()

    second = build_services(settings)
    second.start()
    try:
        status = second.connect.wait(sid)
        assert status["status"]["state"] == "succeeded"
        versions = second.datasets.versions(ANONYMOUS, sid.rsplit("_v", 1)[0])
        assert [v.state for v in versions] == ["published"]
        assert search(second, f'mdf.source_id:"{sid}" AND mdf.resource_type:dataset').total == 1
        deadline = time.monotonic() + 10  # the job ends just after the submission does
        while second.jobs.get(job.id).status == "running" and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.02)
        assert second.jobs.get(job.id).status == "success"  # type: ignore[union-attr]
        assert second.jobs.get(job.id).attempts == 2  # type: ignore[union-attr]
        assert JobQueue(second.catalog).open_payloads("connect.submission") == []
    finally:
        second.close()


def test_a_crash_after_publishing_resumes_at_indexing(tmp_path: Path, data_root: Path) -> None:
    source = tmp_path / "incoming" / "once"
    source.mkdir()
    (source / "Fe.cif").write_text(CIF)
    settings = Settings(data_dir=tmp_path / "hub", connect_allowed_roots=[data_root])
    first = build_services(settings)
    fay = user(first, "fay")
    sid = submit(first, fay, dc=dc("Crash after publishing"), data_sources=[str(source)])
    job = first.jobs.claim(["connect.submission"])
    assert job is not None
    submission_id = job.payload["submission_id"]
    first.search.start()  # indexing needs the search writer; Connect's own worker stays off
    first.connect._process(submission_id)  # the whole pipeline ran …
    with first.catalog.transaction() as session:  # … but the process died before recording it
        sub = session.get(Submission, submission_id)
        assert sub is not None
        sub.status = "processing"
    first.search.stop()
    first.catalog.close()
    for item in source.iterdir():  # the source is gone: collecting again would fail
        item.unlink()

    second = build_services(settings)
    second.start()
    try:
        assert second.connect.wait(sid)["status"]["state"] == "succeeded"
        assert [v.state for v in second.datasets.versions(ANONYMOUS, sid.rsplit("_v", 1)[0])] == [
            "published"
        ]
        assert search(second, f'mdf.source_id:"{sid}" AND material.elements:Fe').total == 1
    finally:
        second.close()
