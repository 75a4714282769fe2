"""ConnectClient's less-used MDFConnectClient methods and local-file submissions, in process."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mdf_connect_client import MDFConnectClient
from sqlalchemy import select

from matterhub.bootstrap import Services
from matterhub.catalog.models import Submission
from matterhub.client import Client
from matterhub.client.connect import ConnectClient
from matterhub.client.uploads import PART_BYTES, PART_FILES, in_parts, local_files
from matterhub.core.identity import SYSTEM_IDENTITY
from tests.connect.helpers import data_paths

MakeClient = Callable[..., Client]
ADDED = (
    "add_links", "clear_links", "set_custom_descriptions", "set_update_metadata_only",
    "add_data_destination", "clear_data_destinations", "set_external_uri", "clear_external_uri",
    "create_mrr_block", "set_extraction_config", "submit_dataset_metadata_update",
)  # fmt: skip


def stored_request(services: Services, source_id: str) -> dict[str, Any]:
    """The submission document the hub recorded."""
    with services.catalog.transaction() as session:
        found = session.scalar(select(Submission).where(Submission.source_id == source_id))
        assert found is not None
        return dict(found.request)


@pytest.fixture
def running(services: Services) -> Iterator[Services]:
    """The hub's workers running, so submissions go through the pipeline."""
    services.start()
    yield services
    services.close()


@pytest.fixture
def connect(hub_client: MakeClient, make_user: Callable[..., str]) -> ConnectClient:
    return ConnectClient(hub_client(make_user("dora")))


@pytest.fixture
def local_data(tmp_path: Path) -> Path:
    root = tmp_path / "mine" / "set"
    (root / "sub").mkdir(parents=True)
    (root / "notes.txt").write_text("measured on a Tuesday\n")
    (root / "sub" / "table.csv").write_text("a,b\n1,2\n3,4\n")
    (tmp_path / "mine" / "extra.txt").write_text("one more\n")
    return root


def test_names_and_arguments_match_mdf_connect_client() -> None:
    for name in ADDED:
        ours = inspect.signature(getattr(ConnectClient, name))
        theirs = inspect.signature(getattr(MDFConnectClient, name))
        assert list(ours.parameters) == list(theirs.parameters), name
    ours = inspect.signature(ConnectClient.submit_dataset).parameters
    assert list(ours)[:4] == ["self", "update", "submission", "reset"]


def test_builder_fills_every_block(connect: ConnectClient) -> None:
    connect.create_dc_block(title="Blocks", authors=["Dora Explorer"])
    connect.add_data_source("https://example.org/x.zip")
    connect.add_links({"type": "paper", "doi": "10.1/abc"})
    connect.add_links([{"type": "code", "url": "https://example.org/code"}])
    connect.set_custom_block({"temperature": 300})
    assert connect.set_custom_descriptions({"temperature": "kelvin"}) is None
    assert "invalid" in str(connect.set_custom_descriptions({"x": float("nan")}))
    connect.add_data_destination("globus://endpoint/path")
    connect.add_data_destination(["globus://other/"])
    connect.set_external_uri("https://example.org/landing")
    connect.create_mrr_block({"title": "MRR"})
    assert connect.set_extraction_config({"previews": False}) is None
    assert "invalid" in str(connect.set_extraction_config({"x": float("inf")}))
    sub = connect.get_submission()
    assert len(sub["links"]) == 2 and sub["custom_desc"] == {"temperature": "kelvin"}
    assert sub["data_destinations"] == ["globus://endpoint/path", "globus://other/"]
    assert sub["external_uri"] == "https://example.org/landing" and sub["mrr"]["title"] == "MRR"
    assert sub["extraction_config"] == {"previews": False}
    assert "update_metadata_only" not in sub
    connect.set_update_metadata_only(True)
    assert connect.get_submission()["update_metadata_only"] is True
    connect.clear_links()
    connect.clear_data_destinations()
    connect.clear_external_uri()
    sub = connect.get_submission()
    assert "links" not in sub and "data_destinations" not in sub and "external_uri" not in sub
    connect.reset_submission()
    assert connect.get_submission() == {
        "dc": {},
        "data_sources": [],
        "test": False,
        "update": False,
    }


