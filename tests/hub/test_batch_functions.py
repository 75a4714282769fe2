"""Vectorized batches: a servable's batch function answers many calls of a frame at once, and a
batch's status can be long-polled (`GET /api/batches/{id}?wait=`)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from matterhub import Client
from matterhub.cli.main import app
from matterhub.client.describe import describe_files, describe_function
from matterhub.client.errors import APIError
from matterhub.core.errors import InvalidInput
from matterhub.core.identity import ANONYMOUS
from matterhub.core.servables import check_document
from matterhub.hub.runtime import RunRequest
from tests.hub.conftest import hub_settings, import_function, write_module
from tests.hub.served import Served, serve

pytestmark = pytest.mark.timeout(300)

# Each answer is [value, how many inputs the call that computed it received]: 1 from the
# per-item function, the list's length from the batch function, so a test sees the folding.
SOURCE = '''
import time


def scale(x: float, factor: float = 2.0, delay: float = 0.0) -> list:
    """x * factor (an error for a negative x)."""
    if x < 0:
        raise ValueError(f"negative input {x}")
    time.sleep(delay)
    return [x * factor, 1]


def scale_many(xs: list, factor: float = 2.0, delay: float = 0.0) -> list:
    """Many at once: one error for the whole list if any is negative."""
    if any(x < 0 for x in xs):
        raise ValueError("a negative input in the batch")
    time.sleep(delay)
    return [[x * factor, len(xs)] for x in xs]


def first_only(xs: list, factor: float = 2.0, delay: float = 0.0) -> list:
    """Answers for the first input only (a wrong length for more)."""
    return [[x * factor, len(xs)] for x in xs[:1]]


def disagrees(xs: list, factor: float = 2.0, delay: float = 0.0) -> list:
    """Answers something else than `scale`."""
    return [[x * factor + 1, len(xs)] for x in xs]
'''


def _publish(client: Client, folder: Path, name: str, batch: str | None) -> dict[str, Any]:
    path = write_module(folder / name, "scaler", SOURCE)
    description = describe_function(import_function(path, "scale"), name, batch_function=batch)
    description.set_title(f"Scaler {name}").set_creators(["Doe, Jane"]).set_example(3.0, [6.0, 1])
    build: dict[str, Any] = client.publish_servable(description, wait=True, timeout=300)
    return build


@pytest.fixture(scope="module")
def batch_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A hub on loopback with `alice/scaler` (batch function `scale_many`) and `alice/short`
    (`first_only`)."""
    root = tmp_path_factory.mktemp("batchfn")
    with serve(hub_settings(root / "hub")) as served, served.client("alice") as alice:
        for name, batch in (("scaler", "scale_many"), ("short", "first_only")):
            build = _publish(alice, root / "src", name, batch)
            assert build["status"] == "succeeded", build["log"]
        yield served


@pytest.fixture
def client(batch_hub: Served) -> Iterator[Client]:
    """alice's client (closed after the test)."""
    with batch_hub.client("alice") as alice:
        yield alice


def _values(status: dict[str, Any], ids: list[str]) -> list[Any]:
    return [status["tasks"][i].get("result") for i in ids]


def test_a_batch_is_answered_by_one_batch_function_call_per_frame(
    batch_hub: Served, client: Client, tmp_path: Path
) -> None:
    xs = [float(i) for i in range(300)]
    queued = client.run_batch("alice/scaler", xs, {"factor": 3.0})
    done = client.wait_for_batch(queued["batch_id"], timeout=120)
    assert done["counts"] == {"success": 300}
    answers = _values(done, queued["task_ids"])
    # The values are the per-item function's, in the order of the inputs.
    scale = import_function(write_module(tmp_path, "scaler", SOURCE), "scale")
    assert [a[0] for a in answers] == [scale(x, factor=3.0)[0] for x in xs]
    # One claim (256 tasks at most) of a servable with a batch function is one frame, answered
    # by one batch call: 256, then the 44 left.
    assert Counter(a[1] for a in answers) == {256: 256, 44: 44}
    provenance = client.get_provenance(queued["task_ids"][0])
    assert provenance["timings"]["batched"] == 256
    assert 0 <= provenance["timings"]["run_s"] < provenance["timings"]["total_s"]
    # A frame of 256 folded calls is not 256 calls' worth of the worker's lifetime CPU budget:
    # the worker stays warm (it was recycled after every such frame once).
    pools = batch_hub.services.runs.executor.stats()["versions"].values()
    assert [pool["restarts"] for pool in pools] == [0]


