"""Done-when: a function, a scikit-learn, a PyTorch and an ONNX model, each built into its own
environment with its requirements, then found by name, author and input type."""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from matterhub.client.describe import (
    ServableDescription,
    describe_function,
    describe_onnx,
    describe_sklearn,
    describe_torch,
)
from tests.hub.conftest import Hub, hub_settings, import_function, start_hub, write_module

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.timeout(1500)
AUTHOR = "Curie, Marie"


@pytest.fixture(scope="module")
def model_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    yield from start_hub(hub_settings(tmp_path_factory.mktemp("models")))


def _function(tmp: Path) -> ServableDescription:
    path = write_module(
        tmp,
        "norms",
        '''
        import numpy as np

        def norm(x: list[float]) -> float:
            """The Euclidean norm."""
            return float(np.linalg.norm(np.asarray(x)))
    ''',
    )
    description = describe_function(import_function(path, "norm"), "vector-norm")
    assert description.document["dlhub"]["dependencies"]["python"] == {"numpy": np.__version__}
    return description.set_example([3.0, 4.0], 5.0)


def _sklearn(tmp: Path) -> ServableDescription:
    linear = pytest.importorskip("sklearn.linear_model")
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 5.0]])
    model = linear.LinearRegression().fit(x, x @ [2.0, -1.0] + 0.5)
    path = tmp / "regressor.pkl"
    path.write_bytes(pickle.dumps(model))
    description = describe_sklearn(path, "linear-gap")
    assert description.run_method["input"]["shape"] == [None, 2]
    return description.set_example(x[:2].tolist(), model.predict(x[:2]).tolist())


def _torch(tmp: Path) -> ServableDescription:
    """Module + weights (TorchScript is deprecated in current torch; the shim loads both)."""
    torch = pytest.importorskip("torch")
    source = write_module(
        tmp,
        "energy_net",
        """
        import torch

        class Net(torch.nn.Module):
            def __init__(self, hidden: int = 4) -> None:
                super().__init__()
                self.layers = torch.nn.Sequential(
                    torch.nn.Linear(3, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)
                )

            def forward(self, x):
                return self.layers(x)
    """,
    )
    torch.manual_seed(0)
    model = import_function(source, "Net")(hidden=4).eval()
    weights = tmp / "energy.pt"
    torch.save(model.state_dict(), weights)
    sample = [[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]]
    with torch.no_grad():
        expected = model(torch.tensor(sample)).tolist()
    description = describe_torch(
        weights,
        "torch-energy",
        input_shape=[None, 3],
        output_shape=[None, 1],
        module=source,
        class_name="Net",
        init_kwargs={"hidden": 4},
    )
    assert (
        description.document["dlhub"]["dependencies"]["python"]["torch"]
        == torch.__version__.split("+")[0]
    )
    return description.set_example(sample, expected, tolerance=1e-5)


def _onnx(tmp: Path) -> ServableDescription:
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper
    weights = np.array([[1.0, 0.5], [-1.0, 2.0], [0.25, 0.0]], dtype=np.float32)
    bias = np.array([0.1, -0.2], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["XW"]),
            helper.make_node("Add", ["XW", "B"], ["Y"]),
        ],
        "affine",
        [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, ["batch", 2])],
        [onnx.numpy_helper.from_array(weights, "W"), onnx.numpy_helper.from_array(bias, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp / "affine.onnx"
    onnx.save(model, str(path))
    description = describe_onnx(path, "onnx-affine")
    assert description.run_method["input"]["shape"] == [None, 3]
    assert description.run_method["output"]["shape"] == [None, 2]
    sample = [[1.0, 2.0, 3.0]]
    return description.set_example(
        sample, (np.array(sample, dtype=np.float32) @ weights + bias).tolist()
    )


MAKERS = {
    "vector-norm": _function,
    "linear-gap": _sklearn,
    "torch-energy": _torch,
    "onnx-affine": _onnx,
}


@pytest.fixture(scope="module")
def published(model_hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Publish all four, then wait for every build (they queue on one worker)."""
    client = model_hub.client("alice")
    queued = {}
    for name, make in MAKERS.items():
        description = make(tmp_path_factory.mktemp(name)).set_title(name).set_creators([AUTHOR])
        queued[name] = client.publish_servable(description)
    builds = {}
    start = time.perf_counter()
    for name, build in queued.items():
        builds[name] = client.wait_for_build(f"alice/{name}", build["id"], timeout=1200)
    print(f"\nfour builds finished in {time.perf_counter() - start:.1f} s")
    for name, build in builds.items():
        took = (build["finished_at"], build["started_at"])
        print(f"  {name}: {build['status']} ({took})")
    return builds


@pytest.mark.parametrize("name", list(MAKERS))
def test_each_model_builds_in_its_own_environment(
    model_hub: Hub, published: dict, name: str
) -> None:
    build = published[name]
    assert build["status"] == "succeeded", build["log"]
    assert "the example's output matches the expected output" in build["log"]
    spec = model_hub.services.servables.runtime(
        model_hub.services.accounts.identity_for("alice"), f"alice/{name}"
    )
    installed = (spec.python.parent.parent / "requirements.txt").read_text().split()
    declared = model_hub.client().describe_servable(f"alice/{name}")["document"]["dlhub"][
        "dependencies"
    ]["python"]
    assert sorted(installed) == sorted(f"{k}=={v}" for k, v in declared.items())


def test_environments_are_isolated(model_hub: Hub, published: dict) -> None:
    alice = model_hub.services.accounts.identity_for("alice")
    hashes = {
        n: model_hub.services.servables.runtime(alice, f"alice/{n}").environment_hash
        for n in MAKERS
    }
    assert len(set(hashes.values())) == 4
    import subprocess

    def importable(name: str, module: str) -> bool:
        python = model_hub.services.servables.runtime(alice, f"alice/{name}").python
        return (
            subprocess.run([str(python), "-c", f"import {module}"], capture_output=True).returncode
            == 0
        )

    assert importable("linear-gap", "sklearn") and not importable("linear-gap", "torch")
    assert importable("torch-energy", "torch") and not importable("torch-energy", "sklearn")
    assert importable("onnx-affine", "onnxruntime") and not importable("onnx-affine", "sklearn")
    assert not importable("vector-norm", "fastapi")  # nothing of the server leaks in


def test_found_by_name_author_and_input_type(model_hub: Hub, published: dict) -> None:
    client = model_hub.client()
    for name in MAKERS:
        assert [d["dlhub"]["name"] for d in client.search_by_servable(name)] == [name]
    assert sorted(d["dlhub"]["name"] for d in client.search_by_authors(AUTHOR, limit=10)) == sorted(
        MAKERS
    )
    arrays = sorted(d["dlhub"]["name"] for d in client.search_by_input_type("ndarray"))
    assert arrays == ["linear-gap", "onnx-affine", "torch-energy"]
    assert [d["dlhub"]["name"] for d in client.search_by_input_type("list")] == ["vector-norm"]
    assert [d["dlhub"]["name"] for d in client.search("onnx-affine")] == ["onnx-affine"]
