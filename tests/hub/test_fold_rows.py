"""Folding a frame's calls of an array model (`method_details.fold_rows`): their inputs stacked
along the first axis, one model call, each call its own rows back — with the same fallback as a
batch function (anything that does not fit is called one by one, so a bad input fails alone)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from matterhub import Client
from matterhub.client.describe import describe_torch
from matterhub.core.errors import InvalidInput
from matterhub.core.servables import check_document
from matterhub.hub import shim
from tests.hub.conftest import hub_settings, import_function, write_module
from tests.hub.served import Served, serve
from tests.hub.test_batch_functions import _document

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.timeout(900)

NET = """
import torch

class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.layer(x)
"""


class Counting:
    """A stand-in model: rows in, rows out (two outputs), counting its calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        x = np.asarray(inputs, dtype=float)
        self.calls.append(len(x))
        return [x * parameters.get("factor", 2.0), x.sum(axis=1)]


def test_the_calls_are_one_model_call_and_each_gets_its_own_rows() -> None:
    model = Counting()
    many = shim._fold_rows(model)
    inputs = [[[1.0, 2.0]], [[3.0, 4.0], [5.0, 6.0]], [[7.0, 8.0]]]
    answers = many(inputs, {"factor": 3.0})
    assert model.calls == [4]  # one call with the four rows
    for x, answer in zip(inputs, answers, strict=True):
        expected = model(x, {"factor": 3.0})
        assert [a.tolist() for a in answer] == [e.tolist() for e in expected]
    # A dict of outputs and a single output are split the same way.
    as_dict = shim._fold_rows(lambda x, p: {"y": np.asarray(x) + 1})([[[1.0]], [[2.0], [3.0]]], {})
    assert [a["y"].tolist() for a in as_dict] == [[[2.0]], [[3.0], [4.0]]]
    single = shim._fold_rows(lambda x, p: np.asarray(x) * 2)([[[1.0]], [[2.0]]], {})
    assert [a.tolist() for a in single] == [[[2.0]], [[4.0]]]


@pytest.mark.parametrize(
    ("inputs", "model", "reason"),
    [
        ([[[1.0, 2.0]], [[1.0, 2.0, 3.0]]], None, "differ in shape"),
        ([[[1.0]], 2.0], None, "row axis"),
        ([[[1.0]], [["a"]]], None, "numeric"),
        ([[[1.0]], [[2.0]]], lambda x, p: np.asarray(x).mean(axis=0), "one row per input"),
        ([[[1.0]], [[2.0]]], lambda x, p: float(np.sum(x)), "one row per input"),
    ],
)
def test_what_does_not_fit_raises_so_the_worker_calls_one_by_one(
    inputs: list[Any], model: Any, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        shim._fold_rows(model or Counting())(inputs, {})


@pytest.mark.parametrize(
    ("value", "shim_name", "reason"),
    [
        ("yes", "torch.TorchServable", "true or false"),
        (1, "keras.KerasServable", "true or false"),
        (True, None, "model servables"),
    ],
)
def test_the_fold_rows_field_is_checked(
    tmp_path: Path, value: Any, shim_name: str | None, reason: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_document(_document(tmp_path, {"fold_rows": value}, shim_name))
    assert refused.value.field == "servable.methods.run.method_details.fold_rows"
    assert reason in refused.value.detail
    check_document(_document(tmp_path, {"fold_rows": False}))


@pytest.fixture(scope="module")
def torch_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Any]]:
    """A hub with `alice/rows`: a torch Linear(3, 2) declared `fold_rows`; and the model."""
    torch = pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("foldrows")
    source = write_module(root / "src", "rows_net", NET)
    torch.manual_seed(0)
    model = import_function(source, "Net")().eval()
    weights = root / "src" / "rows.pt"
    torch.save(model.state_dict(), weights)
    description = describe_torch(
        # Rows of any width pass validation, so a bad width reaches the worker's stacking.
        weights, "rows", input_shape=[None, None], output_shape=[None, 2],
        module=source, class_name="Net",
    )  # fmt: skip
    description.set_fold_rows()
    assert description.run_method["method_details"]["fold_rows"] is True
    description.set_title("Rows").set_creators(["Doe, Jane"]).set_example([[0.1, 0.2, 0.3]])
    with serve(hub_settings(root / "hub")) as served, served.client("alice") as alice:
        build = alice.publish_servable(description, wait=True, timeout=900)
        assert build["status"] == "succeeded", build["log"]
        yield served, model


@pytest.fixture
def client(torch_hub: tuple[Served, Any]) -> Iterator[Client]:
    with torch_hub[0].client("alice") as alice:
        yield alice