def test_a_bad_input_fails_only_its_own_task_with_its_own_error(client: Client) -> None:
    queued = client.run_batch("alice/scaler", [1.0, 2.0, -1.0, 4.0])
    done = client.wait_for_batch(queued["batch_id"], timeout=120)
    tasks = [done["tasks"][i] for i in queued["task_ids"]]
    assert [t["status"] for t in tasks] == ["success", "success", "failed", "success"]
    # The per-item function's error, not the batch function's.
    assert tasks[2]["exception"] == {"type": "ValueError", "message": "negative input -1.0"}
    # The batch function raised, so the others ran one by one.
    assert [t.get("result") for t in tasks if t["status"] == "success"] == [
        [2.0, 1], [4.0, 1], [8.0, 1]
    ]  # fmt: skip


def test_a_batch_function_of_the_wrong_length_falls_back_to_one_by_one(client: Client) -> None:
    queued = client.run_batch("alice/short", [1.0, 2.0, 3.0])
    done = client.wait_for_batch(queued["batch_id"], timeout=120)
    assert _values(done, queued["task_ids"]) == [[2.0, 1], [4.0, 1], [6.0, 1]]


def test_different_parameters_and_debug_are_not_folded(client: Client) -> None:
    queued = client.run_batch("alice/scaler", [1.0, 2.0], {"factor": 5.0})
    other = client.run_batch("alice/scaler", [1.0, 2.0], {"factor": 7.0})
    for batch, factor in ((queued, 5.0), (other, 7.0)):
        done = client.wait_for_batch(batch["batch_id"], timeout=120)
        assert [a[0] for a in _values(done, batch["task_ids"])] == [factor, 2 * factor]
        assert all(a[1] in (1, 2) for a in _values(done, batch["task_ids"]))
    debug = client._json(
        "POST", "/api/servables/alice/scaler/batch", json={"inputs": [1.0, 2.0], "debug": True}
    )
    done = client.wait_for_batch(debug["batch_id"], timeout=120)
    assert _values(done, debug["task_ids"]) == [[2.0, 1], [4.0, 1]]


def test_concurrent_sync_runs_in_one_frame_are_folded(batch_hub: Served) -> None:
    runs = batch_hub.services.runs
    runs.resolve(ANONYMOUS, "alice/scaler")  # kept: the event-loop path (lanes)

    async def main() -> list[Any]:
        requests = [RunRequest(float(i), {"delay": 0.05}) for i in range(30)]
        return list(
            await asyncio.gather(*(runs.run_async(ANONYMOUS, "alice/scaler", r) for r in requests))
        )

    outcomes = asyncio.run(main())
    assert all(o.ok for o in outcomes)
    assert [o.output[0] for o in outcomes] == [2.0 * i for i in range(30)]
    sizes = Counter(o.output[1] for o in outcomes)
    # Calls that waited while the worker was busy went together: each frame of n calls was one
    # batch-function call of n inputs (so n outcomes say n).
    assert any(n > 1 for n in sizes)
    assert all(count % n == 0 for n, count in sizes.items())


def test_wait_answers_when_the_batch_is_done_or_the_time_is_up(client: Client) -> None:
    queued = client.run_batch("alice/scaler", [1.0, 2.0], {"delay": 0.3})
    began = time.monotonic()
    done = client.get_batch_status(queued["batch_id"], wait=30)
    assert done["done"] and done["counts"] == {"success": 2}
    assert time.monotonic() - began < 25  # answered when done, not when the wait ran out

    slow = client.run_batch("alice/scaler", [1.0], {"delay": 2.0})
    began = time.monotonic()
    pending = client.get_batch_status(slow["batch_id"], wait=0.5)
    assert not pending["done"]
    assert time.monotonic() - began >= 0.5
    assert client.wait_for_batch(slow["batch_id"], timeout=60)["done"]


