"""The durable job queue and worker, on every catalog backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from matterhub.catalog import Catalog, open_catalog
from matterhub.jobs import Job, JobQueue, JobWorker


@pytest.fixture
def catalog(database_url: str) -> Iterator[Catalog]:
    catalog = open_catalog(database_url, migrate=True)
    yield catalog
    catalog.close()


@pytest.fixture
def queue(catalog: Catalog) -> JobQueue:
    return JobQueue(catalog, lease=timedelta(seconds=30))


def test_jobs_are_claimed_once_in_order(queue: JobQueue) -> None:
    first = queue.enqueue("k", {"n": 1})
    second = queue.enqueue("k", {"n": 2})
    queue.enqueue("other", {"n": 3})
    a = queue.claim(["k"])
    b = queue.claim(["k"])
    assert a is not None and b is not None
    assert (a.id, a.payload, a.attempts) == (first, {"n": 1}, 1)
    assert b.id == second
    assert queue.claim(["k"]) is None  # both taken; "other" is not ours
    queue.complete(a.id, {"ok": True})
    queue.fail(b.id, {"type": "ValueError", "message": "bad"})
    done, failed = queue.get(a.id), queue.get(b.id)
    assert done is not None and done.status == "success" and done.result == {"ok": True}
    assert failed is not None and failed.status == "failed" and failed.error["type"] == "ValueError"
    assert queue.open_payloads("k") == []


def test_concurrent_claims_never_share_a_job(queue: JobQueue) -> None:
    for n in range(40):
        queue.enqueue("k", {"n": n})
    claimed: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        while (job := queue.claim(["k"])) is not None:
            with lock:
                claimed.append(job.payload["n"])

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == list(range(40))


def test_an_expired_lease_lets_another_worker_take_over(catalog: Catalog) -> None:
    queue = JobQueue(catalog, lease=timedelta(seconds=-1))
    job_id = queue.enqueue("k", {})
    first = queue.claim(["k"])
    again = queue.claim(["k"])  # the first holder's lease is already over
    assert first is not None and again is not None
    assert again.id == job_id and again.attempts == 2


def test_recover_requeues_what_a_dead_process_left_running(queue: JobQueue) -> None:
    job_id = queue.enqueue("k", {"n": 1})
    assert queue.claim(["k"]) is not None  # "the process dies" holding it
    assert queue.claim(["k"]) is None
    assert queue.recover(["k"]) == 1
    job = queue.claim(["k"])
    assert job is not None and job.id == job_id and job.attempts == 2


def test_worker_runs_handlers_and_records_failures(queue: JobQueue) -> None:
    seen: list[int] = []

    def handle(job: Job) -> dict[str, int]:
        if job.payload["n"] == 2:
            raise RuntimeError("two is bad")
        seen.append(job.payload["n"])
        return {"double": job.payload["n"] * 2}

    worker = JobWorker(queue, {"k": handle}, threads=2, poll_s=0.05)
    worker.start()
    try:
        ids = [queue.enqueue("k", {"n": n}) for n in range(4)]
        worker.notify()
        deadline = time.monotonic() + 20
        while any(queue.get(i).status in ("received", "running") for i in ids):  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the worker did not finish the jobs"
            time.sleep(0.02)
    finally:
        worker.stop()
    rows = [queue.get(i) for i in ids]
    assert sorted(seen) == [0, 1, 3]
    assert rows[3] is not None and rows[3].result == {"double": 6}
    assert rows[2] is not None and rows[2].status == "failed"
    assert rows[2].error == {"type": "RuntimeError", "message": "two is bad"}
