"""The Ray executor against a real local Ray: the same servables, as actors (a few, fast)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.hub.runtime import RunRequest
from tests.hub.conftest import Hub, hub_settings, running_hub
from tests.hub.runtime.conftest import publish_acts, publish_noop

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def ray_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub whose executor is a Ray started for the test (`ray:local`)."""
    root = tmp_path_factory.mktemp("rayhub")
    settings = hub_settings(root / "hub", executor="ray:local", hub_run_timeout_s=3.0)
    with running_hub(settings) as hub:
        publish_acts(hub, root / "src", memoize=False, replicas=2)
        publish_noop(hub, root / "src")
        yield hub


def test_runs_faults_and_batches_on_ray_actors(ray_hub: Hub) -> None:
    runs = ray_hub.services.runs
    assert runs.executor.name == "ray"
    ok = runs.run(SYSTEM_IDENTITY, "alice/acts", RunRequest("ab", {"scale": 2}))
    assert ok.ok and ok.output == "abab" and ok.provenance["executor"] == "ray"
    failed = runs.run(SYSTEM_IDENTITY, "alice/acts", RunRequest("raise"))
    assert failed.error == {
        "type": "ValueError",
        "message": "asked to raise",
        "traceback": failed.error["traceback"] if failed.error else None,
    }
    crashed = runs.run(SYSTEM_IDENTITY, "alice/acts", RunRequest("crash"))
    assert crashed.error is not None and crashed.error["type"] == "WorkerCrashed"
    hung = runs.run(SYSTEM_IDENTITY, "alice/acts", RunRequest("hang"))
    assert hung.error is not None and hung.error["type"] == "WorkerTimeout"
    assert runs.run(SYSTEM_IDENTITY, "alice/acts", RunRequest("ok")).output == "ok"
    assert runs.executor.stats()["versions"]  # actors exist per version
    done = ray_hub.client("alice").run_batch("alice/noop", list(range(40)), wait=True, timeout=120)
    assert done["counts"] == {"success": 40}
    assert sorted(t["result"] for t in done["tasks"].values()) == list(range(40))