def test_the_cli_runs_a_batch_and_waits(
    batch_hub: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    monkeypatch.setenv("MATTERHUB_CLIENT_CONFIG", str(tmp_path / "cfg" / "client.json"))
    monkeypatch.setenv("MATTERHUB_URL", batch_hub.base)
    monkeypatch.setenv("MATTERHUB_TOKEN", batch_hub.tokens["alice"])
    done = CliRunner().invoke(
        app,
        ["run", "alice/scaler", "--batch", "-i", "[10, 20, 30]", "--parameters", '{"factor": 4}'],
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == [[40.0, 3], [80.0, 3], [120.0, 3]]


@pytest.mark.parametrize("wait", ["31", "-1", "nan"])
def test_a_wait_beyond_the_bound_is_refused_naming_wait(client: Client, wait: str) -> None:
    queued = client.run_batch("alice/scaler", [1.0])
    with pytest.raises(APIError) as refused:
        client._json("GET", f"/api/batches/{queued['batch_id']}", params={"wait": wait})
    assert refused.value.status == 400 and refused.value.body["field"] == "wait"


def test_waiting_on_someone_elses_batch_is_not_found(batch_hub: Served, client: Client) -> None:
    queued = client.run_batch("alice/scaler", [1.0])
    with batch_hub.client("carol") as carol, pytest.raises(APIError) as hidden:
        carol.get_batch_status(queued["batch_id"], wait=1)
    assert hidden.value.status == 404


def test_a_batch_function_that_disagrees_fails_the_build(client: Client, tmp_path: Path) -> None:
    build = _publish(client, tmp_path, "wrong", "disagrees")
    assert build["status"] == "failed" and build["step"] == "compare"
    assert "batch function" in build["log"]
    missing = _publish(client, tmp_path, "missing", "no_such_function")
    assert missing["status"] == "failed" and "no_such_function" in missing["log"]


def _document(tmp_path: Path, details: dict[str, Any], shim: str | None = None) -> Any:
    path = write_module(tmp_path / "doc", "scaler", SOURCE)
    described = describe_function(import_function(path, "scale"), detect=False)
    document = described.set_title("Scaler").set_creators(["Doe, Jane"]).document
    document["servable"]["methods"]["run"]["method_details"].update(details)
    if shim:
        document["servable"]["shim"] = shim
    return document


@pytest.mark.parametrize(
    ("details", "shim", "reason"),
    [
        ({"batch_function": "not a name"}, None, "identifier"),
        ({"batch_function": 3}, None, "identifier"),
        ({"batch_function": "g", "autobatch": True}, None, "autobatch"),
        ({"batch_function": "g"}, "sklearn.ScikitLearnServable", "python servable"),
    ],
)
def test_the_batch_function_field_is_checked(
    tmp_path: Path, details: dict[str, Any], shim: str | None, reason: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_document(_document(tmp_path, details, shim))
    assert refused.value.field == "servable.methods.run.method_details.batch_function"
    assert reason in refused.value.detail
    check_document(_document(tmp_path, {"batch_function": "g"}))


def test_the_describers_record_the_batch_function(tmp_path: Path) -> None:
    path = write_module(tmp_path / "d", "scaler", SOURCE)
    module_many = import_function(path, "scale_many")
    described = describe_function(import_function(path, "scale"), batch_function=module_many)
    details = described.document["servable"]["methods"]["run"]["method_details"]
    assert details["batch_function"] == "scale_many"
    files = describe_files(
        "f", "scaler:scale", [path], input_type={"type": "float"},
        output_type={"type": "list", "item_type": {"type": "float"}},
        batch_function="scale_many", detect=False,
    )  # fmt: skip
    assert files.document["servable"]["methods"]["run"]["method_details"]["batch_function"] == (
        "scale_many"
    )
    with pytest.raises(ValueError, match=r"defined in scaler\.py"):
        describe_function(import_function(path, "scale"), batch_function=len)
