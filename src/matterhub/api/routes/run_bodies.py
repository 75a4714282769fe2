"""Run request and response bodies: JSON, msgpack, `.npy` and multipart (file uploads).

Chosen by `Content-Type` (request) and `Accept` (response):

- `application/json` (default): `{inputs, parameters, asynchronous, debug, validate, version}`.
  An ndarray may be given in the typed form `{"__ndarray__": {"dtype": "<f8", "shape": [2, 3],
  "data": "<base64 of the C-order bytes>"}}`.
- `application/msgpack`: the same object as msgpack; in the typed form `data` is raw bytes.
- `application/x-npy`: the body is one `.npy` array, the whole input; the other fields come
  from the query string (`?parameters={json}&asynchronous=true&debug=true&validate=false`).
- `multipart/form-data`: a `request` part holding the JSON object, and file parts; a file input
  refers to its part as `{"upload": "<part name>"}` (with one file part and no `inputs`, the
  file is the input).

Responses are JSON unless `Accept` asks for `application/msgpack` (the same body; an output
the servable declares as ndarray is sent in the typed form) or `application/x-npy` (a
successful output as one array; errors stay JSON).
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import msgpack  # type: ignore[import-untyped]
import orjson
from fastapi import Request, Response
from pydantic import ValidationError

from matterhub.api.errors import loc_to_field
from matterhub.api.limits import json_too_deep
from matterhub.core.errors import BadRequest, InvalidInput, MatterHubError

__all__ = [
    "JSON",
    "MSGPACK",
    "NPY",
    "RunBodies",
    "UnsupportedMedia",
    "as_array",
    "encode",
    "media_of",
    "read_body",
    "validation_error",
]

JSON, MSGPACK, NPY = "application/json", "application/msgpack", "application/x-npy"
_MSGPACK_ALIASES = (MSGPACK, "application/x-msgpack", "application/vnd.msgpack")
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_TAG = "__ndarray__"
_FLAGS = ("asynchronous", "debug", "validate")


class TooDeep(BadRequest):
    """Run JSON or msgpack nested past `max_json_depth` (400, as the body middleware answers)."""

    code = "json_too_deep"


class UnsupportedMedia(MatterHubError):
    """A run body in a media type the run API does not read (415)."""

    code = "unsupported_media_type"
    status = 415


class RunBodies:
    """Uploaded parts spooled to files for one request; `close` removes them."""

    def __init__(self) -> None:
        self.uploads: dict[str, Path] = {}
        self._dir: Path | None = None

    def spool(self, name: str, filename: str | None, stream: Any, parent: Path | None) -> None:
        """Write one uploaded part to a file of its own (keeping the file's name)."""
        if self._dir is None:
            if parent is not None:
                parent.mkdir(parents=True, exist_ok=True)
            self._dir = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
        folder = self._dir / str(len(self.uploads))
        folder.mkdir()
        target = folder / (PurePosixPath((filename or name).replace("\\", "/")).name or "input")
        with target.open("wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
        self.uploads[name] = target

    def close(self) -> None:
        """Remove the spooled parts (the run staged what it needed)."""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


def media_of(header: str | None) -> str:
    """The bare media type of a Content-Type header, lower-case (JSON when absent)."""
    media = (header or JSON).split(";", 1)[0].strip().lower()
    return MSGPACK if media in _MSGPACK_ALIASES else media or JSON


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:  # numpy is in the ml/materials extras, not the server's
        raise UnsupportedMedia("ndarray bodies need numpy on the server") from exc
    return numpy


def _typed(value: Any, field: str) -> Any:
    """Turn typed-form ndarrays (anywhere in a parsed body) into numpy arrays."""
    if isinstance(value, dict):
        if len(value) == 1 and _TAG in value and isinstance(value[_TAG], dict):
            spec = value[_TAG]
            np = _numpy()
            try:
                data = spec["data"]
                raw = base64.b64decode(data) if isinstance(data, str) else bytes(data)
                return np.frombuffer(raw, dtype=np.dtype(spec["dtype"])).reshape(spec["shape"])
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidInput(f"a bad typed ndarray: {exc}", field=field) from None
        return {k: _typed(v, f"{field}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v, f"{field}[{i}]") for i, v in enumerate(value)]
    return value


def _depth_limit(request: Request) -> int:
    settings = getattr(request.app.state, "settings", None)
    return int(getattr(settings, "max_json_depth", 64))


def _check_depth(request: Request, text: str | bytes, field: str) -> None:
    """JSON that reaches a run outside the JSON body (a multipart part, the query) is bounded
    like the body (api/limits checks that one before the route runs)."""
    limit = _depth_limit(request)
    if json_too_deep(text.encode() if isinstance(text, str) else text, limit):
        raise TooDeep(
            f"{field} nests arrays and objects deeper than {limit}; the limit is {limit}, set "
            "by MATTERHUB_MAX_JSON_DEPTH",
            field=field,
        )


def _nested_too_deep(value: Any, limit: int) -> bool:
    """Whether a decoded (msgpack) value nests lists and maps deeper than `limit`; iterative."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _query_options(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _FLAGS:
        if key in request.query_params:
            out[key] = request.query_params[key].lower() in ("1", "true", "yes")
    if "version" in request.query_params:
        out["version"] = request.query_params["version"]
    if "parameters" in request.query_params:
        _check_depth(request, request.query_params["parameters"], "parameters")
        try:
            out["parameters"] = orjson.loads(request.query_params["parameters"])
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"parameters are not JSON: {exc}", field="parameters") from None
    return out


async def read_body(request: Request, spool_dir: Path | None) -> tuple[dict[str, Any], RunBodies]:
    """The run request as a dict (ndarrays decoded) and its spooled uploads."""
    media = media_of(request.headers.get("content-type"))
    bodies = RunBodies()
    if media == "multipart/form-data":
        form = await request.form(max_files=64, max_fields=16)
        data: Any = {}
        try:
            for name, value in form.multi_items():
                if isinstance(value, str):
                    if name == "request":
                        _check_depth(request, value, "request")
                        data = orjson.loads(value)
                    continue
                bodies.spool(name, value.filename, value.file, spool_dir)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"the request part is not JSON: {exc}", field="request") from None
        finally:
            await form.close()
        if not isinstance(data, dict):
            raise InvalidInput("the request part is a JSON object", field="request")
        data = {**_query_options(request), **_typed(data, "body")}
        if data.get("inputs") is None and data.get("data") is None and len(bodies.uploads) == 1:
            data["inputs"] = {"upload": next(iter(bodies.uploads))}
        return data, bodies
    raw = await request.body()
    if media == JSON:
        try:
            data = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"the body is not JSON: {exc}", field="body") from None
        if _TAG.encode() in raw:
            data = _typed(data, "body")
    elif media == MSGPACK:
        try:
            unpacked = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise InvalidInput(f"the body is not msgpack: {exc}", field="body") from None
        limit = _depth_limit(request)
        if isinstance(unpacked, (dict, list)) and _nested_too_deep(unpacked, limit):
            raise TooDeep(
                f"the body nests arrays and maps deeper than {limit}; the limit is {limit}, "
                "set by MATTERHUB_MAX_JSON_DEPTH",
                field="body",
            )
        data = _typed(unpacked, "body")
    elif media == NPY:
        np = _numpy()
        import io

        try:
            array = np.load(io.BytesIO(raw), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InvalidInput(f"the body is not an .npy array: {exc}", field="body") from None
        data = {**_query_options(request), "inputs": array}
    else:
        raise UnsupportedMedia(
            f"cannot read {media} run bodies: send application/json, application/msgpack, "
            "application/x-npy or multipart/form-data"
        )
    if not isinstance(data, dict):
        raise InvalidInput("the run request is an object", field="body")
    return data, bodies


def validation_error(exc: ValidationError) -> InvalidInput:
    """A pydantic error on the run body as our 422 naming the field."""
    first = exc.errors()[0]
    return InvalidInput(first["msg"], field=loc_to_field(first["loc"]))


def _pack_default(value: Any) -> Any:
    if hasattr(value, "dtype") and hasattr(value, "tobytes"):
        array = value if value.flags.c_contiguous else value.copy(order="C")
        return {
            _TAG: {"dtype": array.dtype.str, "shape": list(array.shape), "data": array.tobytes()}
        }
    if hasattr(value, "item"):  # a numpy scalar
        return value.item()
    raise TypeError(f"cannot pack {type(value).__name__}")


def as_array(output: Any, spec: dict[str, Any] | None) -> Any:
    """A declared-ndarray output (nested lists from the worker) as a numpy array, else as is."""
    if spec is None or spec.get("type") != "ndarray" or not isinstance(output, list):
        return output
    np = _numpy()
    item = (spec.get("item_type") or {}).get("type")
    dtype = {"float": np.float64, "integer": np.int64, "boolean": np.bool_}.get(str(item))
    try:
        return np.asarray(output, dtype=dtype)
    except (ValueError, TypeError):
        return output


def encode(
    body: Any, accept: str, code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The response in the media type `Accept` asks for (JSON unless msgpack or npy)."""
    wanted = accept.lower()
    if "application/x-npy" in wanted and code == 200:
        np = _numpy()
        import io

        buffer = io.BytesIO()
        try:
            np.save(buffer, np.asarray(body), allow_pickle=False)
        except ValueError:  # not an array (a dict, ragged lists): JSON after all
            pass
        else:
            return Response(buffer.getvalue(), code, headers, media_type=NPY)
    if any(m in wanted for m in _MSGPACK_ALIASES):
        packed = msgpack.packb(body, default=_pack_default, use_bin_type=True)
        return Response(packed, code, headers, media_type=MSGPACK)
    return Response(orjson.dumps(body, option=_OPTIONS), code, headers, media_type=JSON)
