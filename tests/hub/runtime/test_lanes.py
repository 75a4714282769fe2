"""Runs awaited on the event loop: shared frames, each caller its own answer and its own faults."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from matterhub.core.identity import ANONYMOUS
from matterhub.hub.runtime import RunOutcome, RunRequest
from matterhub.hub.runtime.local import _Worker
from tests.hub.conftest import Hub

pytestmark = pytest.mark.timeout(300)


def run_all(hub: Hub, requests: list[RunRequest], ref: str = "alice/acts") -> list[RunOutcome]:
    """Run `requests` concurrently through `RunService.run_async` on one event loop."""
    hub.services.runs.resolve(ANONYMOUS, ref)  # kept: the event-loop path, not a thread

    async def main() -> list[RunOutcome]:
        runs = hub.services.runs
        return list(await asyncio.gather(*(runs.run_async(ANONYMOUS, ref, r) for r in requests)))

    return asyncio.run(main())


def frames(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the number of calls in each frame sent from the event loop."""
    sizes: list[int] = []
    original = _Worker.call_async

    async def counting(self: _Worker, calls: Any, debug: bool) -> dict[str, Any]:
        sizes.append(len(calls))
        return await original(self, calls, debug)

    monkeypatch.setattr(_Worker, "call_async", counting)
    return sizes


def test_concurrent_runs_share_frames_each_with_its_own_answer(
    run_hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = frames(monkeypatch)
    outcomes = run_all(run_hub, [RunRequest(f"x{i}") for i in range(20)])
    assert [o.output for o in outcomes] == [f"x{i}" for i in range(20)]
    assert len({o.task_id for o in outcomes}) == 20
    assert sum(sizes) == 20 and len(sizes) < 20  # fewer round trips than calls
    assert all(o.provenance["version_id"] for o in outcomes)  # provenance still recorded


def test_a_crash_in_a_shared_frame_fails_only_its_caller(
    run_hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = frames(monkeypatch)
    requests = [RunRequest(f"ok{i}") for i in range(6)]
    requests.insert(3, RunRequest("crash"))
    outcomes = run_all(run_hub, requests)
    assert sizes[0] == 7  # all in one frame first; the worker died with it
    crashed = outcomes.pop(3)
    assert not crashed.ok and crashed.error is not None
    assert crashed.error["type"] == "WorkerCrashed" and "SIGABRT" in crashed.error["message"]
    assert [o.output for o in outcomes] == [f"ok{i}" for i in range(6)]


def test_a_hang_on_the_event_loop_path_is_killed_at_its_timeout(run_hub: Hub) -> None:
    before = run_all(run_hub, [RunRequest("pid")])[0].output
    start = time.monotonic()
    hung, fine = run_all(run_hub, [RunRequest("hang"), RunRequest("fine")])
    took = time.monotonic() - start
    assert not hung.ok and hung.error is not None
    assert hung.error["type"] == "WorkerTimeout", hung.error
    assert fine.ok and fine.output == "fine"  # re-sent on its own after the shared frame died
    assert took < 3.0 * 2 + 3.0 + 10  # frame deadline (2 calls), then "hang" alone once more
    after = run_all(run_hub, [RunRequest("pid")])[0]
    assert after.ok and after.output != before, after.error  # a fresh worker


def test_debug_runs_get_their_own_frames(run_hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = frames(monkeypatch)
    plain, loud, quiet = run_all(
        run_hub, [RunRequest("print"), RunRequest("print", debug=True), RunRequest("q")]
    )
    assert loud.stdout.strip() == "hello from the servable"
    assert plain.stdout == "" and quiet.output == "q"
    assert sizes == [1, 1, 1]  # plain | debug | plain: a frame never mixes the two


def test_validation_still_happens_on_the_event_loop(run_hub: Hub) -> None:
    from matterhub.core.errors import InvalidInput

    with pytest.raises(InvalidInput, match=r"inputs"):
        run_all(run_hub, [RunRequest(12)])


def test_a_worker_outlives_the_thread_that_started_it(run_hub: Hub) -> None:
    """bwrap dies with the thread that started it (PR_SET_PDEATHSIG), not just the process."""
    import threading

    from matterhub.hub.runtime import Call, LocalExecutor

    executor = run_hub.services.runs.executor
    assert isinstance(executor, LocalExecutor)
    spec = run_hub.services.runs.resolve(ANONYMOUS, "alice/acts").worker
    pool = executor._pool(spec)
    with pool.cond:  # no warm worker: the next run starts one
        idle, pool.idle = pool.idle, []
        pool.count -= len(idle)
    for worker in idle:
        worker.kill()
    first: list[Any] = []
    starter = threading.Thread(target=lambda: first.extend(executor.run(spec, [Call("pid")])))
    starter.start()
    starter.join()
    time.sleep(0.5)  # the starting thread is gone
    again = executor.run(spec, [Call("pid")])[0]
    assert again.ok, again.error
    assert again.output == first[0].output  # the same warm worker
