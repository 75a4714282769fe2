"""The host's side of the worker frame format (worker.py's docstring has it): JSON + raw arrays.

`encode` writes a frame's value with orjson, every numpy array in it replaced by a reference to
its bytes appended after the JSON; `decode` reads a worker's reply the same way, its arrays as
read-only numpy arrays over the reply's bytes (no copy). Without numpy on the server, arrays
come back as nested lists.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

# The worker's own module is stdlib only and runs inside each environment; the host shares its
# buffer layout and dtype table from it rather than keeping a second copy.
from matterhub.hub.runtime.worker import FORMATS, TAG, Buffers, empty_lists

__all__ = ["TAG", "decode", "encode"]

_TAG_BYTES = TAG.encode()
_HEADER = struct.Struct(">I")


def encode(value: Any) -> bytes:
    """A whole frame (its length first) for `value`, numeric numpy arrays as raw bytes."""
    buffers = Buffers()

    def default(item: Any) -> Any:
        dtype = getattr(item, "dtype", None)
        if dtype is None or not hasattr(item, "tobytes"):
            raise TypeError(f"{type(item).__name__} is not JSON serializable")
        if getattr(item, "ndim", 0) == 0:  # a numpy scalar
            return item.item()
        if dtype.str not in FORMATS:  # complex, strings, objects, big-endian: as lists
            return item.tolist()
        return buffers.add(item)

    text = orjson.dumps(value, default=default, option=orjson.OPT_NON_STR_KEYS)
    return b"".join(buffers.frame(text))


def decode(body: bytes | memoryview) -> Any:
    """A frame's body (after its length): the value, arrays as numpy arrays (or lists)."""
    view = memoryview(body)
    (size,) = _HEADER.unpack_from(view)
    text = bytes(view[4 : 4 + size])
    value = orjson.loads(text)
    if _TAG_BYTES not in text:
        return value
    return _arrays(value, view[4 + size :], _numpy())


def _arrays(value: Any, buffers: memoryview, numpy: Any) -> Any:
    if isinstance(value, dict):
        spec = value.get(TAG)
        if len(value) == 1 and isinstance(spec, dict) and "buffer" in spec:
            offset, nbytes = spec["buffer"]
            if not 0 <= offset <= offset + nbytes <= len(buffers):
                raise ValueError("a frame's array lies outside the frame")
            if spec.get("dtype") not in FORMATS:
                raise ValueError(f"a frame's array has the dtype {spec.get('dtype')!r}")
            part = buffers[offset : offset + nbytes]
            if numpy is not None:
                return numpy.frombuffer(part, dtype=numpy.dtype(spec["dtype"])).reshape(
                    spec["shape"]
                )
            if 0 in spec["shape"]:
                return empty_lists(spec["shape"])
            return part.cast(FORMATS[spec["dtype"]], spec["shape"]).tolist()  # type: ignore[call-overload]
        return {k: _arrays(v, buffers, numpy) for k, v in value.items()}
    if isinstance(value, list):
        return [_arrays(v, buffers, numpy) for v in value]
    return value


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:  # numpy is in the ml/materials extras, not the server's
        return None
    return numpy
