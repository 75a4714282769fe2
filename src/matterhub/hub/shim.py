"""The servable shim: loads one servable inside its own environment and calls it (stdlib only).

This file is copied into every built environment and run by that environment's interpreter, so it
imports nothing of MatterHub and only the science libraries its servable declared. It loads the
model once, then answers:

- `check FILES_DIR DOCUMENT_JSON` — run the document's example; print one JSON line.
- `serve FILES_DIR DOCUMENT_JSON` — read JSON lines `{"inputs", "parameters", "method"}` from
  stdin and answer each with one JSON line `{"ok", "output" | "error_type", "error"}` (a warm
  worker for the runtime to drive).

Anything the servable prints goes to stderr: stdout carries only the protocol.
"""

from __future__ import annotations

import datetime as dt
import importlib
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


def _python(document: dict[str, Any], files_dir: Path, details: dict[str, Any]) -> Runner:
    module = importlib.import_module(details["module"])
    function = getattr(module, details["method_name"])

    def run(inputs: Any, parameters: dict[str, Any]) -> Any:
        if details.get("unpack"):
            return function(*inputs, **parameters)
        if details.get("autobatch"):
            return [function(x, **parameters) for x in inputs]
        return function(inputs, **parameters)

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


def _keras(document: dict[str, Any], files_dir: Path, details: dict[str, Any]) -> Runner:
    import keras

    model = keras.models.load_model(_model_path(document, files_dir))
    return lambda inputs, parameters: model.predict(_array(inputs), verbose=0, **parameters)


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


LOADERS = {
    "python.PythonStaticMethodServable": _python,
    "sklearn.ScikitLearnServable": _sklearn,
    "torch.TorchServable": _torch,
    "keras.KerasServable": _keras,
    "onnx.ONNXServable": _onnx,
}


def load(document: dict[str, Any], files_dir: Path, method: str = "run") -> Runner:
    """Build the callable for one method of a servable (done once per worker)."""
    sys.path.insert(0, str(files_dir))
    details = document["servable"]["methods"][method].get("method_details") or {}
    return LOADERS[document["servable"]["shim"]](document, files_dir, details)


def jsonable(value: Any) -> Any:
    """Arrays, tensors, numpy scalars, tuples, complex and datetimes → plain JSON values."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if hasattr(value, "tolist"):
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
        "traceback": traceback.format_exc(limit=20),
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
        out.write(json.dumps({"ok": True, "output": output, "load_s": load_s, "run_s": run_s}))
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
