"""The real mdf-connect-client, unmodified, submitting to a real `matterhub serve`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_serve import free_port, stop, wait_healthy

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    root = tmp_path_factory.mktemp("connect")
    data = root / "incoming" / "xrd"
    data.mkdir(parents=True)
    (data / "pattern.xy").write_text("10.0 5\n10.1 7\n")
    (data / "notes.txt").write_text("Cu K-alpha\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
    env["MATTERHUB_CONNECT_ALLOWED_ROOTS"] = f'["{root / "incoming"}"]'
    cli = [sys.executable, "-m", "matterhub.cli", "--data-dir", str(root / "hub")]
    init = subprocess.run([*cli, "init"], capture_output=True, text=True, env=env, check=True)
    token = re.search(r"(mh_[0-9a-f]{16}_\S+)", init.stdout)
    assert token, init.stdout
    # `init` created the reserved `curators` role group; an administrator fills it.
    subprocess.run(
        [*cli, "group", "add-member", "curators", "admin"], env=env, check=True, capture_output=True
    )
    port = free_port()
    proc = subprocess.Popen(
        [*cli, "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield base, token.group(1), data
    finally:
        stop(proc)


def client(base: str, token: str) -> object:
    import globus_sdk
    from mdf_connect_client import MDFConnectClient

    mdfcc = MDFConnectClient(authorizer=globus_sdk.AccessTokenAuthorizer(token))
    mdfcc.service_loc = base + "/connect"
    return mdfcc


def wait_status(mdfcc: object, source_id: str, until: str) -> dict:
    for _ in range(600):
        status = mdfcc.check_status(source_id, raw=True)  # type: ignore[attr-defined]
        if status["flow_status"]["status"] != "ACTIVE" or status["status"]["state"] == until:
            return status
        time.sleep(0.1)
    raise AssertionError(f"{source_id} never settled")


def test_submit_status_and_curate_with_the_real_client(hub: tuple[str, str, Path]) -> None:
    base, token, data = hub
    mdfcc = client(base, token)
    mdfcc.create_dc_block(  # type: ignore[attr-defined]
        title="X-ray patterns of copper samples",
        authors=["Ada Lovelace"],
        affiliations=["MatterHub"],
    )
    mdfcc.add_data_source(str(data))  # type: ignore[attr-defined]
    mdfcc.add_tag("xrd")  # type: ignore[attr-defined]
    mdfcc.set_curation(True)  # type: ignore[attr-defined]
    result = mdfcc.submit_dataset()  # type: ignore[attr-defined]
    assert result["success"] is True, result
    source_id = result["source_id"]
    assert source_id == "lovelace_x_ray_samples_v1.0"
    status = wait_status(mdfcc, source_id, "curation")
    assert status["status"]["state"] == "curation"
    assert status["status"]["status_code"][5] == "P"  # waiting at the curation step
    tasks = mdfcc.get_available_curation_tasks(raw=True)  # type: ignore[attr-defined]
    assert [t["source_id"] for t in tasks["curation_tasks"]] == [source_id]
    task = mdfcc.get_curation_task(source_id, raw=True)  # type: ignore[attr-defined]
    assert task["curation_task"]["submission_info"]["submitter"] == "admin"
    verdict = mdfcc.accept_curation_submission(source_id, reason="fine", prompt=False, raw=True)  # type: ignore[attr-defined]
    assert verdict["success"] is True
    status = wait_status(mdfcc, source_id, "succeeded")
    assert status["flow_status"]["status"] == "SUCCEEDED", status["display_status"]
    listed = mdfcc.check_all_submissions(raw=True)  # type: ignore[attr-defined]
    assert [s["source_id"] for s in listed["submissions"]] == [source_id]
    found = httpx.post(
        f"{base}/v1/index/mdf/search",
        json={"q": "mdf.source_name:lovelace_x_ray_samples", "advanced": True},
    ).json()
    assert found["total"] == 3  # the dataset entry and two file records
    again = mdfcc.submit_dataset()  # type: ignore[attr-defined]
    assert again["success"] is False  # resubmitting needs update=True, as in MDF
