"""Two real hubs on loopback: a version published on one is dispatched to the other."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_serve import free_port, stop, wait_healthy

pytestmark = pytest.mark.e2e


def start_hub(root: Path, env_extra: dict[str, str]) -> tuple[subprocess.Popen[str], str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
    env.update(env_extra)
    cli = [sys.executable, "-m", "matterhub.cli", "--data-dir", str(root)]
    init = subprocess.run([*cli, "init"], capture_output=True, text=True, env=env, check=True)
    token = re.search(r"(mh_[0-9a-f]{16}_\S+)", init.stdout)
    assert token, init.stdout
    port = free_port()
    proc = subprocess.Popen(
        [*cli, "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, proc)
    return proc, base, token.group(1)


def settle(base: str, token: str, source_id: str) -> dict:
    for _ in range(600):
        status = httpx.get(
            f"{base}/connect/status/{source_id}", headers={"Authorization": f"Bearer {token}"}
        ).json()
        if status["flow_status"]["status"] != "ACTIVE":
            return status
        time.sleep(0.1)
    raise AssertionError(f"{source_id} never settled")


def test_a_peer_hub_receives_the_dispatch(tmp_path: Path) -> None:
    incoming = tmp_path / "incoming" / "run1"
    incoming.mkdir(parents=True)
    (incoming / "spectrum.csv").write_text("energy,counts\n1.0,10\n2.0,12\n")
    (incoming / "notes.txt").write_text("beamline 8-ID\n")
    peer, peer_base, peer_token = start_hub(
        tmp_path / "peer", {"MATTERHUB_CONNECT_ALLOW_PRIVATE_URLS": "true"}
    )
    origin, origin_base, origin_token = start_hub(
        tmp_path / "origin",
        {
            "MATTERHUB_CONNECT_ALLOWED_ROOTS": f'["{tmp_path / "incoming"}"]',
            # the peer listens on loopback: the outbound guard refuses it unless allowed
            "MATTERHUB_OUTBOUND_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
        },
    )
    try:
        submission = {
            "dc": {
                "titles": [{"title": "Spectra shared with a peer hub"}],
                "creators": [{"creatorName": "Curie, Marie"}],
            },
            "data_sources": [str(incoming)],
            "services": {"peer": {"url": peer_base, "token": peer_token}},
        }
        answer = httpx.post(
            f"{origin_base}/connect/submit",
            json=submission,
            headers={"Authorization": f"Bearer {origin_token}"},
        ).json()
        source_id = answer["source_id"]
        status = settle(origin_base, origin_token, source_id)
        assert status["flow_status"]["status"] == "SUCCEEDED", status["display_status"]
        backup = next(s for s in status["status"]["status_list"] if s["step"] == "ingest_backup")
        assert backup["code"] == "S" and peer_base in backup["detail"]
        # the peer collected the origin's zip over HTTP and ran its own pipeline
        peer_status = settle(peer_base, peer_token, source_id)
        assert peer_status["flow_status"]["status"] == "SUCCEEDED", peer_status["display_status"]
        files = httpx.get(f"{peer_base}/api/datasets/{source_id}/files").json()
        assert {f["path"] for f in files} == {"spectrum.csv", "notes.txt"}
        found = httpx.post(
            f"{peer_base}/v1/index/mdf/search",
            json={"q": "mdf.source_name:curie_spectra_shared_hub", "advanced": True},
        ).json()
        assert found["total"] == 3
    finally:
        stop(origin)
        stop(peer)
