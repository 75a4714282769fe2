"""Scaling on the Ray executor against a real local Ray: bounds make actors, load adds them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from matterhub.client.describe import describe_function
from tests.hub.conftest import Hub, hub_settings, import_function, start_hub, write_module
from tests.hub.test_scaling import SLOW_SOURCE, _load, _wait_for

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def ray_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub on `ray:local` whose autoscaler looks every 0.1 s and retires after 1 s idle."""
    root = tmp_path_factory.mktemp("rayscale")
    settings = hub_settings(
        root / "hub",
        executor="ray:local",
        hub_autoscale_interval_s=0.1,
        hub_scale_down_idle_s=1.0,
        hub_max_replicas=3,
    )
    for hub in start_hub(settings):
        path = write_module(root / "src" / "slow", "slowmod", SLOW_SOURCE)
        description = describe_function(import_function(path, "slow"), "slow")
        description.set_title("Slow").set_creators(["Doe, Jane"]).set_example(1.0, 1.0)
        description.document["servable"]["options"] = {"memoize": False}
        build = hub.client("alice").publish_servable(description, wait=True, timeout=300)
        assert build["status"] == "succeeded", build["log"]
        yield hub


def _actors(hub: Hub) -> list[dict[str, object]]:
    pools = hub.client("alice").servable_workers("alice/slow")["pools"]
    return list(pools[0]["workers"]) if pools else []


def test_ray_actors_follow_the_bounds_and_the_load(ray_hub: Hub) -> None:
    alice = ray_hub.client("alice")
    view = alice.scale_servable("alice/slow", min_replicas=2, max_replicas=2)
    assert view["executor"] == "ray"
    warm = _wait_for(
        lambda: (
            (a := _actors(ray_hub)) and len(a) == 2 and all(w["state"] == "idle" for w in a) and a
        ),
        120,
        "2 warm actors",
    )
    for actor in warm:  # each actor reports its node, its process and its memory
        assert actor["node"] and isinstance(actor["pid"], int) and actor["memory_bytes"] > 0

    # From one actor, a load of 4 callers with no queue allowed adds the second (the max).
    alice.scale_servable("alice/slow", min_replicas=1, max_replicas=2, target_queue=0.0)
    _wait_for(lambda: len(_actors(ray_hub)) == 1, 30, "retired to 1 actor")
    join = _load(alice, "alice/slow", threads=4, seconds=3.0)
    _wait_for(lambda: len(_actors(ray_hub)) == 2, 30, "2 actors under load")
    outputs = join()
    assert sorted(set(outputs)) == [0.0, 1.0, 2.0, 3.0]
    assert sum(int(str(w["calls"])) for w in _actors(ray_hub)) >= len(outputs) - 1
    # Idle again: back to the minimum after the scale-down delay.
    _wait_for(lambda: len(_actors(ray_hub)) == 1, 30, "back to 1 actor")
