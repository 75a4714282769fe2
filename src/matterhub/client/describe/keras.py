"""Describe Keras models in the three forms it saves: `.keras`, whole-model `.h5`, JSON + weights.

The hub runs Keras 3 on its PyTorch backend, so neither describing nor running a model needs
TensorFlow. The describer reads the saved config first without Keras (to name any layer only
TensorFlow can run, before anything else), then loads the model with Keras — which proves the
weights fit the architecture — and reads each input's and output's shape and dtype from it.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import marshal
import os
import sys
import tempfile
import types
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matterhub.client.describe.base import ServableDescription
from matterhub.client.describe.requirements import installed_version
from matterhub.core.errors import InvalidInput

__all__ = ["describe_keras", "tensorflow_only"]

_HDF5 = b"\x89HDF\r\n\x1a\n"
# Keras 2 wrapped `tf.*` calls, tensor slicing and raw ops in these; TFSMLayer wraps a SavedModel.
_TF_LAYERS = ("TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer", "TFSMLayer")
_TF_MODULES = ("tensorflow", "tf_keras")
_TF_NAMES = {"tf", "tensorflow"}


def describe_keras(
    path: str | Path,
    name: str,
    *,
    arch: str | Path | None = None,
    output_shape: Sequence[int | None] | None = None,
) -> ServableDescription:
    """A Keras model: a `.keras` file, a whole-model `.h5`, or weights plus `arch` (its JSON).

    Args:
        path: the `.keras` file, the whole-model HDF5 file, or (with `arch`) the weights file
            (`model.save_weights(...)`, Keras 3 `.weights.h5` or a Keras 2 HDF5).
        arch: the architecture JSON (`model.to_json()`), as DLHub's `KerasModel(arch_path=...)`.
        output_shape: overrides the output shape read from the model.

    Raises:
        InvalidInput: the file is not a Keras model, a layer needs TensorFlow, or the weights do
            not fit the architecture (the message says which).
    """
    path = Path(path)
    form, config = _saved_config(path, Path(arch) if arch else None)
    problem = tensorflow_only(config)
    if problem:
        raise InvalidInput(problem, field="arch" if arch else "model")
    model = _load(form, path, config)
    inputs = [_argument(t) for t in _tensors(model, "inputs")]
    outputs = [_argument(t) for t in _tensors(model, "outputs")]
    if output_shape is not None and len(outputs) <= 1:
        outputs = [{**(outputs or [{"type": "ndarray"}])[0], "shape": list(output_shape)}]
    description = ServableDescription(
        name,
        "keras.KerasServable",
        model_type="keras",
        method_details={"method_name": "predict", "format": form},
    )
    description.add_file(path, _bundle_name(form, path), key="model")
    if arch is not None:
        description.add_file(arch, Path(arch).name, key="arch")
    description.set_inputs(_one_or_tuple(inputs)).set_outputs(_one_or_tuple(outputs))
    description.document["servable"]["model_summary"] = _summary(model, form)
    # Keras on PyTorch: torch is the backend the environment runs it with (never TensorFlow).
    for dist in ("keras", "h5py", "torch", "numpy"):
        version = installed_version(dist)
        description.add_requirement(dist, (version or "").split("+")[0])
    return description


def _saved_config(path: Path, arch: Path | None) -> tuple[str, dict[str, Any]]:
    """(`keras` | `h5` | `json`, the model's config as saved), read without Keras."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_HDF5))
        if arch is not None:
            if head != _HDF5:
                raise ValueError("weights saved by Keras are an HDF5 file, and this is not one")
            return "json", _architecture(arch)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return "keras", json.loads(archive.read("config.json"))
        if head == _HDF5:
            h5py = _need("h5py")
            with h5py.File(path, "r") as handle:
                text = handle.attrs.get("model_config")
            if text is None:
                raise InvalidInput(
                    f"{path} holds weights but no architecture: pass its JSON as arch",
                    field="model",
                )
            return "h5", json.loads(text.decode() if isinstance(text, bytes) else text)
        raise ValueError("it is neither a .keras archive nor an HDF5 file")
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise InvalidInput(f"{path} is not a Keras model file: {exc}", field="model") from None


def _architecture(arch: Path) -> dict[str, Any]:
    """The architecture JSON (`model.to_json()`, Keras 2 or 3)."""
    try:
        config = json.loads(arch.read_text())
    except (ValueError, OSError) as exc:
        raise InvalidInput(f"{arch} is not a JSON file: {exc}", field="arch") from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise InvalidInput(f"{arch} is not a Keras architecture JSON", field="arch")
    return config


def _keras() -> Any:
    """Keras, on PyTorch unless the caller already chose a backend (or imported Keras)."""
    chosen = "keras" in sys.modules or os.environ.get("KERAS_BACKEND")
    if not chosen and importlib.util.find_spec("torch") is not None:
        os.environ["KERAS_BACKEND"] = "torch"
    return _need("keras")


def _need(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(
            f"describing a Keras model needs {module}: pip install 'matterhub[ml]' torch"
        ) from None


def _load(form: str, path: Path, config: dict[str, Any]) -> Any:
    """The model, loaded as the hub's shim loads it (so a file that fails here fails now)."""
    keras = _keras()
    scratch = tempfile.TemporaryDirectory(prefix="matterhub-keras-")
    try:
        # Lambda layers carry Python bytecode: the caller's own model, on their own machine.
        if form != "json":
            target = _named(path, {"keras": ".keras", "h5": ".h5"}[form], Path(scratch.name))
            return keras.models.load_model(target, compile=False, safe_mode=False)
        if "module" in config:  # Keras 3's to_json()
            model = keras.saving.deserialize_keras_object(config, safe_mode=False)
        else:  # Keras 2's: the legacy layer configs
            from keras.src.saving.serialization_lib import SafeModeScope

            cls = keras.Sequential if config.get("class_name") == "Sequential" else keras.Model
            with SafeModeScope(False):
                model = cls.from_config(config["config"])
        model.load_weights(_named(path, _weights_suffix(path), Path(scratch.name)))
        return model
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(
            f"Keras could not load {path.name} ({form} form): {type(exc).__name__}: {exc}",
            field="model",
        ) from None
    finally:
        scratch.cleanup()


def _weights_suffix(path: Path) -> str:
    """`.weights.h5` for Keras 3 weights, `.h5` for Keras 2's (Keras reads by the name's end)."""
    h5py = _need("h5py")
    with h5py.File(path, "r") as handle:
        legacy = "layer_names" in handle.attrs or "model_weights" in handle
    return ".h5" if legacy else ".weights.h5"


def _ends(name: str, suffix: str) -> bool:
    if suffix == ".h5":  # a whole model or Keras 2 weights: .h5 or .hdf5, not Keras 3's ending
        return name.endswith((".h5", ".hdf5")) and not name.endswith(".weights.h5")
    return name.endswith(suffix)


def _bundle_name(form: str, path: Path) -> str:
    """The file's name in the bundle, ending as Keras expects for its form."""
    suffix = {"keras": ".keras", "h5": ".h5"}.get(form) or _weights_suffix(path)
    if _ends(path.name, suffix):
        return path.name
    stem = path.name
    for ending in (".weights.h5", ".h5", ".hdf5", ".keras"):
        stem = stem.removesuffix(ending)
    return stem + suffix


def _named(path: Path, suffix: str, scratch: Path) -> Path:
    """`path`, or a link to it whose name ends in `suffix` (Keras picks its reader by name)."""
    if _ends(path.name, suffix):
        return path
    link = scratch / f"model{suffix}"
    link.symlink_to(path.resolve())
    return link


def _tensors(model: Any, which: str) -> list[Any]:
    try:
        return list(getattr(model, which))
    except (AttributeError, ValueError):  # a model never built: Keras knows no shapes
        return []


def _argument(tensor: Any) -> dict[str, Any]:
    shape = [d if isinstance(d, int) and d > 0 else None for d in tuple(tensor.shape)]
    dtype = str(getattr(tensor, "dtype", "float32"))
    kind = (
        "boolean"
        if dtype == "bool"
        else "integer"
        if dtype.startswith(("int", "uint"))
        else "string"
        if dtype == "string"
        else "float"
    )
    spec: dict[str, Any] = {"type": "ndarray", "shape": shape or "Any", "item_type": {"type": kind}}
    name = str(getattr(tensor, "name", "") or "")
    # Outputs get generated names (`keras_tensor_7`): only the dtype says something there.
    generated = not name or name.startswith("keras_tensor")
    spec["description"] = dtype if generated else f"{name}: {dtype}"
    return spec


def _one_or_tuple(args: list[dict[str, Any]]) -> dict[str, Any]:
    if not args:
        return {"type": "ndarray", "shape": "Any", "item_type": {"type": "float"}}
    if len(args) == 1:
        return args[0]
    return {"type": "tuple", "element_types": args}


def _summary(model: Any, form: str) -> str:
    layers = getattr(model, "layers", [])
    kinds = ", ".join(type(layer).__name__ for layer in layers[:12])
    more = f" (+{len(layers) - 12})" if len(layers) > 12 else ""
    return f"Keras {type(model).__name__} ({form}): {kinds}{more}"


def _lambda_names(function: Any) -> set[str]:
    """Global names a serialized Lambda's bytecode uses (empty when it cannot be read here)."""
    code = function
    if isinstance(function, dict):
        code = (function.get("config") or {}).get("code")
    elif isinstance(function, list) and function:
        code = function[0]
    if not isinstance(code, str):
        return set()
    try:
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
    """Why a saved Keras config needs TensorFlow (naming the layer), or None.

    The hub's shim (`hub/shim.py`, which imports nothing of ours) applies the same rule inside
    the build's sandbox; `tests/hub/test_keras.py` holds the two to the same answers.
    """
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
