"""After publishing: signed webhooks, metadata-only updates."""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Iterator
from hashlib import sha256
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from matterhub.bootstrap import Services
from matterhub.core.connect import SubmissionRequest
from matterhub.core.errors import InvalidInput
from matterhub.core.identity import ANONYMOUS
from tests.connect.helpers import dc, search, submit, user


class Receiver:
    """A real HTTP endpoint that records what it is sent and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def step(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in status["status"]["status_list"] if s["step"] == name)


def test_signed_webhook_after_publishing(
    hub: Services, data_root: Path, receiver: Receiver
) -> None:
    alice = user(hub, "alice")
    services = {"webhook": {"url": receiver.url, "secret": "s3cret"}}
    sid = submit(
        hub,
        alice,
        dc=dc("Webhook announced data"),
        data_sources=[str(data_root / "set1")],
        services=services,
    )
    status = hub.connect.wait(sid)
    assert status["flow_status"]["status"] == "SUCCEEDED"
    assert step(status, "ingest_backup")["code"] == "S"
    headers, body = receiver.requests[0]
    expected = "sha256=" + hmac.new(b"s3cret", body, sha256).hexdigest()
    assert headers["X-MatterHub-Signature"] == expected
    event = json.loads(body)
    assert event["event"] == "dataset.published" and event["source_id"] == sid
    assert event["archive_url"].endswith(
        f"/api/datasets/{sid}/archive.zip?root=false&ro_crate=false"
    )


def test_a_failing_webhook_never_unpublishes(hub: Services, data_root: Path) -> None:
    broken = Receiver(status=500)
    try:
        bob = user(hub, "bob")
        services = {"webhook": {"url": broken.url}}
        sid = submit(
            hub,
            bob,
            dc=dc("Webhook that fails"),
            data_sources=[str(data_root / "set1")],
            services=services,
        )
        status = hub.connect.wait(sid)
        assert step(status, "ingest_backup")["code"] == "R"
        assert "500" in step(status, "ingest_backup")["detail"]
        assert hub.datasets.get(ANONYMOUS, sid).state == "published"
    finally:
        broken.close()


def test_metadata_update_is_a_new_minor_version(hub: Services, data_root: Path) -> None:
    carol = user(hub, "carol")
    first = submit(
        hub, carol, dc=dc("Metadata to be fixed"), data_sources=[str(data_root / "set1")]
    )
    hub.connect.wait(first)
    fixed = {
        "titles": [{"title": "Metadata now fixed"}],
        "creators": [{"creatorName": "Tester, Tina"}],
    }
    answer = hub.connect.update_metadata(
        carol, first, SubmissionRequest(dc=fixed, update_metadata_only=True)
    )
    second = answer["source_id"]
    assert second == first.replace("_v1.0", "_v1.1")
    status = hub.connect.wait(second)
    assert status["flow_status"]["status"] == "SUCCEEDED", status["display_status"]
    assert hub.datasets.get(ANONYMOUS, second).dc["titles"][0]["title"] == "Metadata now fixed"
    assert hub.datasets.get(ANONYMOUS, first).state == "published"  # v1.0 untouched
    hits = search(hub, "mdf.source_name:tester_metadata_be_fixed")
    assert {json.loads(h.source)["mdf"]["source_id"] for h in hits.hits} == {second}
    assert hits.total == 4
    with pytest.raises(InvalidInput) as caught:
        hub.connect.update_metadata(
            carol, second, SubmissionRequest(update_metadata_only=True, mdf={"source_name": "x"})
        )
    assert caught.value.field == "mdf.source_name"
