"""The local executor: warm sandboxed workers, faults contained, the sandbox enforced."""

from __future__ import annotations

import pytest

from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.hub.runtime import RunRequest
from tests.hub.conftest import Hub

pytestmark = pytest.mark.timeout(300)


def run(hub: Hub, x: object, name: str = "alice/acts", **kw: object):
    return hub.services.runs.run(SYSTEM_IDENTITY, name, RunRequest(x, **kw))  # type: ignore[arg-type]


def test_a_warm_worker_answers_and_stays_warm(run_hub: Hub) -> None:
    first = run(run_hub, "pid")
    second = run(run_hub, "pid", parameters={"scale": 1})
    assert first.ok and second.ok, (first.error, second.error)
    assert first.output == second.output  # the same process answered both
    assert run(run_hub, "ab", parameters={"scale": 2}).output == "abab"


def test_a_servable_that_raises_fails_and_its_worker_survives(run_hub: Hub) -> None:
    pid = run(run_hub, "pid").output
    failed = run(run_hub, "raise")
    assert not failed.ok
    assert failed.error is not None
    assert failed.error["type"] == "ValueError"
    assert failed.error["message"] == "asked to raise"
    assert run(run_hub, "pid").output == pid


def test_a_crash_replaces_the_worker_with_a_clear_reason(run_hub: Hub) -> None:
    pid = run(run_hub, "pid").output
    crashed = run(run_hub, "crash")
    assert not crashed.ok and crashed.error is not None
    assert crashed.error["type"] == "WorkerCrashed"
    assert "SIGABRT" in crashed.error["message"]
    again = run(run_hub, "pid")
    assert again.ok and again.output != pid


def test_running_out_of_memory_fails_the_call_and_replaces_the_worker(run_hub: Hub) -> None:
    pid = run(run_hub, "pid").output
    hog = run(run_hub, "oom")
    assert not hog.ok and hog.error is not None
    assert hog.error["type"] in ("MemoryError", "WorkerCrashed")
    assert "memory" in (hog.error["message"] or "").lower() or hog.error["type"] == "MemoryError"
    again = run(run_hub, "pid")
    assert again.ok and again.output != pid  # a fresh worker after the memory error


def test_a_hanging_servable_is_killed_at_its_timeout(run_hub: Hub) -> None:
    import time

    start = time.monotonic()
    hung = run(run_hub, "hang")
    took = time.monotonic() - start
    assert not hung.ok and hung.error is not None
    assert hung.error["type"] == "WorkerTimeout"
    assert "timeout of 3 s" in hung.error["message"]
    assert 2.5 < took < 10
    assert run(run_hub, "ok").output == "ok"


def test_a_busy_loop_is_stopped(run_hub: Hub) -> None:
    spun = run(run_hub, "spin")
    assert not spun.ok and spun.error is not None
    assert spun.error["type"] in ("WorkerTimeout", "WorkerCrashed")


def test_the_sandbox_blocks_the_network_and_writes_outside_the_scratch(
    run_hub: Hub, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert run_hub.services.runs.executor.stats()["sandbox"]["working"] is True
    net = run(run_hub, "net")
    assert not net.ok and net.error is not None
    assert net.error["type"] in ("OSError", "gaierror", "ConnectionError")
    assert "unreachable" in net.error["message"].lower()
    outside = tmp_path_factory.mktemp("outside")
    for target in (
        outside / "escaped.txt",  # host /tmp is not shown (the sandbox has its own)
        run_hub.services.settings.data_dir / "catalog.db.x",  # the data folder is not shown
        "/work/escaped.txt",  # the system is read-only
        "/root/escaped.txt",
        "/usr/escaped.txt",
    ):
        wrote = run(run_hub, f"write:{target}")
        assert not wrote.ok, target
        assert wrote.error is not None and wrote.error["type"] in (
            "OSError",
            "PermissionError",
            "FileNotFoundError",
        ), wrote.error
        assert not (outside / "escaped.txt").exists()
    inside = run(run_hub, "scratch")
    assert inside.ok, inside.error
    assert inside.output == "/tmp"  # its private, size-limited scratch


def test_debug_returns_stdout_and_wall_time(run_hub: Hub) -> None:
    out = run(run_hub, "print", debug=True)
    assert out.ok
    meta = out.metadata()
    assert meta["stdout"] == "hello from the servable\n"
    assert meta["success"] is True and meta["wall_time"] > 0


def test_memoized_results_never_touch_a_worker(run_hub: Hub) -> None:
    first = run(run_hub, "count", name="alice/memo")
    second = run(run_hub, "count", name="alice/memo")
    assert not first.cached and second.cached
    assert first.output == second.output  # a worker would have counted one more
    assert second.provenance["output_hash"] == first.provenance["output_hash"]
    assert (
        run(run_hub, "count", name="alice/memo", parameters={"scale": 2}).cached is False
    )  # parameters count


def test_replicas_idle_eviction_and_the_worker_limit(tmp_path_factory: pytest.TempPathFactory):
    from tests.hub.conftest import hub_settings, running_hub
    from tests.hub.runtime.conftest import publish_acts, publish_noop

    root = tmp_path_factory.mktemp("pool")
    settings = hub_settings(root / "hub", hub_max_workers=1, hub_worker_idle_s=1.0)
    with running_hub(settings) as hub:
        publish_acts(hub, root / "src", replicas=2, memoize=False)
        publish_noop(hub, root / "src")
        executor = hub.services.runs.executor
        assert run(hub, "pid").ok
        assert run(hub, 3, name="alice/noop").output == 3
        stats = executor.stats()["versions"]
        assert sum(v["workers"] for v in stats.values()) == 1  # the LRU idle worker made room
        import time

        time.sleep(2.5)
        stats = executor.stats()["versions"]
        assert sum(v["workers"] for v in stats.values()) == 0  # idle ones were evicted
