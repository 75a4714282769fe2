"""numpy arrays in stored run records: the typed form in, arrays out.

Inputs from binary bodies and outputs of model servables are numpy arrays on the host (the
worker frames carry their bytes, runtime/frames.py). A run record is JSON in the catalog, so
`stored` writes each numeric array in the run API's typed form — `{"__ndarray__": {"dtype",
"shape", "data": base64}}`, 4/3 of its bytes instead of ~20 characters a number — and `loaded`
turns those back into arrays. Answers give them to clients as lists (JSON) or as raw bytes
(msgpack), as they ask.
"""

from __future__ import annotations

import base64
from typing import Any

__all__ = ["TAG", "loaded", "stored"]

TAG = "__ndarray__"
_KINDS = "biuf"
_SCALARS = (int, float, str, type(None))


def _flat(items: list[Any] | tuple[Any, ...]) -> bool:
    """Whether a list holds only JSON scalars (nothing to convert: no walk into it)."""
    return all(isinstance(v, _SCALARS) for v in items)


def stored(value: Any) -> Any:
    """`value` with every numeric numpy array in the typed form (JSON-ready); else unchanged."""
    if isinstance(value, dict):
        return {k: stored(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return list(value) if _flat(value) else [stored(v) for v in value]
    dtype = getattr(value, "dtype", None)
    if dtype is None or not hasattr(value, "tobytes"):
        return value
    if getattr(value, "ndim", 0) == 0 or dtype.kind not in _KINDS:
        return value.tolist()  # a numpy scalar, or strings, objects, complex: plain JSON
    array = value if value.flags.c_contiguous else value.copy(order="C")
    data = base64.b64encode(array.tobytes()).decode("ascii")
    return {TAG: {"dtype": dtype.str, "shape": list(array.shape), "data": data}}


def loaded(value: Any) -> Any:
    """`value` with typed-form arrays as numpy arrays (read-only); else unchanged."""
    if isinstance(value, dict):
        spec = value.get(TAG)
        if len(value) == 1 and isinstance(spec, dict) and isinstance(spec.get("data"), str):
            import numpy as np

            raw = base64.b64decode(spec["data"])
            return np.frombuffer(raw, dtype=np.dtype(spec["dtype"])).reshape(spec["shape"])
        return {k: loaded(v) for k, v in value.items()}
    if isinstance(value, list):
        return value if _flat(value) else [loaded(v) for v in value]
    return value
