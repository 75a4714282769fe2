"""End to end: real `matterhub serve` and `matterhub demo` processes over loopback."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e
MATTERHUB = [sys.executable, "-m", "matterhub.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(base: str, proc: subprocess.Popen[str], timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early with {proc.returncode}")
        try:
            return httpx.get(f"{base}/health", timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("server did not answer /health in time")


def start(args: list[str], data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
    return subprocess.Popen(
        [*MATTERHUB, "--data-dir", str(data_dir), *args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def stop(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C the process, as a person would, and return everything it printed."""
    proc.send_signal(signal.SIGINT)
    try:
        output, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        raise AssertionError(f"did not stop on Ctrl-C:\n{output}") from None
    return output


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    proc = start(["serve"], tmp_path / "hub", port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_healthy(base, proc).status_code == 200
        yield base, proc
    finally:
        if proc.poll() is None:
            stop(proc)


def test_serve_answers_and_its_first_admin_token_works(
    served: tuple[str, subprocess.Popen[str]],
) -> None:
    base, proc = served
    assert httpx.get(f"{base}/health").json()["status"] == "ok"
    assert "/api/whoami" in httpx.get(f"{base}/openapi.json").json()["paths"]
    assert httpx.get(f"{base}/api/whoami").json()["authenticated"] is False
    output = stop(proc)
    token = re.search(r"(mh_[0-9a-f]{16}_\S+)", output)
    assert token, output
    assert proc.returncode == 0


def test_demo_serves_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    proc = start(["demo"], tmp_path / "demo", port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_healthy(base, proc).json()["status"] == "ok"
        docs = httpx.get(f"{base}/docs")
        assert docs.status_code == 200 and "openapi.json" in docs.text
        paths = httpx.get(f"{base}/openapi.json").json()["paths"]
        assert {"/health", "/api/whoami", "/api/users"} <= set(paths)
        alice = (tmp_path / "demo" / "demo-alice-token").read_text().strip()
        me = httpx.get(f"{base}/api/whoami", headers={"Authorization": f"Bearer {alice}"})
        assert me.json()["username"] == "alice" and me.json()["groups"] == ["demo-lab"]
        check_demo_datasets(base)
        check_demo_servable(base)
    finally:
        output = stop(proc)
    assert f"{base}/docs" in output and alice in output
    assert proc.returncode == 0


def check_demo_datasets(base: str) -> None:
    """The demo's datasets went through Connect: published, searchable, downloadable anonymously."""
    found = httpx.post(
        f"{base}/v1/index/mdf/search",
        json={"q": "mdf.source_name:dcdft AND material.elements:Fe", "advanced": True},
    ).json()
    assert found["total"] == 1
    record = found["gmeta"][0]["entries"][0]["content"]
    assert record["crystal_structure"]["space_group_number"] == 229  # found by the extractor
    row = httpx.post(
        f"{base}/v1/index/mdf/search", json={"q": "custom.name:Fe", "advanced": True}
    ).json()["gmeta"][0]["entries"][0]["content"]
    assert row["custom"]["exp_B"] == pytest.approx(175.1087, rel=1e-4)  # dcdft.csv, by mapping
    cif = httpx.get(record["files"][0]["url"])
    assert cif.status_code == 200 and b"_cell_length_a" in cif.content
    assert hashlib.sha512(cif.content).hexdigest() == record["files"][0]["sha512"]
    counts = httpx.post(
        f"{base}/v1/index/mdf/search",
        json={"q": "*", "advanced": True, "limit": 0,
              "facets": [{"field_name": "mdf.source_name", "type": "terms"}]},
    ).json()  # fmt: skip
    buckets = {b["value"]: b["count"] for b in counts["facet_results"][0]["buckets"]}
    assert buckets["dcdft"] == 1 + 71 + 71  # dataset entry, 71 CIF records, 71 rows of dcdft.csv
    assert buckets["g2"] == 1 + 162
    dataset = httpx.get(f"{base}/api/datasets/dcdft").json()
    assert dataset["state"] == "published" and dataset["pid"]
    bibtex = httpx.get(
        f"{base}/api/datasets/{dataset['source_id']}/cite", params={"format": "bibtex"}
    )
    assert "Delta test" in bibtex.text


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start(["serve"], tmp_path / "hub", port)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in output and "MATTERHUB_PORT" in output


def check_demo_servable(base: str) -> None:
    """The Δ-model was fitted on dcdft, built in its own environment and is discoverable."""
    described = httpx.get(f"{base}/api/servables/alice/bulk_modulus_delta").json()
    document = described["document"]
    assert document["dlhub"]["training_data"]["source_id"] == "dcdft_v1.0"
    example = document["servable"]["example"]
    assert 0.5 < example["output"] / example["input"] < 1.5  # a correction, not a new model
    found = httpx.get(f"{base}/api/servables", params={"q": "bulk modulus"}).json()
    assert any("bulk_modulus_delta" in json.dumps(hit) for hit in found["servables"])