def _local(model: Any, x: Any) -> Any:
    import torch

    with torch.no_grad():
        return model(torch.tensor(x, dtype=torch.float32)).numpy()


def test_a_batch_of_a_fold_rows_model_is_one_model_call(
    torch_hub: tuple[Served, Any], client: Client
) -> None:
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(1 + i % 3, 3)).round(3).tolist() for i in range(12)]
    queued = client.run_batch("alice/rows", inputs)
    done = client.wait_for_batch(queued["batch_id"], timeout=120)
    assert done["counts"] == {"success": 12}
    for task_id, x in zip(queued["task_ids"], inputs, strict=True):
        answer = np.asarray(done["tasks"][task_id]["result"])
        assert answer.shape == (len(x), 2)
        assert np.allclose(answer, _local(torch_hub[1], x), atol=1e-6)
    assert client.get_provenance(queued["task_ids"][0])["timings"]["batched"] == 12


def test_a_bad_input_fails_only_its_own_task(torch_hub: tuple[Served, Any], client: Client) -> None:
    inputs: list[Any] = [[[0.1, 0.2, 0.3]], [[1.0, 2.0]], [[0.5, 0.5, 0.5], [1.0, 0.0, 1.0]]]
    queued = client.run_batch("alice/rows", inputs)
    done = client.wait_for_batch(queued["batch_id"], timeout=120)
    tasks = [done["tasks"][i] for i in queued["task_ids"]]
    assert [t["status"] for t in tasks] == ["success", "failed", "success"]
    assert tasks[1]["exception"]["type"] == "RuntimeError"  # torch's own shape error
    for task, x in ((tasks[0], inputs[0]), (tasks[2], inputs[2])):
        assert np.allclose(np.asarray(task["result"]), _local(torch_hub[1], x), atol=1e-6)
    # The stacking refused the mismatched rows, so each ran alone.
    assert client.get_provenance(queued["task_ids"][0])["timings"].get("batched", 1) == 1


def test_a_binary_batch_sends_and_gets_arrays_as_bytes(
    torch_hub: tuple[Served, Any], client: Client
) -> None:
    rng = np.random.default_rng(1)
    inputs = [rng.normal(size=(1 + i % 2, 3)).astype(np.float32) for i in range(6)]
    done = client.run_batch("alice/rows", inputs, wait=True, timeout=120, binary=True)
    assert done["counts"] == {"success": 6}
    task_ids = list(done["tasks"])
    for task_id, x in zip(task_ids, inputs, strict=True):
        answer = done["tasks"][task_id]["result"]
        # The model's float32 rows come back as a float32 array, not lists of numbers.
        assert isinstance(answer, np.ndarray) and answer.dtype == np.float32
        assert np.allclose(answer, _local(torch_hub[1], x), atol=1e-6)
    # The same records read as JSON give the same float32 numbers as lists (each written as
    # the shortest decimal that reads back as that float32); so does one task's result.
    as_json = client.get_batch_status(done["batch_id"])
    for task_id in task_ids[:2]:
        listed = as_json["tasks"][task_id]["result"]
        assert isinstance(listed, list)
        assert np.array_equal(np.asarray(listed, np.float32), done["tasks"][task_id]["result"])
    one = client.get_result(task_ids[1])
    assert np.array_equal(np.asarray(one, np.float32), done["tasks"][task_ids[1]]["result"])
    assert client.get_provenance(task_ids[0])["timings"]["batched"] == 6


def test_array_inputs_read_back_from_their_rows_give_the_same_answers(
    torch_hub: tuple[Served, Any], client: Client
) -> None:
    """Array inputs are kept in memory from submit to run; when they are not (a restart, or
    another server claims the tasks) they are read back from the task rows: same answers."""
    tasks = torch_hub[0].services.tasks
    rng = np.random.default_rng(2)
    inputs = [rng.normal(size=(1 + i % 2, 3)).astype(np.float32) for i in range(5)]
    kept = client.run_batch("alice/rows", inputs, wait=True, timeout=120, binary=True)
    tasks.stop()  # the tasks are recorded but not run before the "restart"
    try:
        queued = client.run_batch("alice/rows", inputs, binary=True)
        assert set(tasks._kept_inputs(queued["task_ids"])) == set(queued["task_ids"])
    finally:
        tasks.start()  # with nothing kept: every input comes from its row
    stored = client.wait_for_batch(queued["batch_id"], timeout=120, binary=True)
    assert stored["counts"] == {"success": 5}
    for x, first, again in zip(inputs, kept["tasks"], queued["task_ids"], strict=True):
        answer = stored["tasks"][again]["result"]
        assert np.array_equal(answer, kept["tasks"][first]["result"])
        assert np.allclose(answer, _local(torch_hub[1], x), atol=1e-6)
