"""Keras without TensorFlow: the three saved forms described, built and run for real on PyTorch.

One hub (SQLite, served on loopback) and one environment for the whole module: every Keras
servable here declares the same requirements (keras, h5py, torch, numpy), so the first build makes
the environment and the others reuse it. Each form's answers are compared with Keras's own
`predict` on the same model; a model with a TensorFlow-only layer is refused, by the describer
and — for a bundle that skipped it — by the build, naming the layer. The CLI (`--kind keras`) and
`examples/keras_servable.py` run against the same server over HTTP.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import marshal
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # before Keras is first imported

import keras
import numpy as np
import uvicorn
from typer.testing import CliRunner

from matterhub.cli.main import app as cli_app
from matterhub.client import Client
from matterhub.client.describe import describe_keras
from matterhub.client.describe.keras import tensorflow_only
from matterhub.core.errors import InvalidInput
from matterhub.hub import shim
from tests.e2e.test_serve import free_port
from tests.hub.conftest import Hub, hub_settings, start_hub

pytestmark = [
    pytest.mark.timeout(1500),
    # Keras 3.15's torch backend converts variables with np.array(tensor) (not our code).
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
]
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = [[0.1, -0.2, 0.3, 0.4], [1.0, 0.5, -1.5, 2.0], [0.0, 0.0, 0.0, 0.0]]


@pytest.fixture(scope="module")
def keras_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, str]]:
    """The in-process hub, also served over loopback HTTP (for the CLI and the example)."""
    for hub in start_hub(hub_settings(tmp_path_factory.mktemp("keras-hub"))):
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(hub.app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            yield hub, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=20)


def _model() -> Any:
    keras.utils.set_random_seed(3)
    inputs = keras.Input(shape=(4,), name="features")
    hidden = keras.layers.Dense(5, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(hidden), name="tiny")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny model saved in each form, plus a two-input model (a tuple input)."""
    folder = tmp_path_factory.mktemp("keras-models")
    model = _model()
    model.save(folder / "tiny.keras")
    model.save(folder / "tiny.h5")  # Keras 3 still writes the legacy whole-model HDF5
    model.save_weights(folder / "tiny.weights.h5")
    (folder / "tiny.json").write_text(model.to_json())
    left, right = keras.Input(shape=(2,), name="left"), keras.Input(shape=(3,), name="right")
    joined = keras.layers.Concatenate()([left, right])
    pair = keras.Model([left, right], keras.layers.Dense(1)(joined), name="pair")
    pair.save(folder / "pair.keras")
    return {"folder": folder, "model": model, "pair": pair}


def _describe(saved: dict[str, Any], form: str, name: str) -> Any:
    folder = saved["folder"]
    if form == "keras":
        description = describe_keras(folder / "tiny.keras", name)
    elif form == "h5":
        description = describe_keras(folder / "tiny.h5", name)
    else:
        description = describe_keras(folder / "tiny.weights.h5", name, arch=folder / "tiny.json")
    expected = saved["model"].predict(np.asarray(SAMPLE[:1], dtype="float32"), verbose=0)
    description.set_title(f"Tiny Keras ({form})").set_creators(["Doe, Jane"])
    return description.set_example(SAMPLE[:1], expected.tolist(), tolerance=1e-5)


FORMS = ("keras", "h5", "json")


def test_the_describer_reads_shapes_dtypes_and_form_from_each_form(saved: dict[str, Any]) -> None:
    for form in FORMS:
        description = _describe(saved, form, f"tiny-{form}")
        run = description.run_method
        assert run["input"]["shape"] == [None, 4] and run["input"]["item_type"] == {"type": "float"}
        assert run["output"]["shape"] == [None, 2] and run["output"]["item_type"] == {
            "type": "float"
        }
        assert "float32" in run["input"]["description"]
        assert run["method_details"]["format"] == form
        deps = description.document["dlhub"]["dependencies"]["python"]
        assert sorted(deps) == ["h5py", "keras", "numpy", "torch"] and "tensorflow" not in deps
        assert deps["keras"].startswith("3.")
    files = _describe(saved, "json", "x").document["dlhub"]["files"]
    assert files == {"model": "tiny.weights.h5", "arch": "tiny.json"}
    pair = describe_keras(saved["folder"] / "pair.keras", "pair").run_method["input"]
    assert pair["type"] == "tuple"
    assert [e["shape"] for e in pair["element_types"]] == [[None, 2], [None, 3]]


