"""`matterhub servable workers|scale` over real HTTP: a hub under uvicorn on a loopback port."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from matterhub.api import create_app
from matterhub.cli.main import app
from matterhub.client import Client
from matterhub.settings import Settings
from tests.e2e.test_serve import free_port
from tests.hub.conftest import Hub, function_servable, hub_settings, start_hub

pytestmark = pytest.mark.timeout(300)


@dataclass
class Served:
    """A hub (users alice, bob, carol, dave) served on loopback."""

    base: str
    hub: Hub

    @property
    def tokens(self) -> dict[str, str]:
        return self.hub.tokens

    def client(self, user: str) -> Client:
        return Client(self.base, self.tokens[user], backoff=0, retries=0)


@contextmanager
def serve(settings: Settings) -> Iterator[Served]:
    """`start_hub`'s services and users, served by uvicorn on a free loopback port."""
    for hub in start_hub(settings):
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, services=hub.services),
                host="127.0.0.1",
                port=port,
                log_level="warning",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            yield Served(f"http://127.0.0.1:{port}", hub)
        finally:
            server.should_exit = True
            thread.join(timeout=20)


def test_workers_and_scale_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATTERHUB_CLIENT_CONFIG", str(tmp_path / "cfg" / "client.json"))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    with serve(hub_settings(tmp_path / "hub", hub_max_replicas=3)) as served:
        with served.client("alice") as alice:
            description = function_servable(tmp_path / "src", "adder")
            build = alice.publish_servable(description, wait=True, timeout=300)
            assert build["status"] == "succeeded", build["log"]
            assert alice.run("alice/adder", [1.0, 2.0]) == 3.0
        monkeypatch.setenv("MATTERHUB_URL", served.base)
        monkeypatch.setenv("MATTERHUB_TOKEN", served.tokens["alice"])

        shown = runner.invoke(app, ["servable", "workers", "alice/adder"])
        assert shown.exit_code == 0, shown.output
        assert "bounds: min 0 · max 1 · queue 1.0 (hub cap 3; set: nothing)" in shown.output
        assert "1 replicas (target 1)" in shown.output and "idle" in shown.output

        scaled = runner.invoke(
            app, ["servable", "scale", "alice/adder", "--min", "2", "--max", "3",
                  "--target-p99-ms", "250"],
        )  # fmt: skip
        assert scaled.exit_code == 0, scaled.output
        assert scaled.output.strip() == "alice/adder: min 2 · max 3 · queue 1.0 · p99 250 ms"
        as_json = runner.invoke(app, ["servable", "workers", "alice/adder", "--json"])
        view = json.loads(as_json.output)
        assert view["scaling"] == {"min_replicas": 2, "max_replicas": 3, "target_p99_ms": 250.0}
        (pool,) = view["pools"]
        assert pool["target"] >= 2 and pool["bounds"]["min_replicas"] == 2

        over = runner.invoke(app, ["servable", "scale", "alice/adder", "--max", "9"])
        assert over.exit_code == 2 and "max_replicas 9 is above this hub's cap of 3" in over.output
        crossed = runner.invoke(
            app, ["servable", "scale", "alice/adder", "--min", "3", "--max", "2"]
        )
        assert crossed.exit_code == 2 and "min_replicas 3 is above max_replicas 2" in crossed.output
        assert "Traceback" not in over.output + crossed.output

        monkeypatch.setenv("MATTERHUB_TOKEN", served.tokens["bob"])
        refused = runner.invoke(app, ["servable", "workers", "alice/adder"])
        assert refused.exit_code == 2 and "may not manage this servable" in refused.output
        refused = runner.invoke(app, ["servable", "scale", "alice/adder", "--max", "1"])
        assert refused.exit_code == 2 and "may not manage this servable" in refused.output
