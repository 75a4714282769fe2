"""One byte budget per submission, across all its sources and uploads; declared sizes capped."""

from __future__ import annotations

import io
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from matterhub.api import create_app
from matterhub.bootstrap import Services, build_services
from matterhub.core.connect import SubmissionRequest
from matterhub.core.identity import SYSTEM_IDENTITY, Identity
from matterhub.settings import Settings

LIMIT = 1024 * 1024  # 1 MiB for the whole submission
PART = 400 * 1024  # each source alone is well within it; three together are not


def _dc(title: str) -> dict[str, Any]:
    return {"titles": [{"title": title}], "creators": [{"creatorName": "Budget, Bea"}]}


def _user(services: Services, name: str) -> Identity:
    services.accounts.create_user(SYSTEM_IDENTITY, name)
    token = services.accounts.create_token(SYSTEM_IDENTITY, name).token
    return services.accounts.authenticate(token)


def _submit(services: Services, who: Identity, title: str, sources: list[str]) -> dict[str, Any]:
    request = SubmissionRequest.model_validate({"dc": _dc(title), "data_sources": sources})
    source_id = services.connect.submit(who, request)["source_id"]
    return services.connect.wait(source_id, timeout=60)


def _download_step(status: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in status["status"]["status_list"] if s["step"] == "data_download")


@pytest.fixture
def incoming(tmp_path: Path) -> Path:
    root = tmp_path / "incoming"
    for name in ("a", "b", "c"):
        (root / name).mkdir(parents=True)
        (root / name / f"{name}.bin").write_bytes(bytes([ord(name)]) * PART)
    return root


@pytest.fixture
def hub(tmp_path: Path, incoming: Path) -> Iterator[Services]:
    settings = Settings(
        data_dir=tmp_path / "hub",
        connect_allowed_roots=[incoming],
        connect_max_bytes=LIMIT,
        connect_allow_private_urls=True,
    )
    services = build_services(settings)
    services.start()
    yield services
    services.close()


class _Files(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"h" * PART
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def file_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_three_sources_each_within_the_limit_fail_together(hub: Services, incoming: Path) -> None:
    bea = _user(hub, "bea")
    status = _submit(
        hub, bea, "Three folders over budget", [str(incoming / n) for n in ("a", "b", "c")]
    )
    assert status["status"]["state"] == "failed", status["display_status"]
    step = _download_step(status)
    assert step["code"] == "F"
    assert str(LIMIT) in step["detail"] and "MATTERHUB_CONNECT_MAX_BYTES" in step["detail"]
    # two of them fit: the budget is the submission's, not a single source's
    ok = _submit(hub, bea, "Two folders in budget", [str(incoming / n) for n in ("a", "b")])
    assert ok["status"]["state"] == "succeeded", ok["display_status"]


def test_downloads_count_against_the_same_budget(
    hub: Services, incoming: Path, file_server: str
) -> None:
    bea = _user(hub, "bea")
    sources = [str(incoming / "a"), f"{file_server}/one.bin", f"{file_server}/two.bin"]
    status = _submit(hub, bea, "Folder plus downloads over budget", sources)
    assert status["status"]["state"] == "failed", status["display_status"]
    assert str(LIMIT) in _download_step(status)["detail"]


def test_uploads_share_the_submission_budget(hub: Services) -> None:
    uma = _user(hub, "uma")
    uploads = [
        hub.connect.stage_upload(uma, [(f"{n}.bin", io.BytesIO(b"u" * PART))], max_bytes=LIMIT)
        for n in ("x", "y", "z")
    ]
    status = _submit(hub, uma, "Three uploads over budget", uploads)
    assert status["status"]["state"] == "failed", status["display_status"]
    step = _download_step(status)
    assert step["code"] == "F" and str(LIMIT) in step["detail"]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    settings = Settings(data_dir=tmp_path / "api", publish_max_upload_bytes=10 * 1024**2)
    services = build_services(settings)
    services.accounts.create_user(SYSTEM_IDENTITY, "alice")
    token = services.accounts.create_token(SYSTEM_IDENTITY, "alice").token
    app = create_app(settings, services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
        yield client, {"Authorization": f"Bearer {token}"}
    services.close()


@pytest.mark.anyio
async def test_a_resumable_upload_cannot_declare_a_huge_size(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, alice = api
    r = await client.post(
        "/api/datasets", json={"dc": _dc("Declared sizes"), "source_name": "sizes"}, headers=alice
    )
    assert r.status_code == 201, r.text
    sid = r.json()["source_id"]
    huge = await client.post(
        f"/api/datasets/{sid}/uploads", json={"path": "a.bin", "size": 10**15}, headers=alice
    )
    assert huge.status_code == 413, huge.text
    assert huge.json()["field"] == "size" and str(10 * 1024**2) in huge.json()["detail"]
    fine = await client.post(
        f"/api/datasets/{sid}/uploads", json={"path": "a.bin", "size": 1024}, headers=alice
    )
    assert fine.status_code == 201, fine.text
