"""Run request bodies on the client: file uploads (multipart), msgpack and `.npy` for arrays.

The hub's run API reads them by `Content-Type` (docs/hub-run.md "Binary bodies"):

- files: a `request` part (the JSON run object) plus one part per file; an input names its
  part as `{"upload": "<part>"}`. A `pathlib.Path` anywhere in the inputs becomes such a part.
- `.npy`: one numpy array is the whole input; the other fields go in the query string.
- msgpack: the run object, numpy arrays in the typed form `{"__ndarray__": {dtype, shape, data}}`
  with raw bytes (no base64, no nested lists).

numpy and msgpack are imported only when a body needs them.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from os import PathLike
from pathlib import Path
from typing import Any

__all__ = [
    "MSGPACK",
    "NPY",
    "decode",
    "encode_binary",
    "file_parts",
    "find_paths",
    "is_ndarray",
    "request_json",
]

MSGPACK, NPY = "application/msgpack", "application/x-npy"
_TAG = "__ndarray__"


def is_ndarray(value: Any) -> bool:
    """A numpy array, told without importing numpy."""
    return type(value).__module__ == "numpy" and hasattr(value, "dtype") and hasattr(value, "shape")


def find_paths(inputs: Any, prefix: str = "file") -> tuple[Any, dict[str, Path]]:
    """The inputs with every `pathlib.Path` replaced by `{"upload": part}`, and the parts."""
    found: dict[str, Path] = {}

    def walk(value: Any) -> Any:
        if isinstance(value, Path):
            part = f"{prefix}{len(found)}"
            found[part] = value
            return {"upload": part}
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    return walk(inputs), found


def _typed(value: Any, raw: bool) -> Any:
    array = value if value.flags.c_contiguous else value.copy(order="C")
    data = array.tobytes()
    spec = {"dtype": array.dtype.str, "shape": list(array.shape)}
    return {_TAG: {**spec, "data": data if raw else base64.b64encode(data).decode()}}


def _json_default(value: Any) -> Any:
    if is_ndarray(value):
        return _typed(value, raw=False)
    if hasattr(value, "item"):  # a numpy scalar
        return value.item()
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def request_json(body: Mapping[str, Any]) -> str:
    """The run object as JSON (arrays in the typed base64 form), for a multipart `request`."""
    return json.dumps(dict(body), default=_json_default, allow_nan=False)


def _msgpack() -> Any:
    try:
        import msgpack  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - msgpack ships with the client extra
        raise ImportError("binary=True needs msgpack: pip install 'matterhub[client]'") from exc
    return msgpack


def _pack_default(value: Any) -> Any:
    if is_ndarray(value):
        return _typed(value, raw=True)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot pack {type(value).__name__}")


def encode_binary(
    body: Mapping[str, Any], *, lone_array: bool = True
) -> tuple[bytes, str, dict[str, str]]:
    """`(content, content type, query parameters)`: `.npy` for a lone array input (when
    `lone_array`), else msgpack."""
    inputs: Any = body.get("inputs")
    if lone_array and is_ndarray(inputs):
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, inputs, allow_pickle=False)
        params: dict[str, str] = {}
        for key in ("asynchronous", "debug", "validate"):
            if body.get(key):
                params[key] = "true"
        if body.get("parameters"):
            params["parameters"] = json.dumps(body["parameters"], default=_json_default)
        if body.get("version"):
            params["version"] = str(body["version"])
        return buffer.getvalue(), NPY, params
    packed = _msgpack().packb(dict(body), default=_pack_default, use_bin_type=True)
    return bytes(packed), MSGPACK, {}


def _untyped(value: Any) -> Any:
    if isinstance(value, dict):
        spec = value.get(_TAG)
        if len(value) == 1 and isinstance(spec, dict):
            import numpy as np

            raw = spec["data"]
            raw = base64.b64decode(raw) if isinstance(raw, str) else bytes(raw)
            return np.frombuffer(raw, dtype=np.dtype(spec["dtype"])).reshape(spec["shape"])
        return {k: _untyped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untyped(v) for v in value]
    return value


def decode(content_type: str, content: bytes) -> Any:
    """A run answer: msgpack (typed arrays become numpy arrays), `.npy` or JSON."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in (MSGPACK, "application/x-msgpack", "application/vnd.msgpack"):
        return _untyped(_msgpack().unpackb(content, raw=False, strict_map_key=False))
    if media == NPY:
        import numpy as np

        return np.load(io.BytesIO(content), allow_pickle=False)
    return json.loads(content)


@contextmanager
def file_parts(files: Mapping[str, str | PathLike[str]]) -> Iterator[list[tuple[str, Any]]]:
    """httpx `files=` parts named by their key, each sent as its file's name, closed after."""
    with ExitStack() as stack:
        parts = []
        for part, given in files.items():
            path = Path(given).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"no such file for input {part!r}: {given}")
            handle = stack.enter_context(path.open("rb"))
            parts.append((part, (path.name, handle, "application/octet-stream")))
        yield parts
