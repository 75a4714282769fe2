"""The run API over HTTP: DLHub's route, the envelope, async tasks, batches, rights, restarts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from matterhub.catalog.models import Task
from matterhub.client.errors import APIError
from matterhub.client.runs import RemoteServableError, TaskPending
from matterhub.hub.tasks import TaskService
from tests.hub.conftest import Hub, function_servable, hub_settings, start_hub
from tests.hub.runtime.conftest import publish_acts, publish_noop

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def api_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """Public `alice/noop`, `alice/acts` (no memo) and `alice/private` runnable only by lab."""
    root = tmp_path_factory.mktemp("apihub")
    for hub in start_hub(hub_settings(root / "hub", hub_run_timeout_s=5.0)):
        publish_noop(hub, root / "src")
        publish_acts(hub, root / "src", memoize=False)
        path_hub = root / "src2"
        from matterhub.client.describe import describe_function
        from tests.hub.conftest import import_function, write_module
        from tests.hub.runtime.conftest import NOOP_SOURCE

        module = write_module(path_hub / "private", "noopmod", NOOP_SOURCE)
        description = describe_function(import_function(module, "noop"), "private")
        description.set_title("Private").set_creators(["Doe, Jane"]).set_example(1, 1)
        description.set_visibility(["public"], runnable_by=["group:lab"])
        build = hub.client("alice").publish_servable(description, wait=True, timeout=300)
        assert build["status"] == "succeeded", build["log"]
        yield hub


class Answer:
    """Status and JSON body of a response, error or not."""

    def __init__(self, status_code: int, body: object) -> None:
        self.status_code = status_code
        self.body = body

    def json(self) -> Any:
        return self.body


def post(hub: Hub, path: str, body: dict, user: str | None = None) -> Answer:
    try:
        response = hub.client(user)._request("POST", path, json=body)
    except APIError as exc:
        return Answer(exc.status, exc.body)
    return Answer(response.status_code, response.json())


def test_dlhub_route_returns_the_output_itself(api_hub: Hub) -> None:
    client = api_hub.client()
    response = client._request("POST", "/servables/alice/noop/run", json={"inputs": 41})
    assert response.status_code == 200 and response.json() == 41
    assert response.headers["x-task-id"]
    debug = client._request(
        "POST", "/servables/alice/noop/run", json={"data": 5, "debug": True}
    ).json()
    assert debug[0] == 5 and debug[1]["success"] is True and "wall_time" in debug[1]


def test_api_route_envelope_memo_and_provenance(api_hub: Hub) -> None:
    client = api_hub.client("bob")
    first = client._json("POST", "/api/servables/alice/noop/run", json={"inputs": 7})
    second = client._json("POST", "/api/servables/alice/noop/run", json={"inputs": 7})
    assert first["output"] == 7 and first["status"] == "success" and not first["cached"]
    assert second["cached"] is True
    status = client.get_task_status(first["task_id"])  # may still be in the write-behind buffer
    assert status["status"] == "success" and status["result"] == 7
    provenance = client.get_provenance(first["task_id"])
    described = api_hub.client().describe_servable("alice/noop")
    assert provenance["version"] == described["latest_version"]
    assert provenance["environment_hash"] == described["versions"][0]["environment_hash"]
    assert provenance["input_hash"].startswith("sha256:")
    assert provenance["output_hash"].startswith("sha256:")
    assert provenance["parameters"] == {}
    assert provenance["caller"]["username"] == "bob"
    assert provenance["timings"]["total_s"] > 0
    time.sleep(0.3)  # written by now: read from the catalog
    assert client.get_task_status(first["task_id"])["status"] == "success"
    with pytest.raises(APIError) as other:
        api_hub.client("carol").get_task_status(first["task_id"])
    assert other.value.status == 404  # someone else's task is not even confirmed


def test_client_run_sync_debug_async_and_remote_errors(api_hub: Hub) -> None:
    client = api_hub.client("alice")
    assert client.run("alice/acts", "ab", parameters={"scale": 3}) == "ababab"
    value, meta = client.run("alice/acts", "print", debug=True)
    assert value == "print" and meta["stdout"] == "hello from the servable\n"
    with pytest.raises(RemoteServableError) as raised:
        client.run("alice/acts", "raise")
    assert raised.value.error_type == "ValueError" and raised.value.message == "asked to raise"
    future = client.run("alice/acts", "x", asynchronous=True, timeout=60)
    assert future.result(timeout=60) == "x"
    failing = client.run("alice/acts", "raise", asynchronous=True, timeout=60)
    with pytest.raises(RemoteServableError):
        failing.result(timeout=60)
    status = client.get_task_status(failing.task_id)
    assert status["status"] == "failed"
    assert status["exception"] == {"type": "ValueError", "message": "asked to raise"}


def test_bad_input_is_422_with_the_path(api_hub: Hub) -> None:
    response = post(api_hub, "/api/servables/alice/acts/run", {"inputs": 5})
    assert response.status_code == 422
    assert response.json()["field"] == "inputs"
    assert "expected str" in response.json()["detail"]
    batch = post(api_hub, "/api/servables/alice/noop/batch", {"inputs": [1, 2, "x"]})
    assert batch.status_code == 422 and batch.json()["field"] == "batch[2]"
    unchecked = post(api_hub, "/api/servables/alice/noop/run", {"inputs": "x", "validate": False})
    assert unchecked.status_code == 200 and unchecked.json()["output"] == "x"
    bad_params = post(api_hub, "/api/servables/alice/noop/run", {"inputs": 1, "parameters": 3})
    assert bad_params.status_code == 422 and bad_params.json()["field"] == "parameters"


def test_rights_to_run(api_hub: Hub) -> None:
    assert (
        post(api_hub, "/api/servables/alice/private/run", {"inputs": 1}, "carol").status_code == 403
    )
    assert post(api_hub, "/api/servables/alice/private/run", {"inputs": 1}).status_code == 403
    assert (
        post(api_hub, "/api/servables/alice/private/run", {"inputs": 1}, "bob").status_code == 200
    )
    assert post(api_hub, "/api/servables/alice/nothing/run", {"inputs": 1}).status_code == 404
    batch = post(api_hub, "/api/servables/alice/private/batch", {"inputs": [1]}, "carol")
    assert batch.status_code == 403


def test_a_crashing_servable_fails_the_request_with_424(api_hub: Hub) -> None:
    response = post(api_hub, "/api/servables/alice/acts/run", {"inputs": "crash"})
    assert response.status_code == 424
    assert response.json()["exception"]["type"] == "WorkerCrashed"
    assert post(api_hub, "/api/servables/alice/acts/run", {"inputs": "ok"}).status_code == 200


def test_batch_submit_status_and_results(api_hub: Hub) -> None:
    client = api_hub.client("alice")
    queued = client.run_batch("alice/noop", list(range(50)))
    assert len(queued["task_ids"]) == 50
    done = client.run_batch("alice/noop", list(range(100, 300)), wait=True, timeout=60)
    assert done["done"] and done["counts"] == {"success": 200}
    assert sorted(t["result"] for t in done["tasks"].values()) == list(range(100, 300))
    first = client.get_batch_status(queued["batch_id"])
    assert first["total"] == 50
    with pytest.raises(TaskPending):
        client.get_result(client.run("alice/acts", "hang", asynchronous=True).task_id)


def test_a_batch_on_each_catalog_backend(hub: Hub, tmp_path: Path) -> None:
    """Submit, claim, finish and the batch's answer (each task's output read alone) on SQLite
    and PostgreSQL: outputs exactly as computed, a failed task with its error, provenance."""
    client = hub.client("alice")
    build = client.publish_servable(function_servable(tmp_path, "adder"), wait=True, timeout=300)
    assert build["status"] == "succeeded", build["log"]
    inputs: list[Any] = [[0.1, 0.2], [1.0, 2.0, 3.0], [1e-7, 3e-7], [1.0, "x"]]
    queued = client._json(
        "POST", "/api/servables/alice/adder/batch", json={"inputs": inputs, "validate": False}
    )
    done = client.wait_for_batch(queued["batch_id"], timeout=120)
    assert done["done"] and done["counts"] == {"success": 3, "failed": 1}
    tasks = [done["tasks"][i] for i in queued["task_ids"]]
    # Not rounded on the way (0.1 + 0.2 is 0.30000000000000004 to the last digit).
    assert [t.get("result") for t in tasks[:3]] == [sum(x) for x in inputs[:3]]
    assert tasks[3]["status"] == "failed" and tasks[3]["exception"]["type"] == "TypeError"
    provenance = client.get_provenance(queued["task_ids"][0])
    assert provenance["status"] == "success" and provenance["output_hash"].startswith("sha256:")
    assert provenance["timings"]["queued_s"] >= 0


def test_async_tasks_survive_a_restart(api_hub: Hub) -> None:
    services = api_hub.services
    services.tasks.stop()  # the server stops before running them
    try:
        queued = api_hub.client("alice").run_batch("alice/acts", ["a", "b", "c"])
        ids = queued["task_ids"]
        with services.catalog.transaction() as session:  # one was mid-run when it stopped
            session.execute(update(Task).where(Task.id == ids[0]).values(status="running"))
            session.execute(  # and one has been tried (and crashed) too often already
                update(Task).where(Task.id == ids[1]).values(status="running", attempts=3)
            )
        assert api_hub.client("alice").get_task_status(ids[2])["status"] == "received"
    finally:
        services.tasks = TaskService(services.catalog, services.runs, services.jobs)
        services.tasks.start()
    status = api_hub.client("alice").run_batch  # noqa: F841 - keep the client warm
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = [api_hub.client("alice").get_task_status(i)["status"] for i in ids]
        if all(s in ("success", "failed") for s in states):
            break
        time.sleep(0.2)
    assert states == ["success", "failed", "success"]
    abandoned = api_hub.client("alice").get_task_status(ids[1])["exception"]
    assert abandoned["type"] == "Abandoned" and "3 attempts" in abandoned["message"]
    assert api_hub.client("alice").get_result(ids[0]) == "a"


def test_results_expire(api_hub: Hub) -> None:
    client = api_hub.client("alice")
    answer = client._json("POST", "/api/servables/alice/acts/run", json={"inputs": "exp"})
    time.sleep(0.3)
    with api_hub.services.catalog.transaction() as session:
        from datetime import UTC, datetime, timedelta

        session.execute(
            update(Task)
            .where(Task.id == answer["task_id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with pytest.raises(APIError) as gone:
        client.get_task_status(answer["task_id"])
    assert gone.value.status == 404 and "expired" in gone.value.detail
    assert api_hub.services.tasks.purge() >= 1


def _unused(path: Path) -> None:  # pragma: no cover - keeps Path imported for type hints
    del path
