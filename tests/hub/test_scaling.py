"""Scaling with demand: replica bounds, owners/admins only, the autoscaler, the workers view.

The policy is checked as a pure function; the rest runs a real hub with the local executor and
sandboxed workers, its autoscaler on short intervals (settings) so replicas move in seconds.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from matterhub.client import Client
from matterhub.client.describe import describe_function
from matterhub.client.errors import APIError
from matterhub.core.errors import InvalidInput
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.hub.runtime.autoscale import Autoscaler, Bounds, Observation, ScalingDefaults
from tests.hub.conftest import (
    Hub,
    function_servable,
    hub_settings,
    import_function,
    start_hub,
    write_module,
)

pytestmark = pytest.mark.timeout(300)

SLOW_SOURCE = '''
import os
import time


def slow(x: float) -> float:
    """Wait a fifth of a second (a call that holds its worker), then return the input."""
    time.sleep(0.2)
    return x


def spin(x: float) -> float:
    """Compute for a tenth of a second (a CPU-bound call), then return the input."""
    until = time.perf_counter() + 0.1
    while time.perf_counter() < until:
        pass
    return x
'''


# --- the policy, as a pure function ------------------------------------------------------------


def test_bounds_are_validated_naming_the_field() -> None:
    defaults = ScalingDefaults(max_replicas_cap=4)
    assert defaults.check({"min_replicas": 1, "max_replicas": 4}) == Bounds(1, 4, 1.0)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"min_replicas": 3, "max_replicas": 2}, "min_replicas"),
        ({"max_replicas": 5}, "max_replicas"),
        ({"max_replicas": 0}, "max_replicas"),
        ({"min_replicas": -1}, "min_replicas"),
        ({"min_replicas": 1.5}, "min_replicas"),
        ({"max_replicas": True}, "max_replicas"),
        ({"target_queue": -1}, "target_queue"),
        ({"target_p99_ms": 0}, "target_p99_ms"),
        ({"target_p50_ms": "fast"}, "target_p50_ms"),
        ({"replicas": 2}, "replicas"),
    ]
    for values, field in cases:
        with pytest.raises(InvalidInput) as caught:
            defaults.check(values)
        assert caught.value.field == field, values
    # Layers (document options, then the owner's) are clamped to the cap, not refused.
    clamped = defaults.bounds({"replicas": 9}, {"min_replicas": 6})
    assert (clamped.min_replicas, clamped.max_replicas) == (4, 4)


def test_the_policy_adds_at_once_and_retires_after_the_idle_delay() -> None:
    policy = Autoscaler(scale_down_idle_s=5.0)
    bounds = Bounds(min_replicas=1, max_replicas=4, target_queue=1.0)
    # 6 calls (2 running, 4 waiting) at 2 per replica need 3 replicas: up at once.
    assert policy.decide("v", bounds, Observation(1, 2, 4), now=0.0) == 3
    # Far more than the maximum asks for the maximum.
    assert policy.decide("v", bounds, Observation(3, 3, 40), now=1.0) == 4
    # Idle: kept until the demand has been lower for 5 s, then down to the minimum.
    assert policy.decide("v", bounds, Observation(4, 0, 0), now=2.0) == 4
    assert policy.decide("v", bounds, Observation(4, 0, 0), now=5.9) == 4
    assert policy.decide("v", bounds, Observation(4, 0, 0), now=6.1) == 1
    # A latency goal missed while calls wait asks for one more than there are.
    slow = Bounds(min_replicas=0, max_replicas=4, target_queue=10.0, target_p99_ms=100.0)
    assert policy.decide("w", slow, Observation(2, 2, 1, p50_ms=90, p99_ms=250), now=0.0) == 3
    assert policy.decide("w", slow, Observation(2, 2, 0, p50_ms=90, p99_ms=250), now=0.1) == 2
    # CPU-bound calls on a machine's cores: no more replicas than cores (demand asks for 4);
    # unmeasured, no growth past the cores; I/O-bound or elsewhere (Ray: no cores), uncapped.
    wide = Bounds(min_replicas=0, max_replicas=4, target_queue=1.0)
    assert policy.needed(wide, Observation(2, 2, 6, cpu_bound=True, cores=2)) == 2
    assert policy.needed(wide, Observation(3, 3, 5, cpu_bound=True, cores=2)) == 2
    assert policy.needed(wide, Observation(1, 1, 7, cpu_bound=None, cores=2)) == 2
    assert policy.needed(wide, Observation(3, 3, 5, cpu_bound=None, cores=2)) == 3
    assert policy.needed(wide, Observation(1, 1, 7, cpu_bound=False, cores=2)) == 4
    assert policy.needed(wide, Observation(1, 1, 7, cpu_bound=True, cores=None)) == 4
    assert policy.needed(Bounds(3, 4), Observation(1, 1, 7, cpu_bound=True, cores=2)) == 3
    # Lowered bounds take effect at once.
    assert policy.decide("v", Bounds(0, 2), Observation(4, 0, 0), now=6.2) == 2


# --- bounds and access over the API, on both catalogs ------------------------------------------


def test_owners_and_admins_only_and_bad_bounds_name_the_field(hub: Hub, tmp_path: Path) -> None:
    public = function_servable(tmp_path / "a", "open")
    private = function_servable(tmp_path / "b", "hidden").set_visibility(["user:alice"])
    for description in (public, private):
        build = hub.client("alice").publish_servable(description, wait=True, timeout=300)
        assert build["status"] == "succeeded", build["log"]
    hub.services.accounts.create_user(SYSTEM_IDENTITY, "root", is_admin=True)
    root = hub.make_client(hub.services.accounts.create_token(SYSTEM_IDENTITY, "root").token)

    owner = hub.client("alice")
    view = owner.servable_workers("alice/open")
    assert view["servable"] == "alice/open" and view["executor"] == "local"
    assert view["scaling"] == {} and view["max_replicas_cap"] == 4
    assert view["bounds"]["max_replicas"] == 1  # the hub's default
    done = owner.scale_servable("alice/open", min_replicas=1, max_replicas=3, target_queue=0.5)
    assert done["scaling"] == {"min_replicas": 1, "max_replicas": 3, "target_queue": 0.5}
    assert done["bounds"]["min_replicas"] == 1 and done["bounds"]["max_replicas"] == 3
    assert root.scale_servable("alice/open", max_replicas=2)["bounds"]["max_replicas"] == 2
    assert root.servable_workers("alice/hidden")["servable"] == "alice/hidden"

    # Others: 403 where they can see the servable, 404 where they cannot.
    for who in ("bob", "carol"):
        for call in (
            lambda c: c.servable_workers("alice/open"),
            lambda c: c.scale_servable("alice/open", max_replicas=1),
        ):
            with pytest.raises(APIError) as caught:
                call(hub.client(who))
            assert caught.value.status == 403
        with pytest.raises(APIError) as caught:
            hub.client(who).servable_workers("alice/hidden")
        assert caught.value.status == 404
    with pytest.raises(APIError) as caught:
        hub.client(None).scale_servable("alice/open", max_replicas=1)
    assert caught.value.status in (401, 403)

    # Bad bounds: 422 naming the field; the stored bounds stay as they were.
    bad: list[tuple[dict[str, Any], str]] = [
        ({"min_replicas": 3, "max_replicas": 2}, "min_replicas"),
        ({"max_replicas": 5}, "max_replicas"),  # above the hub's cap of 4
        ({"max_replicas": 0}, "max_replicas"),
        ({"target_queue": -1}, "target_queue"),
        ({"target_p50_ms": -5}, "target_p50_ms"),
        ({"replicas": 2}, "replicas"),
        ({"min_replicas": "two"}, "min_replicas"),
    ]
    for body, field in bad:  # raw bodies: the client's own method would drop unknown fields
        with pytest.raises(APIError) as caught:
            owner._json("PUT", "/api/servables/alice/open/scaling", json=body)
        assert caught.value.status == 422, body
        assert field in f"{caught.value.field} {caught.value.detail}", (body, caught.value)
        assert "Traceback" not in str(caught.value.body)
    assert owner.servable_workers("alice/open")["scaling"] == {"max_replicas": 2}
    with pytest.raises(APIError) as caught:
        owner.servable_workers("alice/nothing")
    assert caught.value.status == 404


# --- the autoscaler under a real load ----------------------------------------------------------


@pytest.fixture(scope="module")
def scaling_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub (SQLite) whose autoscaler looks every 0.1 s and retires after 1 s idle."""
    root = tmp_path_factory.mktemp("scalehub")
    settings = hub_settings(
        root / "hub",
        hub_max_replicas=3,
        hub_autoscale_interval_s=0.1,
        hub_scale_down_idle_s=1.0,
        hub_worker_idle_s=300.0,
        hub_worker_memory_mb=512,
    )
    for hub in start_hub(settings):
        path = write_module(root / "src" / "slow", "slowmod", SLOW_SOURCE)
        for name in ("slow", "spin"):
            description = describe_function(import_function(path, name), name)
            description.set_title(name.title()).set_creators(["Doe, Jane"]).set_example(1.0, 1.0)
            description.document["servable"]["options"] = {"memoize": False}
            build = hub.client("alice").publish_servable(description, wait=True, timeout=300)
            assert build["status"] == "succeeded", build["log"]
        yield hub


