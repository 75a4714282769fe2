"""The servable shim: loads one servable inside its own environment and calls it (stdlib only).

This file is copied into every built environment and run by that environment's interpreter, so it
imports nothing of MatterHub and only the science libraries its servable declared. It loads the
model once, then answers:

- `check FILES_DIR DOCUMENT_JSON` — run the document's example; print one JSON line.
A python servable may declare `method_details.batch_function`: a function of the same module that
takes a list of inputs (and the parameters) and returns a list of outputs, one each. Its runner
then carries it as `runner.batch`, which the warm worker calls once for many calls of a frame.
A model servable (sklearn, torch, Keras, ONNX; one input array) may declare
`method_details.fold_rows: true`: its rows are independent, so the calls of a frame can be
answered by one call on their inputs concatenated along the first axis, each call getting its own
rows of the output back (`_fold_rows`; anything that does not fit raises, and the worker then
makes the calls one by one).

- `serve FILES_DIR DOCUMENT_JSON` — read JSON lines `{"inputs", "parameters", "method"}` from
  stdin and answer each with one JSON line `{"ok", "output" | "error_type", "error"}` (a warm
  worker for the runtime to drive).

Anything the servable prints goes to stderr: stdout carries only the protocol.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

Runner = Callable[[Any, dict[str, Any]], Any]


def _array(value: Any, dtype: Any = None) -> Any:
    import numpy as np

    return np.asarray(value, dtype=dtype)


def _model_path(document: dict[str, Any], files_dir: Path) -> Path:
    model = (document["dlhub"].get("files") or {}).get("model")
    if not isinstance(model, str):
        raise ValueError("dlhub.files.model names no file")
    return files_dir / model


def _fold_rows(run: Runner) -> Callable[[list[Any], dict[str, Any]], list[Any]]:
    """`run.batch` for a model whose output rows are its input rows: one call for many.

    Each input must be one array of at least one dimension, all with the same trailing shape;
    every output array (one, a list or tuple of them, or a dict of them) must have exactly as
    many rows as the inputs together. Anything else raises ValueError (the worker then calls
    one by one, so a bad input fails only its own call).
    """
    import numpy as np

    def run_many(inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        arrays = [np.asarray(x) for x in inputs]
        if not arrays or any(a.ndim < 1 or a.dtype.kind not in "biufc" for a in arrays):
            raise ValueError("fold_rows: every input must be a numeric array with a row axis")
        if len({a.shape[1:] for a in arrays}) != 1:
            raise ValueError("fold_rows: the inputs' rows differ in shape")
        rows = [int(a.shape[0]) for a in arrays]
        out = run(np.concatenate(arrays), parameters)
        cuts = np.cumsum(rows)[:-1]

        def split(value: Any) -> list[Any]:
            if hasattr(value, "detach"):  # a torch tensor
                value = value.detach().cpu().numpy()
            value = np.asarray(value)
            if value.ndim < 1 or value.shape[0] != sum(rows):
                raise ValueError("fold_rows: an output does not have one row per input row")
            return list(np.split(value, cuts))

        if isinstance(out, dict):
            parts = {k: split(v) for k, v in out.items()}
            return [{k: v[i] for k, v in parts.items()} for i in range(len(rows))]
        if isinstance(out, (list, tuple)):
            columns = [split(v) for v in out]
            return [[c[i] for c in columns] for i in range(len(rows))]
        return split(out)

    return run_many


def _python(document: dict[str, Any], files_dir: Path, details: dict[str, Any]) -> Runner:
    module = importlib.import_module(details["module"])
    function = getattr(module, details["method_name"])

    def run(inputs: Any, parameters: dict[str, Any]) -> Any:
        if details.get("unpack"):
            return function(*inputs, **parameters)
        if details.get("autobatch"):
            return [function(x, **parameters) for x in inputs]
        return function(inputs, **parameters)

    if details.get("batch_function"):
        # A missing function fails the load (and so the build), naming it.
        many = getattr(module, details["batch_function"])

        def run_many(inputs: list[Any], parameters: dict[str, Any]) -> Any:
            return many(inputs, **parameters)

        run.batch = run_many  # type: ignore[attr-defined]
    return run


def _sklearn(document: dict[str, Any], files_dir: Path, details: dict[str, Any]) -> Runner:
    path = _model_path(document, files_dir)
    if details.get("serialization_method") == "joblib":
        import joblib

        model = joblib.load(path)
    else:
        import pickle

        with open(path, "rb") as handle:
            model = pickle.load(handle)  # the owner's own model, run in its own sandboxed env
    method = getattr(model, details.get("method_name", "predict"))
    return lambda inputs, parameters: method(_array(inputs), **parameters)


def _torch(document: dict[str, Any], files_dir: Path, details: dict[str, Any]) -> Runner:
    import torch

    path = _model_path(document, files_dir)
    if details.get("torchscript", True):
        model = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    else:
        cls = getattr(importlib.import_module(details["module"]), details["class_name"])
        model = cls(**details.get("init_kwargs", {}))
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    dtype = getattr(torch, details.get("input_dtype", "float32"))

    def run(inputs: Any, parameters: dict[str, Any]) -> Any:
        with torch.no_grad():
            out = model(torch.as_tensor(_array(inputs), dtype=dtype), **parameters)
        return out

    return run


class NeedsTensorFlow(Exception):
    """A Keras model has a layer only TensorFlow can run (the hub runs Keras on PyTorch)."""


# The same rule as the SDK's describer (`client/describe/keras.py`); this file imports nothing of
# ours, so it keeps its own copy and `tests/hub/test_keras.py` holds the two to the same answers.


# Keras 2 wrapped `tf.*` calls, tensor slicing and raw ops in these; TFSMLayer wraps a SavedModel.
_TF_LAYERS = ("TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer", "TFSMLayer")
_TF_MODULES = ("tensorflow", "tf_keras")
_TF_NAMES = {"tf", "tensorflow"}


def _keras_form(document: dict[str, Any], path: Path, details: dict[str, Any]) -> str:
    """`keras` (a .keras zip), `h5` (a whole model) or `json` (architecture + weights).

    Documents without `format` (DLHub's own) name the architecture as `dlhub.files.arch`.
    """
    if details.get("format"):
        return str(details["format"])
    if (document["dlhub"].get("files") or {}).get("arch"):
        return "json"
    return "keras" if path.suffix == ".keras" else "h5"


def _keras_config(form: str, path: Path, arch: Path | None) -> Any:
    """The model's config as saved, read without Keras (to look for TensorFlow-only layers)."""
    if form == "json" and arch is not None:
        return json.loads(arch.read_text())
    if form == "keras":
        import zipfile

        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    import h5py

    with h5py.File(path, "r") as handle:
        text = handle.attrs.get("model_config")
    if text is None:
        raise ValueError(f"{path.name} holds no model config (is it a weights-only file?)")
    return json.loads(text.decode() if isinstance(text, bytes) else text)


def _lambda_names(function: Any) -> set[str]:
    """Global names a serialized Lambda's bytecode uses (empty when it cannot be read here)."""
    import base64
    import marshal
    import types

    code = function
    if isinstance(function, dict):
        code = (function.get("config") or {}).get("code")
    elif isinstance(function, list) and function:
        code = function[0]
    if not isinstance(code, str):
        return set()
    try:
        # The bundle's own bytecode, read in its own sandbox (Keras would unmarshal it anyway).
        stack = [marshal.loads(base64.b64decode(code.encode("ascii")))]
    except Exception:
        return set()
    names: set[str] = set()
    while stack:
        current = stack.pop()
        if isinstance(current, types.CodeType):
            names.update(current.co_names)
            stack += [c for c in current.co_consts if isinstance(c, types.CodeType)]
    return names


def tensorflow_only(config: Any, layer: str = "model") -> str | None:
    """Why a saved Keras config needs TensorFlow (naming the layer), or None."""
    if isinstance(config, list):
        for item in config:
            found = tensorflow_only(item, layer)
            if found:
                return found
        return None
    if not isinstance(config, dict):
        return None
    inner = config.get("config")
    if "class_name" in config and isinstance(inner, dict) and isinstance(inner.get("name"), str):
        layer = inner["name"]
    kind = config.get("class_name")
    why = None
    if kind in _TF_LAYERS:
        why = f"a {kind} layer"
    elif str(config.get("module") or "").split(".")[0] in _TF_MODULES:
        why = f"from {config['module']}"
    elif kind == "Lambda" and isinstance(inner, dict):
        used = sorted(_lambda_names(inner.get("function")) & _TF_NAMES)
        if used:
            why = f"a Lambda whose function uses {used[0]!r}"
    if why:
        return (
            f"layer {layer!r} ({why}) needs TensorFlow; this hub runs Keras on PyTorch without "
            "TensorFlow: rebuild it from Keras layers or keras.ops and save the model again"
        )
    for key, value in config.items():
        if key != "module":
            found = tensorflow_only(value, layer)
            if found:
                return found
    return None


def _keras(document: dict[str, Any], files_dir: Path, details: dict[str, Any]) -> Runner:
    # Keras 3 picks its backend at import; the hub's is PyTorch (no TensorFlow installed).
    os.environ["KERAS_BACKEND"] = "torch"
    path = _model_path(document, files_dir)
    form = _keras_form(document, path, details)
    arch = (document["dlhub"].get("files") or {}).get("arch")
    config = _keras_config(form, path, files_dir / arch if arch else None)
    problem = tensorflow_only(config)
    if problem:
        raise NeedsTensorFlow(problem)
    import keras

    # Lambda layers carry Python bytecode: the owner's own code, run in its own sandbox.
    keras.config.enable_unsafe_deserialization()
    if form == "json":
        if "module" in config:  # Keras 3's to_json()
            model = keras.saving.deserialize_keras_object(config)
        elif config.get("class_name") == "Sequential":  # Keras 2's: the legacy layer configs
            model = keras.Sequential.from_config(config["config"])
        else:
            model = keras.Model.from_config(config["config"])
        # Keras picks the weights reader by the name's ending; the describer kept it right.
        model.load_weights(path)
    else:
        model = keras.models.load_model(path, compile=False, safe_mode=False)
    dtypes = [str(t.dtype) for t in model.inputs]
    by_name = {str(t.name): str(t.dtype) for t in model.inputs}

    def run(inputs: Any, parameters: dict[str, Any]) -> Any:
        if len(dtypes) == 1:
            x: Any = _array(inputs, dtypes[0])
            first = x
        elif isinstance(inputs, dict):
            x = {k: _array(v, by_name.get(k)) for k, v in inputs.items()}
            first = next(iter(x.values()))
        else:
            x = [_array(v, d) for v, d in zip(inputs, dtypes, strict=True)]
            first = x[0]
        rows = first.shape[0] if first.ndim else 1
        # predict() sets up a data pipeline per call (~1 ms); one batch needs none of it.
        if not parameters and rows <= _ONE_BATCH:
            return model.predict_on_batch(x)
        return model.predict(x, verbose=0, **{"batch_size": _ONE_BATCH, **parameters})

    return run


_ONE_BATCH = 1024
_ONNX_DTYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(int64)": "int64"}


def _onnx(document: dict[str, Any], files_dir: Path, details: dict[str, Any]) -> Runner:
    import onnxruntime

    session = onnxruntime.InferenceSession(
        str(_model_path(document, files_dir)), providers=["CPUExecutionProvider"]
    )
    graph_inputs = session.get_inputs()
    names = [o.name for o in session.get_outputs()]

    def run(inputs: Any, parameters: dict[str, Any]) -> Any:
        if len(graph_inputs) == 1:
            values = [inputs]
        elif isinstance(inputs, dict):
            values = [inputs[i.name] for i in graph_inputs]
        else:
            values = list(inputs)
        feed = {
            i.name: _array(v, _ONNX_DTYPES.get(i.type))
            for i, v in zip(graph_inputs, values, strict=True)
        }
        outputs = session.run(None, feed)
        return outputs[0] if len(outputs) == 1 else dict(zip(names, outputs, strict=True))

    return run


_PYTHON = "python.PythonStaticMethodServable"
LOADERS = {
    "python.PythonStaticMethodServable": _python,
    "sklearn.ScikitLearnServable": _sklearn,
    "torch.TorchServable": _torch,
    "keras.KerasServable": _keras,
    "onnx.ONNXServable": _onnx,
}


# Written beside this file by the hub when installed model adapters bring their own loader
# modules (`hub/adapters.py`): {shim: {"module": relative path, "arrays": bool}}.
_ADAPTERS_TABLE = "matterhub_adapters.json"


def _adapters() -> dict[str, Any]:
    try:
        table = json.loads(Path(__file__).with_name(_ADAPTERS_TABLE).read_text())
    except FileNotFoundError:
        return {}
    return table if isinstance(table, dict) else {}


def _adapter_loader(shim: str) -> Callable[[dict[str, Any], Path, dict[str, Any]], Runner]:
    """The `load` of the adapter module this environment holds for `shim`."""
    entry = _adapters().get(shim)
    if not isinstance(entry, dict):
        raise ValueError(f"no model adapter for shim {shim!r} in this environment")
    path = Path(__file__).parent / str(entry["module"])
    spec = importlib.util.spec_from_file_location(f"matterhub_adapter_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"the model adapter for {shim!r} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loader: Callable[[dict[str, Any], Path, dict[str, Any]], Runner] = module.load
    return loader


def takes_arrays(document: dict[str, Any]) -> bool:
    """Whether the servable's inputs reach it as numpy arrays (models) or JSON lists (python)."""
    shim = document["servable"].get("shim")
    if shim in LOADERS:
        return bool(shim != _PYTHON)
    entry = _adapters().get(shim)
    return bool(entry.get("arrays", True)) if isinstance(entry, dict) else True


def load(document: dict[str, Any], files_dir: Path, method: str = "run") -> Runner:
    """Build the callable for one method of a servable (done once per worker)."""
    sys.path.insert(0, str(files_dir))
    details = document["servable"]["methods"][method].get("method_details") or {}
    shim = document["servable"]["shim"]
    loader = LOADERS.get(shim) or _adapter_loader(shim)
    run = loader(document, files_dir, details)
    if details.get("fold_rows") is True and shim != _PYTHON:
        run.batch = _fold_rows(run)  # type: ignore[attr-defined]
    return run


def jsonable(value: Any) -> Any:
    """Arrays, tensors, numpy scalars, tuples, complex and datetimes → plain JSON values."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if hasattr(value, "tolist"):
        if getattr(getattr(value, "dtype", None), "kind", "O") in "biuf":
            # A numeric array: its tolist() is already plain ints, floats and bools (no walk
            # over every element, which cost ~5 µs a number: most of a small model's call).
            return value.tolist()
        return jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, complex):
        return {"real": value.real, "imag": value.imag}
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def _error(step: str, exc: BaseException) -> dict[str, Any]:
    return {
        "ok": False,
        "step": step,
        "error_type": type(exc).__name__,
        "error": str(exc),
        # A refusal that names its reason is not a crash: no traceback to read past.
        "traceback": "" if isinstance(exc, NeedsTensorFlow) else traceback.format_exc(limit=20),
    }


def main(argv: list[str]) -> int:
    """Entry point: `check` or `serve` (see the module docstring)."""
    mode, files_dir, document_path = argv[0], Path(argv[1]), Path(argv[2])
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the servable's own prints go to stderr
    document = json.loads(document_path.read_text())
    start = time.perf_counter()
    try:
        runner = load(document, files_dir)
    except BaseException as exc:
        out.write(json.dumps(_error("load", exc)) + "\n")
        out.flush()
        return 1
    load_s = time.perf_counter() - start
    if mode == "check":
        example = document["servable"].get("example")
        if example is None:
            out.write(json.dumps({"ok": True, "output": None, "load_s": load_s, "run_s": 0.0}))
            out.write("\n")
            out.flush()
            return 0
        start = time.perf_counter()
        try:
            output = jsonable(runner(example.get("input"), example.get("parameters") or {}))
        except BaseException as exc:
            out.write(json.dumps(_error("example", exc)) + "\n")
            return 1
        run_s = time.perf_counter() - start
        reply = {"ok": True, "output": output, "load_s": load_s, "run_s": run_s}
        many = getattr(runner, "batch", None)
        if many is not None:
            try:
                reply["batch_output"] = jsonable(
                    many([example.get("input")], example.get("parameters") or {})
                )
            except BaseException as exc:
                out.write(json.dumps(_error("batch example", exc)) + "\n")
                return 1
        out.write(json.dumps(reply))
        out.write("\n")
        out.flush()
        return 0
    out.write(json.dumps({"ok": True, "ready": True, "load_s": load_s}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            value = runner(request.get("inputs"), request.get("parameters") or {})
            reply = {"ok": True, "output": jsonable(value)}
        except Exception as exc:
            reply = _error("run", exc)
        out.write(json.dumps(reply) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
