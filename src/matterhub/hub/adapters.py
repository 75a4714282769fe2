"""The model adapter port: the kinds of servable (`servable.shim`) a hub can load and run.

Adapters register under the `matterhub.model_adapters` entry points; the built-in ones (python
functions, scikit-learn, PyTorch, Keras, ONNX) register the same way and are loaded by the shim
itself (`hub/shim.py`). Another adapter brings the loader as a module of its own (`source`): a
file that imports only the standard library and what its servables declare, defining
`load(document, files_dir, details) -> runner`. Every environment the hub builds holds a copy of
each installed adapter's module next to the shim, so servable code runs only inside the sandbox
with what its environment has; the adapter's server-side part (`check`) runs in the hub.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from matterhub.plugins import NoSettings, PluginSettings

__all__ = [
    "ADAPTERS_TABLE",
    "ENTRY_POINT_GROUP",
    "AdapterSource",
    "KerasAdapter",
    "ModelAdapter",
    "ModelAdapters",
    "OnnxAdapter",
    "PythonAdapter",
    "SklearnAdapter",
    "TorchAdapter",
    "adapters_table",
]

ENTRY_POINT_GROUP = "matterhub.model_adapters"
ADAPTERS_TABLE = "matterhub_adapters.json"
"""Beside the shim in an environment: `{shim: {"module": <relative path>, "arrays": bool}}`."""
_ADAPTERS_DIR = "matterhub_adapters"


class ModelAdapter:
    """One kind of servable: the `servable.shim` it runs, its name, and where its loader lives."""

    shim: ClassVar[str]
    """The `servable.shim` value of the documents it runs, e.g. `sklearn.ScikitLearnServable`."""
    kind: ClassVar[str] = "Servable"
    """What landing pages and DataCite call a servable of this kind ("scikit-learn model")."""
    arrays: ClassVar[bool] = True
    """Inputs reach the loader's runner as numpy arrays (else as JSON lists); a model servable
    may then declare `fold_rows`."""
    source: ClassVar[Path | None] = None
    """The loader module copied into environments; None: built into the shim."""
    settings_model: ClassVar[type[PluginSettings]] = NoSettings
    """The adapter's own settings (`MATTERHUB_MODEL_ADAPTER_<NAME>_<FIELD>`, or
    `model_adapter_options.<name>`), for its server-side part; environments never see them."""

    def __init__(self, settings: PluginSettings | None = None) -> None:
        self.settings = settings if settings is not None else self.settings_model()

    def check(self, document: Mapping[str, Any]) -> None:
        """Rules of this kind beyond the schema, at publish: raise InvalidInput naming the path."""
        return None


class PythonAdapter(ModelAdapter):
    """A Python function of the servable's own files (DLHub's static-method servable)."""

    shim = "python.PythonStaticMethodServable"
    kind = "Python function"
    arrays = False


class SklearnAdapter(ModelAdapter):
    """A pickled or joblib'ed scikit-learn estimator."""

    shim = "sklearn.ScikitLearnServable"
    kind = "scikit-learn model"


class TorchAdapter(ModelAdapter):
    """A TorchScript file, or a module class plus its state dict."""

    shim = "torch.TorchServable"
    kind = "PyTorch model"


class KerasAdapter(ModelAdapter):
    """A Keras 3 model (`.keras`, HDF5, or architecture JSON plus weights), run on torch."""

    shim = "keras.KerasServable"
    kind = "Keras model"


class OnnxAdapter(ModelAdapter):
    """An ONNX graph run by onnxruntime."""

    shim = "onnx.ONNXServable"
    kind = "ONNX model"


@dataclass(frozen=True, slots=True)
class AdapterSource:
    """An adapter's loader module as an environment holds it (plain values for the builder)."""

    shim: str
    path: Path
    arrays: bool = True

    @property
    def module(self) -> str:
        """Where it goes in the environment, relative to the shim."""
        digest = hashlib.sha256(self.shim.encode()).hexdigest()[:12]
        return f"{_ADAPTERS_DIR}/adapter_{digest}.py"


@dataclass
class ModelAdapters:
    """The adapters installed, by shim."""

    by_shim: dict[str, ModelAdapter] = field(default_factory=dict)

    def add(self, adapter: ModelAdapter) -> None:
        """Add one; a second adapter for a shim replaces the first."""
        self.by_shim[adapter.shim] = adapter

    @property
    def shims(self) -> frozenset[str]:
        """The `servable.shim` values this hub runs."""
        return frozenset(self.by_shim)

    def kinds(self) -> dict[str, str]:
        """Shim → what it is called."""
        return {shim: adapter.kind for shim, adapter in self.by_shim.items()}

    def check(self, document: Mapping[str, Any]) -> None:
        """The adapter's own rules for a document whose shim is known."""
        adapter = self.by_shim.get(str((document.get("servable") or {}).get("shim")))
        if adapter is not None:
            adapter.check(document)

    def sources(self) -> tuple[AdapterSource, ...]:
        """The loader modules environments must hold (none for the built-in adapters)."""
        return tuple(
            AdapterSource(shim, adapter.source, adapter.arrays)
            for shim, adapter in sorted(self.by_shim.items())
            if adapter.source is not None
        )


def adapters_table(sources: tuple[AdapterSource, ...]) -> str:
    """The JSON written beside the shim: where each adapter's module is, and its input form."""
    return json.dumps(
        {s.shim: {"module": s.module, "arrays": s.arrays} for s in sources}, sort_keys=True
    )