def _load(client: Client, ref: str, threads: int, seconds: float) -> Callable[[], list[float]]:
    """Run `ref` from `threads` threads for `seconds`; returns a join giving the outputs."""
    outputs: list[float] = []
    errors: list[BaseException] = []
    stop_at = time.monotonic() + seconds

    def drive(index: int) -> None:
        try:
            while time.monotonic() < stop_at:
                outputs.append(client.run(ref, float(index), timeout=60))
        except BaseException as exc:  # surfaced by the join
            errors.append(exc)

    started = [threading.Thread(target=drive, args=(i,)) for i in range(threads)]
    for thread in started:
        thread.start()

    def join() -> list[float]:
        for thread in started:
            thread.join(timeout=seconds + 120)
        assert not errors, errors[0]
        return outputs

    return join


def _wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def _pool(hub: Hub, ref: str = "alice/slow") -> dict[str, Any] | None:
    pools = hub.client("alice").servable_workers(ref)["pools"]
    return pools[0] if pools else None


def _live(pool: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [w for w in (pool or {}).get("workers", []) if w["state"] != "starting"]


def test_the_autoscaler_adds_replicas_under_load_and_retires_idle_ones(scaling_hub: Hub) -> None:
    alice = scaling_hub.client("alice")
    alice.scale_servable("alice/slow", min_replicas=0, max_replicas=3, target_queue=0.0)
    assert alice.run("alice/slow", 1.0) == 1.0  # the first worker, cold
    join = _load(alice, "alice/slow", threads=6, seconds=4.0)
    busy = _wait_for(
        lambda: (p := _pool(scaling_hub)) and len(_live(p)) == 3 and p, 20, "3 replicas"
    )
    assert busy["target"] == 3 and busy["bounds"]["max_replicas"] == 3
    assert busy["cpu_bound"] is False  # it sleeps: more replicas than cores are fine
    outputs = join()
    assert sorted(set(outputs)) == [float(i) for i in range(6)]

    # The workers view: every worker with its state, calls, latency, memory and pid.
    pool = _pool(scaling_hub)
    assert (
        pool is not None and pool["version"] == alice.servable_versions("alice/slow")[0]["version"]
    )
    workers = _live(pool)
    assert sum(w["calls"] for w in workers) == len(outputs) + 1
    for worker in workers:
        assert worker["state"] in ("idle", "busy")
        assert worker["calls"] > 0
        assert 150 <= worker["p50_ms"] <= worker["p99_ms"] < 10_000
        assert worker["memory_bytes"] > 1024 * 1024 and isinstance(worker["pid"], int)
    assert pool["p50_ms"] >= 150 and pool["p99_ms"] >= pool["p50_ms"]

    # Idle for the scale-down delay: retired to one warm worker (min_replicas is 0; the last
    # one is left to the idle reaper, hub_worker_idle_s).
    idle = _wait_for(lambda: (p := _pool(scaling_hub)) and p["replicas"] == 1 and p, 15, "1 left")
    assert idle["target"] <= 1 and len(_live(idle)) == 1


def test_bounds_set_while_serving_take_effect(scaling_hub: Hub) -> None:
    alice = scaling_hub.client("alice")
    alice.scale_servable("alice/slow", min_replicas=2, max_replicas=3, target_queue=0.0)
    # min_replicas start warm, without a call.
    warm = _wait_for(lambda: (p := _pool(scaling_hub)) and len(_live(p)) == 2 and p, 60, "2 warm")
    assert all(w["state"] == "idle" for w in _live(warm))
    # Stay there when idle (never below the minimum).
    time.sleep(1.5)
    assert len(_live(_pool(scaling_hub))) == 2
    # Lowered to one at most while calls run: no more than one worker serves after that.
    join = _load(alice, "alice/slow", threads=4, seconds=5.0)
    time.sleep(0.5)
    lowered = alice.scale_servable("alice/slow", min_replicas=0, max_replicas=1)
    assert lowered["bounds"]["max_replicas"] == 1
    _wait_for(lambda: (p := _pool(scaling_hub)) and p["replicas"] == 1, 15, "down to 1")
    seen = []
    until = time.monotonic() + 1.0  # the load goes on: the pool stays at one
    while time.monotonic() < until:
        pool = _pool(scaling_hub)
        seen.append((pool["replicas"], len(_live(pool))) if pool else (0, 0))
        time.sleep(0.05)
    assert join()
    assert max(r for r, _ in seen) == 1 and max(w for _, w in seen) == 1


def test_cpu_bound_calls_get_no_more_replicas_than_cores(scaling_hub: Hub) -> None:
    alice = scaling_hub.client("alice")
    cores = len(os.sched_getaffinity(0))
    alice.scale_servable("alice/spin", min_replicas=0, max_replicas=3, target_queue=0.0)
    assert alice.run("alice/spin", 1.0) == 1.0
    join = _load(alice, "alice/spin", threads=6, seconds=4.0)
    measured = _wait_for(
        lambda: (p := _pool(scaling_hub, "alice/spin")) and p["cpu_bound"] is True and p,
        20,
        "measured CPU-bound",
    )
    replicas = []
    until = time.monotonic() + 1.5
    while time.monotonic() < until:
        pool = _pool(scaling_hub, "alice/spin")
        replicas.append(pool["replicas"] if pool else 0)
        time.sleep(0.1)
    assert len(join()) > 6
    assert measured["bounds"]["max_replicas"] == 3
    # Demand asks for 3 (6 callers, no queue allowed); the cores cap it (2 on CI machines).
    assert max(replicas) <= max(1, min(cores, 3)) and min(replicas) >= 1
