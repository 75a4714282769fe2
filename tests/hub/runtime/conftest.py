"""Runtime fixtures: one hub per module with a no-op and a misbehaving servable published."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from matterhub.client.describe import describe_function
from tests.hub.conftest import Hub, hub_settings, import_function, running_hub, write_module

# One function whose behaviour its input picks, so one cheap build covers every fault.
ACTS_SOURCE = '''
import os
import socket
import time
import uuid

COUNT = [0]
TOKEN = uuid.uuid4().hex  # one per worker process (pids repeat inside pid namespaces)


def act(x: str, scale: int = 1) -> str:
    """Misbehave as asked: ok, raise, crash, oom, hang, net, write:<path>, print, count, pid."""
    COUNT[0] += 1
    if x == "raise":
        raise ValueError("asked to raise")
    if x == "crash":
        os.abort()
    if x == "oom":
        hog = [bytearray(64 * 1024 * 1024) for _ in range(1000)]
        return str(len(hog))
    if x == "hang":
        time.sleep(3600)
    if x == "spin":
        while True:
            pass
    if x == "net":
        socket.create_connection(("1.1.1.1", 80), timeout=2)
        return "connected"
    if x.startswith("write:"):
        with open(x[6:], "w") as handle:
            handle.write("escaped")
        return "written"
    if x == "scratch":
        with open("note.txt", "w") as handle:
            handle.write("fine")
        return os.getcwd()
    if x == "print":
        print("hello from the servable")
    if x == "count":
        return str(COUNT[0])
    if x == "pid":
        return TOKEN
    return x * scale
'''

NOOP_SOURCE = '''
def noop(x: int) -> int:
    """Return the input."""
    return x
'''


def publish_acts(hub: Hub, folder: Path, name: str = "acts", **options: object) -> None:
    """Publish the misbehaving servable as alice (public, `options` into servable.options)."""
    path = write_module(folder / name, "acts", ACTS_SOURCE)
    description = describe_function(import_function(path, "act"), name)
    description.set_title("Acts").set_creators(["Doe, Jane"]).set_example("ok", "ok")
    if options:
        description.document["servable"]["options"] = dict(options)
    build = hub.client("alice").publish_servable(description, wait=True, timeout=300)
    assert build["status"] == "succeeded", build["log"]


def publish_noop(hub: Hub, folder: Path, name: str = "noop", **options: object) -> None:
    """Publish the no-op servable as alice."""
    path = write_module(folder / name, "noopmod", NOOP_SOURCE)
    description = describe_function(import_function(path, "noop"), name)
    description.set_title("No-op").set_creators(["Doe, Jane"]).set_example(1, 1)
    if options:
        description.document["servable"]["options"] = dict(options)
    build = hub.client("alice").publish_servable(description, wait=True, timeout=300)
    assert build["status"] == "succeeded", build["log"]


@pytest.fixture(scope="module")
def run_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub (SQLite) with `alice/acts` and `alice/noop` built, short run limits."""
    root = tmp_path_factory.mktemp("runhub")
    settings = hub_settings(
        root / "hub", hub_run_timeout_s=3.0, hub_worker_memory_mb=512, hub_results_ttl_s=3600
    )
    with running_hub(settings) as hub:
        publish_acts(hub, root / "src", memoize=False)
        publish_acts(hub, root / "src", "memo")
        publish_noop(hub, root / "src")
        yield hub
