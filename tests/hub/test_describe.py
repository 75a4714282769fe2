"""The SDK describers: type hints, requirement detection, model files that are not what they claim."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matterhub.cli.main import app
from matterhub.client.describe import (
    describe_files,
    describe_function,
    describe_keras,
    describe_onnx,
    describe_sklearn,
    detect_requirements,
    type_from_hint,
)
from matterhub.core.errors import InvalidInput
from tests.hub.conftest import import_function, write_module


def test_hints_become_types(tmp_path: Path) -> None:
    path = write_module(
        tmp_path,
        "physics",
        '''
        import datetime as dt

        def gap(composition: str, temperatures: list[float], when: dt.datetime, scale: float = 1.0) -> dict:
            """Band gap per temperature."""
            return {}
    ''',
    )
    description = describe_function(import_function(path, "gap"))
    run = description.run_method
    assert run["input"] == {
        "type": "tuple",
        "element_types": [
            {"type": "string"},
            {"type": "list", "item_type": {"type": "float"}},
            {"type": "datetime"},
        ],
    }
    assert run["output"] == {"type": "dict", "properties": {}}
    assert run["method_details"] == {
        "module": "physics",
        "method_name": "gap",
        "autobatch": False,
        "unpack": True,
    }
    assert run["parameters"] == {"scale": 1.0}
    assert (
        description.document["datacite"]["descriptions"][0]["description"]
        == "Band gap per temperature."
    )
    assert description.document["dlhub"]["dependencies"]["python"] == {}  # stdlib only
    assert type_from_hint(int | None) == {"type": "integer"}
    assert type_from_hint(tuple[int, str]) == {
        "type": "tuple",
        "element_types": [{"type": "integer"}, {"type": "string"}],
    }
    np = pytest.importorskip("numpy")
    assert type_from_hint(np.ndarray) == {"type": "ndarray", "shape": "Any"}


def test_missing_hints_and_unknown_imports_are_refused(tmp_path: Path) -> None:
    path = write_module(tmp_path, "nohint", "def f(x):\n    return x\n")
    with pytest.raises(TypeError, match=r"'x'.*no type hint"):
        describe_function(import_function(path, "f"))
    with pytest.raises(LookupError, match="no_such_module_zz"):
        detect_requirements({"no_such_module_zz", "json"})
    assert detect_requirements({"numpy", "json", "os"}) == {
        "numpy": pytest.importorskip("numpy").__version__
    }


def test_generic_files_and_entry_point(tmp_path: Path) -> None:
    main = write_module(
        tmp_path, "main", "import helper\n\ndef run(x):\n    return helper.twice(x)\n"
    )
    helper = write_module(tmp_path, "helper", "def twice(x):\n    return 2 * x\n")
    description = describe_files(
        "doubler",
        "main:run",
        [main, helper],
        input_type={"type": "integer"},
        output_type={"type": "integer"},
    )
    assert sorted(description.files) == ["helper.py", "main.py"]
    assert description.document["dlhub"]["dependencies"]["python"] == {}  # helper is local
    with pytest.raises(ValueError, match="entry point"):
        describe_files(
            "x",
            "missing:run",
            [helper],
            input_type={"type": "integer"},
            output_type={"type": "integer"},
        )


def test_model_files_that_are_not_what_they_claim(tmp_path: Path) -> None:
    junk = tmp_path / "model.bin"
    junk.write_bytes(b"this is not a model")
    pytest.importorskip("sklearn")
    with pytest.raises(InvalidInput, match="not a pickle file"):
        describe_sklearn(junk, "x")
    pickled_dict = tmp_path / "dict.pkl"
    import pickle

    pickled_dict.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(InvalidInput, match="not a scikit-learn estimator"):
        describe_sklearn(pickled_dict, "x")
    pytest.importorskip("onnx")
    with pytest.raises(InvalidInput, match="not an ONNX model"):
        describe_onnx(junk, "x")
    with pytest.raises(InvalidInput, match="not a Keras model file"):
        describe_keras(junk, "x")


def test_dataset_link_and_client_side_validation(tmp_path: Path) -> None:
    path = write_module(tmp_path, "adder", "def add(x: list[float]) -> float:\n    return sum(x)\n")
    description = describe_function(import_function(path, "add"), "adder")
    description.set_title("Adder").set_creators(["Doe, Jane"]).link_dataset(
        source_id="oqmd_v1.0", doi="10.1/x"
    )
    assert description.document["dlhub"]["training_data"] == {
        "source_id": "oqmd_v1.0",
        "doi": "10.1/x",
    }
    assert (
        description.document["datacite"]["relatedIdentifiers"][0]["relatedIdentifier"] == "10.1/x"
    )
    description.validate()
    with pytest.raises(InvalidInput, match="at input\\[1\\]"):
        description.validate_input([1.0, "two"])


def test_cli_describe_writes_a_bundle_folder(tmp_path: Path) -> None:
    write_module(tmp_path, "adder", "def add(x: list[float]) -> float:\n    return sum(x)\n")
    result = CliRunner().invoke(
        app,
        [
            "servable",
            "describe",
            f"{tmp_path / 'adder.py'}:add",
            "--out",
            str(tmp_path / "bundle"),
            "--title",
            "Adder",
            "--author",
            "Doe, Jane",
            "--example",
            "[1, 2]",
            "--expected",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "bundle" / "dlhub.json").read_text())
    assert document["servable"]["example"] == {"input": [1, 2], "output": 3, "tolerance": 1e-6}
    assert (tmp_path / "bundle" / "adder.py").exists()
    bad = CliRunner().invoke(
        app, ["servable", "describe", "nofunction.py", "--out", str(tmp_path / "b2")]
    )
    assert bad.exit_code == 2
