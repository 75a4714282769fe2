"""`Client.run` with file uploads and binary (.npy / msgpack) bodies, against built servables."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from typer.testing import CliRunner

from matterhub.cli.main import app
from matterhub.client.errors import InvalidInputError
from matterhub.client.run_bodies import MSGPACK, NPY, encode_binary, find_paths
from tests.e2e.test_serve import free_port
from tests.hub.conftest import Hub
from tests.hub.test_run_bodies import body_hub  # noqa: F401  (the module's built servables)

pytestmark = pytest.mark.timeout(300)
runner = CliRunner()


def test_paths_in_inputs_become_upload_parts(tmp_path: Path) -> None:
    one, two = tmp_path / "1.cif", tmp_path / "2.cif"
    inputs, parts = find_paths({"a": one, "rest": [two, "text", 3]})
    assert inputs == {"a": {"upload": "file0"}, "rest": [{"upload": "file1"}, "text", 3]}
    assert parts == {"file0": one, "file1": two}


def test_binary_bodies_pick_npy_for_a_lone_array() -> None:
    content, media, params = encode_binary(
        {"inputs": np.eye(2), "parameters": {"k": 1}, "debug": True, "asynchronous": False}
    )
    assert media == NPY and content.startswith(b"\x93NUMPY")
    assert params == {"debug": "true", "parameters": '{"k": 1}'}
    _, media, params = encode_binary({"inputs": {"x": np.eye(2)}, "parameters": None})
    assert media == MSGPACK and params == {}


def test_file_inputs_are_uploaded(body_hub: Hub, tmp_path: Path) -> None:  # noqa: F811
    client = body_hub.client("bob")
    one = tmp_path / "1.bin"
    one.write_bytes(b"abc")
    two = tmp_path / "2.bin"
    two.write_bytes(b"abcdef")
    alone = client.run("alice/size", one)
    assert alone == {"size": 3, "inside": True, "text": "abc"}
    assert client.run("alice/sizes", [one, two]) == [3, 6]
    named = client.run(
        "alice/sizes", [{"upload": "x"}, {"upload": "y"}], files={"x": two, "y": one}
    )
    assert named == [6, 3]
    assert client.run("alice/size", None, files={"only": str(one)})["size"] == 3
    with pytest.raises(FileNotFoundError, match=r"missing\.bin"):
        client.run("alice/size", tmp_path / "missing.bin")
    with pytest.raises(InvalidInputError):
        client.run("alice/sizes", [{"upload": "nope"}], files={"x": one})


def test_binary_runs_send_and_return_arrays(body_hub: Hub) -> None:  # noqa: F811
    client = body_hub.client("bob")
    matrix = np.arange(6, dtype=np.float64).reshape(2, 3)
    as_npy = client.run("alice/double", matrix, binary=True)
    assert isinstance(as_npy, np.ndarray) and as_npy.dtype == np.float64
    np.testing.assert_array_equal(as_npy, matrix * 2)
    output, meta = client.run("alice/double", matrix, binary=True, debug=True)
    np.testing.assert_array_equal(output, matrix * 2)
    assert isinstance(meta, dict)
    as_json = client.run("alice/double", matrix.tolist())
    assert as_json == (matrix * 2).tolist()
    future = client.run("alice/double", matrix, binary=True, asynchronous=True, timeout=120)
    assert future.result(timeout=120) == (matrix * 2).tolist()
    with pytest.raises(InvalidInputError):
        client.run("alice/double", np.ones(3), binary=True)  # one dimension, two declared


@pytest.fixture
def served(body_hub: Hub) -> Iterator[str]:  # noqa: F811
    """The module's hub on a loopback port, for the CLI."""
    server = uvicorn.Server(
        uvicorn.Config(body_hub.app, host="127.0.0.1", port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=20)


def test_cli_run_with_npy_file_and_uploads(
    served: str,
    body_hub: Hub,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MATTERHUB_CLIENT_CONFIG", str(tmp_path / "client.json"))
    monkeypatch.setenv("MATTERHUB_URL", served)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("MATTERHUB_TOKEN", body_hub.tokens["bob"])
    matrix = tmp_path / "input.npy"
    np.save(matrix, np.array([[1.5, 2.0]]))
    done = runner.invoke(app, ["run", "alice/double", "--file", str(matrix)])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == [[3.0, 4.0]]
    one = tmp_path / "one.txt"
    one.write_text("hello")
    alone = runner.invoke(app, ["run", "alice/size", "--upload", str(one)])
    assert alone.exit_code == 0, alone.output
    assert json.loads(alone.output)["size"] == 5
    named = runner.invoke(
        app,
        ["run", "alice/sizes", "-i", '[{"upload": "a"}, {"upload": "b"}]',
         "-u", f"a={one}", "-u", f"b={matrix}"],
    )  # fmt: skip
    assert named.exit_code == 0, named.output
    assert json.loads(named.output) == [5, matrix.stat().st_size]
    neither = runner.invoke(app, ["run", "alice/size"])
    assert neither.exit_code == 2 and "--upload" in neither.output
    missing = runner.invoke(app, ["run", "alice/size", "-u", str(tmp_path / "gone.txt")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    not_npy = runner.invoke(app, ["run", "alice/double", "--file", str(one)])
    assert not_npy.exit_code == 2 and "not a .npy array" in not_npy.output