def test_the_describer_refuses_what_it_cannot_run(saved: dict[str, Any], tmp_path: Path) -> None:
    folder = saved["folder"]
    with pytest.raises(InvalidInput, match="holds weights but no architecture: pass its JSON"):
        describe_keras(folder / "tiny.weights.h5", "x")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InvalidInput, match=r"broken\.json is not a JSON file") as caught:
        describe_keras(folder / "tiny.weights.h5", "x", arch=broken)
    assert caught.value.field == "arch"
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(InvalidInput, match="is not a Keras model file"):
        describe_keras(junk, "x")
    other = tmp_path / "other.json"
    other.write_text(saved["pair"].to_json())
    with pytest.raises(InvalidInput, match=r"Keras could not load tiny\.weights\.h5 \(json form\)"):
        describe_keras(folder / "tiny.weights.h5", "x", arch=other)
    arch = tmp_path / "tf.json"
    arch.write_text(json.dumps(_tf_op_config()))
    with pytest.raises(
        InvalidInput, match=r"layer 'tf\.math\.add' \(a TFOpLambda layer\) needs TensorFlow"
    ) as caught:
        describe_keras(folder / "tiny.weights.h5", "x", arch=arch)
    assert caught.value.field == "arch"


def _tf_op_config() -> dict[str, Any]:
    """What Keras 2 saved for `x + 1.0` written as `tf.math.add` in a functional model."""
    return {
        "class_name": "Functional",
        "config": {
            "name": "model",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "name": "features",
                    "config": {
                        "batch_input_shape": [None, 4],
                        "dtype": "float32",
                        "name": "features",
                    },
                    "inbound_nodes": [],
                },
                {
                    "class_name": "TFOpLambda",
                    "name": "tf.math.add",
                    "config": {"name": "tf.math.add", "function": "math.add", "dtype": "float32"},
                    "inbound_nodes": [["features", 0, 0, {"y": 1.0}]],
                },
            ],
            "input_layers": [["features", 0, 0]],
            "output_layers": [["tf.math.add", 0, 0]],
        },
        "keras_version": "2.15.0",
        "backend": "tensorflow",
    }


def _lambda_using_tf() -> dict[str, Any]:
    """A Keras 3 Lambda layer's config whose function calls `tf.abs` (bytecode, as Keras saves)."""

    def absolute(x: Any) -> Any:
        return tf.abs(x)  # type: ignore[name-defined]  # noqa: F821

    code = base64.b64encode(marshal.dumps(absolute.__code__)).decode("ascii")
    return {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {
            "name": "absolute",
            "function": {"class_name": "__lambda__", "config": {"code": code}},
        },
    }


def test_the_shim_and_the_describer_apply_one_rule() -> None:
    clean = json.loads(_model().to_json())
    cases = {
        "clean": clean,
        "tf-op": _tf_op_config(),
        "tf-module": {"class_name": "Dense", "module": "tf_keras.layers", "config": {"name": "d"}},
        "lambda": {"class_name": "Sequential", "config": {"layers": [_lambda_using_tf()]}},
    }
    answers = {k: tensorflow_only(v) for k, v in cases.items()}
    assert answers == {k: shim.tensorflow_only(v) for k, v in cases.items()}
    assert answers["clean"] is None
    assert "layer 'tf.math.add' (a TFOpLambda layer)" in str(answers["tf-op"])
    assert "layer 'd' (from tf_keras.layers)" in str(answers["tf-module"])
    assert "layer 'absolute' (a Lambda whose function uses 'tf')" in str(answers["lambda"])