def test_local_files_are_uploaded_with_the_submission(
    connect: ConnectClient, running: Services, local_data: Path
) -> None:
    connect.create_dc_block(title="Uploaded from my laptop", authors=["Dora Explorer"])
    connect.add_data_source([str(local_data), str(local_data.parent / "extra.txt")])
    connect.set_custom_block({"temperature": 300})
    connect.set_custom_descriptions({"temperature": "kelvin"})
    connect.add_data_destination("globus://endpoint/path")
    connect.set_external_uri("https://example.org/landing")
    result = connect.submit_dataset()
    assert result["success"], result
    sid = result["source_id"]
    status = running.connect.wait(sid)
    assert status["status"]["state"] == "succeeded", status
    assert data_paths(running, sid) == {"set/notes.txt", "set/sub/table.csv", "extra.txt"}
    stored = stored_request(running, sid)
    assert stored["data_destinations"] == ["globus://endpoint/path"]
    assert stored["external_uri"] == "https://example.org/landing"
    assert stored["data_sources"][0].startswith("upload://")
    again = connect.submit_dataset()
    assert again["success"] is False and "update=True" in again["error"]


def test_more_than_one_request_of_files_goes_up_in_parts(
    connect: ConnectClient, running: Services, tmp_path: Path
) -> None:
    root = tmp_path / "many"
    for i in range(PART_FILES + 7):  # one request's worth of files and a few more
        folder = root / f"f{i // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:05d}.txt").write_text(f"{i}\n")
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(PART_BYTES // 2 + 1))  # two of these never share a request
    other = tmp_path / "other.bin"
    other.write_bytes(bytes(PART_BYTES // 2 + 1))
    parts = in_parts(local_files([root, big, other]))
    assert [len(p) for p in parts] == [PART_FILES, 8, 1]  # files in order, never split
    connect.create_dc_block(title="More files than one request takes", authors=["Dora Explorer"])
    connect.add_data_source([str(root), str(big), str(other)])
    result = connect.submit_dataset()
    assert result["success"], result
    status = running.connect.wait(result["source_id"])
    assert status["status"]["state"] == "succeeded", status
    paths = data_paths(running, result["source_id"])
    assert len(paths) == PART_FILES + 9
    assert {"many/f00/00000.txt", "many/f10/01006.txt", "big.bin", "other.bin"} <= paths
    sources = stored_request(running, result["source_id"])["data_sources"]
    assert len(sources) == 3 and all(s.startswith("upload://") for s in sources)


def test_metadata_only_update_uses_the_update_route(
    connect: ConnectClient, running: Services, local_data: Path
) -> None:
    connect.create_dc_block(title="Metadata that will change", authors=["Dora Explorer"])
    connect.add_data_source(str(local_data))
    connect.set_source_name("changing")
    first = connect.submit_dataset()
    assert first["success"], first
    assert running.connect.wait(first["source_id"])["status"]["state"] == "succeeded"
    connect.create_dc_block(title="Metadata, changed", authors=["Dora Explorer"])
    connect.set_update_metadata_only(True)
    updated = connect.submit_dataset(update=True)
    assert updated["success"], updated
    assert updated["source_id"] == "changing_v1.1" == connect.source_id
    assert running.connect.wait("changing_v1.1")["status"]["state"] == "succeeded"
    version = running.datasets.get(SYSTEM_IDENTITY, "changing_v1.1")
    assert version.dc["titles"][0]["title"] == "Metadata, changed"
    assert data_paths(running, "changing_v1.1") == data_paths(running, first["source_id"])
    direct = connect.submit_dataset_metadata_update(
        "changing_v1.1", {**connect.get_submission(), "data_sources": ["x"]}
    )
    assert direct == {
        "success": True,
        "error": None,
        "status_code": 202,
        "source_id": "changing_v1.2",
    }
    stale = connect.submit_dataset_metadata_update("changing_v1.0", {"dc": {}})
    assert stale["success"] is False and stale["status_code"] == 409
    forbidden = connect.submit_dataset_metadata_update("changing_v1.2", {"mdf": {"version": 9}})
    assert forbidden["status_code"] == 422 and "mdf.version" in forbidden["error"]


def test_bad_local_data_is_one_clear_error(
    connect: ConnectClient, tmp_path: Path, local_data: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    connect.create_dc_block(title="Nothing in it", authors=["Dora Explorer"])
    connect.add_data_source(str(empty))
    result = connect.submit_dataset()
    assert result["success"] is False and "no files to upload" in result["error"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("clash")
    with pytest.raises(ValueError, match=r"notes\.txt"):
        local_files([local_data / "notes.txt", tmp_path / "other" / "notes.txt"])
    anonymous = ConnectClient(connect.client.with_token(None))
    anonymous.create_dc_block(title="Anonymous", authors=["Nobody"])
    anonymous.add_data_source(str(local_data))
    refused = anonymous.submit_dataset()
    assert refused["success"] is False and refused["status_code"] == 401
