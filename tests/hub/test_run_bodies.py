"""File inputs (uploads, URLs behind the SSRF guard) and msgpack / .npy run bodies."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from matterhub.client.describe import describe_function
from matterhub.client.errors import APIError
from tests.hub.conftest import Hub, hub_settings, import_function, start_hub, write_module

pytestmark = pytest.mark.timeout(300)

SOURCE = '''
import os


def size(path: str) -> dict:
    """The size of a file given as a path, and whether it lies in the worker's scratch."""
    if not os.path.exists(path):
        return {"size": -1, "inside": False, "text": ""}
    with open(path, "rb") as handle:
        data = handle.read()
    inside = os.path.abspath(path).startswith(os.getcwd() + os.sep)
    return {"size": len(data), "inside": inside, "text": data[:20].decode(errors="replace")}


def sizes(paths: list) -> list:
    """The sizes of several files."""
    return [size(p)["size"] for p in paths]


def double(x: list) -> list:
    """Twice a matrix (nested lists: the environment has no numpy)."""
    return [[2 * v for v in row] for row in x]
'''
MATRIX = {"type": "ndarray", "shape": [None, None], "item_type": {"type": "float"}}


def publish(
    hub: Hub,
    folder: Path,
    function: str,
    input_type: dict,
    output_type: dict,
    example: Any,
    expected: Any,
) -> None:
    """Publish one function of SOURCE with its declared types."""
    path = write_module(folder / function, "bodies", SOURCE)
    description = describe_function(import_function(path, function), function)
    run = description.document["servable"]["methods"]["run"]
    run["input"], run["output"] = input_type, output_type
    description.set_title(function).set_creators(["Doe, Jane"]).set_example(example, expected)
    build = hub.client("alice").publish_servable(description, wait=True, timeout=300)
    assert build["status"] == "succeeded", build["log"]


@pytest.fixture(scope="module")
def body_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """`alice/size` (a file), `alice/sizes` (a list of files), `alice/double` (a matrix)."""
    root = tmp_path_factory.mktemp("bodyhub")
    for hub in start_hub(hub_settings(root / "hub")):
        gone = {"size": -1, "inside": False, "text": ""}
        publish(
            hub,
            root / "src",
            "size",
            {"type": "file"},
            {"type": "dict", "properties": {}},
            "missing.txt",
            gone,
        )
        publish(
            hub,
            root / "src",
            "sizes",
            {"type": "list", "item_type": {"type": "file"}},
            {"type": "list", "item_type": {"type": "integer"}},
            ["a", "b"],
            [-1, -1],
        )
        publish(hub, root / "src", "double", MATRIX, MATRIX, [[1.0]], [[2.0]])
        yield hub


class _Files(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/hop":
            self.send_response(302)
            self.send_header("Location", "/data/report.txt")
            self.end_headers()
            return
        body = b"x" * 5000 if self.path == "/big.bin" else b"from a url"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def file_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def call(hub: Hub, path: str, user: str | None = "bob", **kwargs: Any) -> Any:
    """POST and return the response, or the APIError's status and body."""
    try:
        return hub.client(user)._request("POST", path, **kwargs)
    except APIError as exc:
        return exc


def test_a_file_upload_reaches_the_servable_inside_its_scratch(body_hub: Hub) -> None:
    alone = call(body_hub, "/api/servables/alice/size/run", files={"f": ("a.txt", b"hello")})
    assert alone.json()["output"] == {"size": 5, "inside": True, "text": "hello"}
    named = call(
        body_hub,
        "/servables/alice/sizes/run",
        data={"request": '{"inputs": [{"upload": "one"}, {"upload": "two"}]}'},
        files=[("one", ("1.bin", b"abc")), ("two", ("2.bin", b"abcdef"))],
    )
    assert named.json() == [3, 6]
    again = call(body_hub, "/api/servables/alice/size/run", files={"g": ("a.txt", b"hello")})
    assert again.json()["cached"] is True  # the same content: the same staged file and hash
    missing = call(
        body_hub,
        "/api/servables/alice/size/run",
        data={"request": '{"inputs": {"upload": "nope"}}'},
        files={"f": ("a.txt", b"x")},
    )
    assert missing.status == 422 and missing.field == "inputs"
    forged = call(body_hub, "/api/servables/alice/size/run", json={"inputs": {"$file": "/etc"}})
    assert forged.status == 422


def test_url_inputs_are_guarded_limited_and_fetched(body_hub: Hub, file_server: str) -> None:
    files = body_hub.services.runs.files
    assert files is not None
    url = f"{file_server}/data/report.txt"
    refused = call(body_hub, "/api/servables/alice/size/run", json={"inputs": {"url": url}})
    assert refused.status == 422 and "private address" in refused.detail
    bad_scheme = {"inputs": {"url": "file:///etc/passwd"}}
    assert call(body_hub, "/api/servables/alice/size/run", json=bad_scheme).status == 422
    files.allow_private = True  # what MATTERHUB_CONNECT_ALLOW_PRIVATE_URLS=true sets
    try:
        fetched = call(body_hub, "/api/servables/alice/size/run", json={"inputs": {"url": url}})
        assert fetched.json()["output"] == {"size": 10, "inside": True, "text": "from a url"}
        hop = call(
            body_hub,
            "/api/servables/alice/size/run",
            json={"inputs": {"url": f"{file_server}/hop"}},
        )
        assert hop.json()["output"]["text"] == "from a url"
        files.max_bytes = 1000
        big = {"inputs": {"url": f"{file_server}/big.bin"}}
        too_big = call(body_hub, "/api/servables/alice/size/run", json=big)
        assert too_big.status == 413
        task = body_hub.client("bob").run("alice/size", {"url": url}, asynchronous=True)
        assert task.result(timeout=60)["size"] == 10  # staged before the 202
    finally:
        files.allow_private, files.max_bytes = False, 256 * 1024**2


def _typed(array: np.ndarray) -> dict[str, Any]:
    return {
        "__ndarray__": {
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "data": array.tobytes(),
        }
    }


def test_msgpack_bodies_with_typed_arrays(body_hub: Hub) -> None:
    matrix = np.arange(6, dtype=np.float64).reshape(2, 3)
    packed = msgpack.packb({"inputs": _typed(matrix)}, use_bin_type=True)
    headers = {"Content-Type": "application/msgpack", "Accept": "application/msgpack"}
    response = call(body_hub, "/api/servables/alice/double/run", content=packed, headers=headers)
    assert response.headers["content-type"] == "application/msgpack"
    body = msgpack.unpackb(response.content, raw=False)
    out = body["output"]["__ndarray__"]
    got = np.frombuffer(out["data"], dtype=out["dtype"]).reshape(out["shape"])
    assert np.array_equal(got, matrix * 2) and body["status"] == "success"
    as_json = call(
        body_hub,
        "/servables/alice/double/run",
        content=packed,
        headers={"Content-Type": "application/msgpack"},
    )
    assert as_json.json() == (matrix * 2).tolist()
    b64 = {
        "inputs": {
            "__ndarray__": {
                "dtype": "<f8",
                "shape": [1, 2],
                "data": base64.b64encode(np.ones(2).tobytes()).decode(),
            }
        }
    }
    assert call(body_hub, "/servables/alice/double/run", json=b64).json() == [[2.0, 2.0]]
    wrong = msgpack.packb({"inputs": _typed(np.ones(3))}, use_bin_type=True)
    bad = call(
        body_hub,
        "/api/servables/alice/double/run",
        content=wrong,
        headers={"Content-Type": "application/msgpack"},
    )
    assert bad.status == 422 and bad.field == "inputs"


def test_npy_bodies(body_hub: Hub) -> None:
    matrix = np.linspace(0, 1, 12).reshape(3, 4)
    buffer = io.BytesIO()
    np.save(buffer, matrix)
    headers = {"Content-Type": "application/x-npy", "Accept": "application/x-npy"}
    response = call(
        body_hub,
        "/api/servables/alice/double/run?debug=false",
        content=buffer.getvalue(),
        headers=headers,
    )
    assert response.headers["content-type"] == "application/x-npy"
    assert response.headers["x-task-id"]
    assert np.allclose(np.load(io.BytesIO(response.content)), matrix * 2)
    queued = call(
        body_hub,
        "/api/servables/alice/double/run?asynchronous=true",
        content=buffer.getvalue(),
        headers={"Content-Type": "application/x-npy"},
    )
    task_id = queued.json()["task_id"]
    future_result = body_hub.client("bob").get_task_status(task_id)
    assert future_result["status"] in ("received", "running", "success")
    unsupported = call(
        body_hub,
        "/api/servables/alice/double/run",
        content=b"x",
        headers={"Content-Type": "text/csv"},
    )
    assert unsupported.status == 415
    garbage = call(
        body_hub,
        "/api/servables/alice/double/run",
        content=b"nope",
        headers={"Content-Type": "application/x-npy"},
    )
    assert garbage.status == 422 and garbage.field == "body"