@pytest.fixture(scope="module")
def published(keras_hub: tuple[Hub, str], saved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each form published as its own servable, plus the two-input model; every build awaited."""
    hub, _ = keras_hub
    client = hub.client("alice")
    queued = {
        f"tiny-{form}": client.publish_servable(_describe(saved, form, f"tiny-{form}"))
        for form in FORMS
    }
    pair = (
        describe_keras(saved["folder"] / "pair.keras", "pair")
        .set_title("Pair")
        .set_creators(["Doe, Jane"])
    )
    queued["pair"] = client.publish_servable(pair)
    start = time.perf_counter()
    builds = {
        n: client.wait_for_build(f"alice/{n}", b["id"], timeout=1200) for n, b in queued.items()
    }
    print(f"\n{len(builds)} Keras builds finished in {time.perf_counter() - start:.1f} s")
    for name, build in builds.items():
        started, finished = (
            dt.datetime.fromisoformat(build[k]) for k in ("started_at", "finished_at")
        )
        print(f"  {name}: {build['status']} in {(finished - started).total_seconds():.1f} s")
    return builds


@pytest.mark.parametrize("form", FORMS)
def test_each_form_is_built_and_answers_as_keras_does(
    keras_hub: tuple[Hub, str], saved: dict[str, Any], published: dict[str, Any], form: str
) -> None:
    hub, _ = keras_hub
    build = published[f"tiny-{form}"]
    assert build["status"] == "succeeded", build["log"]
    assert "the example's output matches the expected output" in build["log"]
    answer = np.asarray(hub.client("alice").run(f"alice/tiny-{form}", SAMPLE))
    expected = saved["model"].predict(np.asarray(SAMPLE, dtype="float32"), verbose=0)
    assert answer.shape == (3, 2)
    np.testing.assert_allclose(answer, expected, rtol=1e-5, atol=1e-6)
    # The environment holds Keras on torch and nothing of TensorFlow.
    spec = hub.services.servables.runtime(
        hub.services.accounts.identity_for("alice"), f"alice/tiny-{form}"
    )
    installed = (spec.python.parent.parent / "requirements.txt").read_text()
    assert "keras==3." in installed and "torch==" in installed and "tensorflow" not in installed


def test_one_environment_serves_every_form(
    keras_hub: tuple[Hub, str], published: dict[str, Any]
) -> None:
    hub, _ = keras_hub
    alice = hub.services.accounts.identity_for("alice")
    hashes = {
        hub.services.servables.runtime(alice, f"alice/{n}").environment_hash for n in published
    }
    assert len(hashes) == 1


def test_a_two_input_model_takes_a_tuple(
    keras_hub: tuple[Hub, str], saved: dict[str, Any], published: dict[str, Any]
) -> None:
    hub, _ = keras_hub
    assert published["pair"]["status"] == "succeeded", published["pair"]["log"]
    left, right = [[1.0, 2.0], [0.5, -0.5]], [[0.1, 0.2, 0.3], [3.0, 2.0, 1.0]]
    answer = np.asarray(hub.client("alice").run("alice/pair", [left, right]))
    expected = saved["pair"].predict(
        [np.asarray(left, "float32"), np.asarray(right, "float32")], verbose=0
    )
    np.testing.assert_allclose(answer, expected, rtol=1e-5, atol=1e-6)


def test_a_tensorflow_only_layer_is_a_clear_build_error(
    keras_hub: tuple[Hub, str], saved: dict[str, Any], published: dict[str, Any]
) -> None:
    """A bundle that never met the describer (raw API, DLHub's SDK) is refused by the build."""
    hub, _ = keras_hub
    document = _describe(saved, "json", "tf-only").to_dict()
    document["servable"]["example"] = {"input": SAMPLE[:1]}
    files = {
        "tiny.weights.h5": (saved["folder"] / "tiny.weights.h5").read_bytes(),
        "tiny.json": json.dumps(_tf_op_config()).encode(),
    }
    client = hub.client("alice")
    queued = client.publish_bundle(document, files)
    build = client.wait_for_build("alice/tf-only", queued["id"], timeout=600)
    assert build["status"] == "failed" and build["step"] == "load"
    assert "layer 'tf.math.add' (a TFOpLambda layer) needs TensorFlow" in build["log"]
    assert "FAILED at load: loading the servable raised NeedsTensorFlow" in build["log"]
    assert "Traceback" not in build["log"]
    versions = client.servable_versions("alice/tf-only")
    assert [v["state"] for v in versions] == ["failed"]


def test_the_cli_describes_and_publishes_kind_keras(
    keras_hub: tuple[Hub, str],
    saved: dict[str, Any],
    published: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub, url = keras_hub
    monkeypatch.setenv("MATTERHUB_CLIENT_CONFIG", str(tmp_path / "client.json"))
    monkeypatch.setenv("MATTERHUB_URL", url)
    monkeypatch.setenv("MATTERHUB_TOKEN", hub.tokens["alice"])
    monkeypatch.setenv("COLUMNS", "200")
    folder = saved["folder"]
    runner = CliRunner()
    expected = saved["model"].predict(np.asarray(SAMPLE[:1], dtype="float32"), verbose=0)
    described = runner.invoke(
        cli_app,
        [
            "servable", "describe", str(folder / "tiny.weights.h5"), "--kind", "keras",
            "--arch", str(folder / "tiny.json"), "--name", "cli-keras", "--out", str(tmp_path / "bundle"),
            "--author", "Doe, Jane", "--example", json.dumps(SAMPLE[:1]),
            "--expected", json.dumps(expected.tolist()),
        ],
    )  # fmt: skip
    assert described.exit_code == 0, described.output
    document = json.loads((tmp_path / "bundle" / "dlhub.json").read_text())
    assert document["dlhub"]["files"] == {"model": "tiny.weights.h5", "arch": "tiny.json"}
    assert document["servable"]["methods"]["run"]["input"]["shape"] == [None, 4]
    # `publish --kind keras` describes and uploads in one go. It talks HTTP to the server: a
    # process of its own, as from a user's terminal.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [
        sys.executable, "-m", "matterhub.cli", "servable", "publish",
        str(folder / "tiny.weights.h5"), "--kind", "keras", "--arch", str(folder / "tiny.json"),
        "--name", "cli-keras", "--author", "Doe, Jane", "--example", json.dumps(SAMPLE[:1]),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"alice/cli-keras \d+: succeeded", done.stdout), done.stdout
    with Client(url, hub.tokens["alice"]) as client:
        answer = np.asarray(client.run("alice/cli-keras", SAMPLE))
    expected = saved["model"].predict(np.asarray(SAMPLE, "float32"), verbose=0)
    np.testing.assert_allclose(answer, expected, rtol=1e-5, atol=1e-6)
    weights_only = [str(folder / "tiny.weights.h5"), "--kind", "keras"]
    refused = runner.invoke(cli_app, ["servable", "publish", *weights_only])
    assert refused.exit_code == 2 and "pass its JSON as arch" in refused.output


def test_the_example_publishes_and_runs_a_keras_model(
    keras_hub: tuple[Hub, str], published: dict[str, Any]
) -> None:
    hub, url = keras_hub
    env = {
        **os.environ,
        "MATTERHUB_URL": url,
        "MATTERHUB_TOKEN": hub.tokens["bob"],
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "keras_servable.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "input  [None, 3] float" in done.stdout
    assert ": succeeded in" in done.stdout
    assert "bob/composition-properties ran on 3 inputs:" in done.stdout
    worst = float(
        done.stdout.rsplit("largest difference from Keras's own predict:", 1)[1].split()[0]
    )
    assert worst < 1e-4
