"""Describe saved models: scikit-learn, PyTorch (TorchScript or module + weights), ONNX.

Each describer opens the file with its library to check it is what it claims (a wrong file fails
here, not in the build) and reads what it can: scikit-learn's feature count and classes, ONNX's
graph inputs and outputs (Keras: `describe/keras.py`). Requirements pin the installed versions of
the library and numpy; the library is imported only inside its describer.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matterhub.client.describe.base import ServableDescription
from matterhub.client.describe.requirements import installed_version
from matterhub.core.errors import InvalidInput
from matterhub.core.types import simplify_numpy_dtype

__all__ = ["describe_onnx", "describe_sklearn", "describe_torch"]


def _need(module: str, extra: str = "ml") -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(
            f"describing this model needs {module}: pip install 'matterhub[{extra}]'"
        ) from None


def _pin(description: ServableDescription, *distributions: str) -> None:
    for dist in distributions:
        version = installed_version(dist)
        description.add_requirement(dist, version or "")


def describe_sklearn(
    path: str | Path, name: str, *, serialization_method: str = "pickle", method: str = "predict"
) -> ServableDescription:
    """A pickled (or joblib) scikit-learn estimator: features and classes come from the model."""
    path = Path(path)
    _need("sklearn")
    try:
        if serialization_method == "joblib":
            model = _need("joblib").load(path)
        else:
            with path.open("rb") as handle:
                model = pickle.load(handle)  # the caller's own file, described on their machine
    except Exception as exc:
        raise InvalidInput(
            f"{path} is not a {serialization_method} file: {exc}", field="model"
        ) from None
    if not hasattr(model, method) or not hasattr(model, "get_params"):
        raise InvalidInput(
            f"{path} holds a {type(model).__name__}, not a scikit-learn estimator", field="model"
        )
    n_features = getattr(model, "n_features_in_", None)
    description = ServableDescription(
        name,
        "sklearn.ScikitLearnServable",
        model_type="scikit-learn",
        method_details={"method_name": method, "serialization_method": serialization_method},
    )
    description.document["servable"]["model_summary"] = str(model)
    description.add_file(path, path.name, key="model")
    description.set_inputs(
        {
            "type": "ndarray",
            "shape": [None, n_features] if n_features else "Any",
            "item_type": {"type": "float"},
            "description": f"{n_features or 'N'} features per sample",
        }
    )
    classes = getattr(model, "classes_", None)
    output: dict[str, Any]
    if classes is not None and method == "predict":
        kind = simplify_numpy_dtype(getattr(getattr(classes, "dtype", None), "kind", "O"))
        output = {
            "type": "ndarray",
            "shape": [None],
            "item_type": {"type": kind},
            "description": "class labels: " + ", ".join(str(c) for c in list(classes)[:20]),
        }
        description.document["servable"]["options"] = {"classes": [_plain(c) for c in classes]}
    elif method == "predict_proba":
        output = {"type": "ndarray", "shape": [None, len(classes) if classes is not None else None]}
    else:
        output = {"type": "ndarray", "shape": "Any", "item_type": {"type": "float"}}
    description.set_outputs(output)
    _pin(description, "scikit-learn", "numpy")
    if serialization_method == "joblib":
        _pin(description, "joblib")
    return description


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def describe_torch(
    path: str | Path,
    name: str,
    *,
    input_shape: Sequence[int | None],
    output_shape: Sequence[int | None],
    input_type: str = "float",
    output_type: str = "float",
    module: str | Path | None = None,
    class_name: str | None = None,
    init_kwargs: dict[str, Any] | None = None,
) -> ServableDescription:
    """A TorchScript file, or weights (`state_dict`) plus the module file and class to load them."""
    path = Path(path)
    torch = _need("torch")
    scripted = class_name is None
    try:
        if scripted:
            torch.jit.load(str(path), map_location="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise ValueError("the weights file does not hold a state_dict")
    except Exception as exc:
        what = "TorchScript file" if scripted else "PyTorch state_dict"
        raise InvalidInput(f"{path} is not a {what}: {exc}", field="model") from None
    details: dict[str, Any] = {
        "torchscript": scripted,
        "input_dtype": {"float": "float32", "integer": "int64"}.get(input_type, "float32"),
    }
    if not scripted:
        if module is None:
            raise ValueError("module + weights needs the module file that defines class_name")
        details.update(
            module=Path(module).stem, class_name=class_name, init_kwargs=init_kwargs or {}
        )
    description = ServableDescription(
        name, "torch.TorchServable", model_type="pytorch", method_details=details
    )
    description.add_file(path, path.name, key="model")
    if module is not None:
        description.add_file(module, Path(module).name)
    description.set_inputs(
        {"type": "ndarray", "shape": list(input_shape), "item_type": {"type": input_type}}
    )
    description.set_outputs(
        {"type": "ndarray", "shape": list(output_shape), "item_type": {"type": output_type}}
    )
    _pin(description, "torch", "numpy")
    return description


_ONNX_ELEMENTS = {
    1: "float",
    2: "integer",
    3: "integer",
    5: "integer",
    6: "integer",
    7: "integer",
    9: "boolean",
    10: "float",
    11: "float",
    12: "integer",
    13: "integer",
    8: "string",
}


def describe_onnx(path: str | Path, name: str) -> ServableDescription:
    """An ONNX model: input and output names, shapes and element types from its graph."""
    path = Path(path)
    onnx = _need("onnx")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:
        raise InvalidInput(f"{path} is not an ONNX model: {exc}", field="model") from None
    initialisers = {i.name for i in model.graph.initializer}
    inputs = [_onnx_arg(v) for v in model.graph.input if v.name not in initialisers]
    outputs = [_onnx_arg(v) for v in model.graph.output]
    description = ServableDescription(
        name,
        "onnx.ONNXServable",
        model_type="onnx",
        method_details={
            "input_names": [n for n, _ in inputs],
            "output_names": [n for n, _ in outputs],
        },
    )
    description.add_file(path, path.name, key="model")
    description.set_inputs(_one_or_dict(inputs)).set_outputs(_one_or_dict(outputs))
    description.document["servable"]["model_summary"] = (
        f"ONNX opset {model.opset_import[0].version}, producer {model.producer_name or 'unknown'}"
    )
    _pin(description, "onnxruntime", "numpy")
    return description


def _onnx_arg(value: Any) -> tuple[str, dict[str, Any]]:
    tensor = value.type.tensor_type
    dims = [
        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
        for d in tensor.shape.dim
    ]
    spec = {
        "type": "ndarray",
        "shape": dims or "Any",
        "item_type": {"type": _ONNX_ELEMENTS.get(tensor.elem_type, "float")},
        "description": value.name,
    }
    return value.name, spec


def _one_or_dict(args: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    if len(args) == 1:
        return args[0][1]
    return {"type": "dict", "properties": dict(args)}
