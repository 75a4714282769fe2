"""DLHub's argument-type grammar, plus `structure` and `composition`, and validation of values.

A type is a JSON object `{"type": …, "description"?: …}` with the keys each type requires:
`ndarray` needs `shape` (ints ≥ 1 or null, or "Any"), `list` needs `item_type`, `tuple` needs
`element_types`, `dict` needs `properties`, `python object` needs `python_type`; `file` takes
optional MIME `file_types` and may only be the sole argument, a list's item or a tuple element.
`structure` (CIF/POSCAR/XYZ text or ASE/pymatgen JSON) and `composition` (a formula or an
element → amount object) may restrict `elements`; `structure` also `formats`, `periodic` and
`max_sites`. Validation follows DLHub's `validation.py`: ints pass as float, tuple lengths are
exact, dict keys strict, null dims are wildcards, and errors carry a path such as
`expected int, received str at input[0]`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

from matterhub.core.errors import InvalidInput
from matterhub.core.materials import ELEMENTS, STRUCTURE_FORMATS, parse_formula, parse_structure

__all__ = [
    "ALL_TYPES",
    "SIMPLE_TYPES",
    "check_type",
    "compose_argument_block",
    "simplify_numpy_dtype",
    "type_label",
    "types_used",
    "validate",
]

SIMPLE_TYPES = (
    "number", "integer", "float", "complex", "boolean", "string", "datetime", "timedelta",
)  # fmt: skip
_COMPOUND = (
    "ndarray",
    "list",
    "tuple",
    "dict",
    "python object",
    "file",
    "structure",
    "composition",
)
ALL_TYPES = SIMPLE_TYPES + _COMPOUND
_REQUIRED = {
    "ndarray": "shape",
    "list": "item_type",
    "tuple": "element_types",
    "dict": "properties",
    "python object": "python_type",
}
_ALLOWED_KEYS = {
    "ndarray": {"shape", "item_type"},
    "list": {"item_type"},
    "tuple": {"element_types"},
    "dict": {"properties"},
    "python object": {"python_type"},
    "file": {"file_types"},
    "structure": {"formats", "elements", "periodic", "max_sites"},
    "composition": {"elements"},
}
_MIME = re.compile(r"^[^\s/]+/\S+$")
_LABELS = {"integer": "int", "float": "float", "boolean": "bool", "string": "str"}


def compose_argument_block(
    data_type: str, description: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Build one type block, as DLHub's `compose_argument_block`; raises when a key is missing."""
    block: dict[str, Any] = {"type": data_type}
    if description:
        block["description"] = description
    block.update({k: v for k, v in kwargs.items() if v is not None})
    check_type(block)
    return block


def check_type(spec: Any, path: str = "type", *, placement: str = "top") -> None:
    """Raise InvalidInput (naming the path) unless `spec` follows the grammar.

    `placement` is where the type sits: `top`, `list` (item of a top-level list), `tuple`
    (element), or `nested` (inside a dict or a nested list), which forbids `file`.
    """
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"a type is an object with a 'type' key, got {spec!r}", field=path)
    kind = spec.get("type")
    if kind not in ALL_TYPES:
        raise InvalidInput(
            f"unknown type {kind!r}; use one of {', '.join(ALL_TYPES)}", field=f"{path}.type"
        )
    extra = set(spec) - {"type", "description"} - _ALLOWED_KEYS.get(kind, set())
    if extra:
        raise InvalidInput(
            f"{kind} takes no {sorted(extra)[0]!r}", field=f"{path}.{sorted(extra)[0]}"
        )
    needed = _REQUIRED.get(kind)
    if needed and needed not in spec:
        raise InvalidInput(f"type {kind} needs {needed!r}", field=f"{path}.{needed}")
    if "description" in spec and not isinstance(spec["description"], str):
        raise InvalidInput("description must be text", field=f"{path}.description")
    if kind == "ndarray":
        _check_shape(spec["shape"], f"{path}.shape")
        if "item_type" in spec:
            check_type(spec["item_type"], f"{path}.item_type", placement="nested")
    elif kind == "list":
        inner = "list" if placement == "top" else "nested"
        check_type(spec["item_type"], f"{path}.item_type", placement=inner)
    elif kind == "tuple":
        elements = spec["element_types"]
        if not isinstance(elements, list):
            raise InvalidInput("element_types is a list of types", field=f"{path}.element_types")
        for i, element in enumerate(elements):
            check_type(element, f"{path}.element_types[{i}]", placement="tuple")
    elif kind == "dict":
        properties = spec["properties"]
        if not isinstance(properties, Mapping):
            raise InvalidInput("properties maps names to types", field=f"{path}.properties")
        for key, value in properties.items():
            check_type(value, f"{path}.properties.{key}", placement="nested")
    elif kind == "python object":
        if not isinstance(spec["python_type"], str) or not spec["python_type"]:
            raise InvalidInput(
                "python_type names a class, e.g. 'pymatgen.core.Structure'",
                field=f"{path}.python_type",
            )
    elif kind == "file":
        if placement == "nested":
            raise InvalidInput(
                "a file may only be the sole argument, a list's item or a tuple element", field=path
            )
        for i, mime in enumerate(spec.get("file_types", [])):
            if not isinstance(mime, str) or not _MIME.match(mime):
                raise InvalidInput(f"{mime!r} is not a MIME type", field=f"{path}.file_types[{i}]")
    elif kind in ("structure", "composition"):
        _check_materials(spec, path)


def _check_shape(shape: Any, path: str) -> None:
    if shape == "Any":
        return
    if not isinstance(shape, list):
        raise InvalidInput("shape is a list of sizes (null for any) or 'Any'", field=path)
    for i, dim in enumerate(shape):
        ok = (
            dim is None
            or dim == "Any"
            or (isinstance(dim, int) and not isinstance(dim, bool) and dim >= 1)
        )
        if not ok:
            raise InvalidInput(
                f"dimension {dim!r} must be an integer ≥ 1 or null", field=f"{path}[{i}]"
            )


def _check_materials(spec: Mapping[str, Any], path: str) -> None:
    for i, symbol in enumerate(spec.get("elements", [])):
        if symbol not in ELEMENTS:
            raise InvalidInput(
                f"{symbol!r} is not a chemical element", field=f"{path}.elements[{i}]"
            )
    for i, fmt in enumerate(spec.get("formats", [])):
        if fmt not in STRUCTURE_FORMATS:
            raise InvalidInput(f"unknown structure format {fmt!r}", field=f"{path}.formats[{i}]")
    if "periodic" in spec and not isinstance(spec["periodic"], bool):
        raise InvalidInput("periodic is true or false", field=f"{path}.periodic")
    limit = spec.get("max_sites")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise InvalidInput("max_sites is an integer ≥ 1", field=f"{path}.max_sites")


def type_label(spec: Mapping[str, Any]) -> str:
    """A short name for messages: `int`, `list[int]`, `tuple[str, float]`, `ndarray[float](3,)`."""
    kind = spec.get("type", "?")
    if kind in _LABELS:
        return _LABELS[kind]
    if kind == "list":
        return f"list[{type_label(spec['item_type'])}]"
    if kind == "tuple":
        return "tuple[" + ", ".join(type_label(e) for e in spec["element_types"]) + "]"
    if kind == "ndarray":
        item = f"[{type_label(spec['item_type'])}]" if "item_type" in spec else ""
        shape = spec["shape"]
        dims = shape if shape == "Any" else tuple(shape)
        return f"ndarray{item}{dims}"
    if kind == "python object":
        return str(spec.get("python_type"))
    return str(kind)


def types_used(spec: Mapping[str, Any]) -> set[str]:
    """Every type name appearing in a type block (for search by input type)."""
    found = {str(spec.get("type"))}
    for key in ("item_type",):
        if isinstance(spec.get(key), Mapping):
            found |= types_used(spec[key])
    for element in spec.get("element_types", []) or []:
        found |= types_used(element)
    for value in (spec.get("properties") or {}).values():
        found |= types_used(value)
    return found


def simplify_numpy_dtype(kind: str) -> str:
    """A numpy dtype `kind` character → the DLHub type name (as DLHub's `simplify_numpy_dtype`)."""
    return {
        "b": "boolean", "i": "integer", "u": "integer", "f": "float", "c": "complex",
        "m": "timedelta", "M": "datetime", "S": "string", "U": "string",
    }.get(kind, "python object")  # fmt: skip


def _received(value: Any) -> str:
    return type(value).__name__


def _fail(spec: Mapping[str, Any], value: Any, path: str, extra: str = "") -> InvalidInput:
    detail = f"expected {type_label(spec)}, received {_received(value)} at {path}{extra}"
    return InvalidInput(detail, field=path)


def validate(value: Any, spec: Mapping[str, Any], path: str = "input") -> list[str]:
    """Check `value` against a type; return warnings, raise InvalidInput naming the path."""
    warnings: list[str] = []
    _validate(value, spec, path, warnings)
    return warnings


def _validate(value: Any, spec: Mapping[str, Any], path: str, warnings: list[str]) -> None:
    kind = spec.get("type")
    if kind in SIMPLE_TYPES:
        _simple(value, spec, path, warnings)
    elif kind == "list":
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            raise _fail(spec, value, path)
        for i, item in enumerate(value):
            _validate(item, spec["item_type"], f"{path}[{i}]", warnings)
    elif kind == "tuple":
        elements = spec["element_types"]
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            raise _fail(spec, value, path)
        if len(value) != len(elements):
            raise _fail(spec, value, path, f" (length {len(value)}, expected {len(elements)})")
        for i, (item, element) in enumerate(zip(value, elements, strict=True)):
            _validate(item, element, f"{path}[{i}]", warnings)
    elif kind == "dict":
        _dict(value, spec, path, warnings)
    elif kind == "ndarray":
        _ndarray(value, spec, path, warnings)
    elif kind == "file":
        ok = isinstance(value, (str, PurePath)) or hasattr(value, "read")
        if isinstance(value, Mapping):  # a URL, a multipart part, or a file the hub staged
            ok = any(isinstance(value.get(k), str) for k in ("url", "upload", "$file"))
        if not ok:
            raise _fail(spec, value, path)
    elif kind == "structure":
        _structure(value, spec, path)
    elif kind == "composition":
        _composition(value, spec, path)
    # `python object` cannot be checked without importing the class (DLHub's own gap, #167).


def _simple(value: Any, spec: Mapping[str, Any], path: str, warnings: list[str]) -> None:
    kind = spec["type"]
    is_bool = isinstance(value, bool)
    if kind == "boolean":
        if is_bool:
            return
        if isinstance(value, int) and value in (0, 1):
            warnings.append(f"int given for bool at {path}")
            return
        raise _fail(spec, value, path)
    if is_bool and kind in ("number", "integer", "float", "complex"):
        raise _fail(spec, value, path)
    if kind == "integer":
        ok = isinstance(value, int) or _numpy_kind(value) in ("i", "u")
    elif kind == "float":
        ok = isinstance(value, (int, float)) or _numpy_kind(value) in ("i", "u", "f")
    elif kind == "number":
        ok = isinstance(value, (int, float, complex)) or _numpy_kind(value) in ("i", "u", "f", "c")
    elif kind == "complex":
        ok = isinstance(value, (int, float, complex)) or (
            isinstance(value, Mapping) and set(value) == {"real", "imag"}
        )
    elif kind == "string":
        ok = isinstance(value, str)
    elif kind == "datetime":
        ok = isinstance(value, dt.datetime) or (isinstance(value, str) and _iso_datetime(value))
    else:  # timedelta: an object, or seconds as a number (JSON has no duration type)
        ok = isinstance(value, (dt.timedelta, int, float))
    if not ok:
        raise _fail(spec, value, path)
    if isinstance(value, float) and not math.isfinite(value) and kind == "integer":
        raise _fail(spec, value, path)


def _numpy_kind(value: Any) -> str | None:
    dtype = getattr(value, "dtype", None)
    if dtype is None or getattr(value, "shape", None) not in ((), None):
        return None
    kind = getattr(dtype, "kind", None)
    return kind if isinstance(kind, str) else None


def _iso_datetime(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _dict(value: Any, spec: Mapping[str, Any], path: str, warnings: list[str]) -> None:
    if not isinstance(value, Mapping):
        raise _fail(spec, value, path)
    properties: Mapping[str, Any] = spec["properties"]
    if not properties:  # empty properties: any keys (as DLHub)
        return
    unexpected = sorted(str(k) for k in set(value) - set(properties))
    if unexpected:
        raise InvalidInput(
            f"unexpected key {unexpected[0]!r} at {path}", field=f"{path}.{unexpected[0]}"
        )
    missing = sorted(set(properties) - set(value))
    if missing:
        raise InvalidInput(f"missing key {missing[0]!r} at {path}", field=f"{path}.{missing[0]}")
    for key, item_spec in properties.items():
        _validate(value[key], item_spec, f"{path}.{key}", warnings)


def _ndarray(value: Any, spec: Mapping[str, Any], path: str, warnings: list[str]) -> None:
    shape_of = getattr(value, "shape", None)
    if isinstance(shape_of, tuple) and hasattr(value, "dtype"):  # a numpy array
        shape = shape_of
        leaves: list[Any] = []
        if getattr(value, "size", 0) and hasattr(value, "flat"):
            # A numeric array's elements all have its dtype: one stands for all of them.
            kind = getattr(value.dtype, "kind", "O")
            leaves = [value.flat[0]] if kind in "biufc" else list(value.ravel()[:1000])
    elif isinstance(value, (list, tuple)):
        try:
            shape, leaves = _nested_shape(value)
        except ValueError as exc:
            raise InvalidInput(f"{exc} at {path}", field=path) from None
    elif isinstance(value, (int, float, complex, bool)):
        shape, leaves = (), [value]
    else:
        raise _fail(spec, value, path)
    want = spec["shape"]
    if want != "Any":
        if len(shape) != len(want):
            raise InvalidInput(
                f"expected {type_label(spec)}, received an array of shape {shape} at {path}",
                field=path,
            )
        for axis, (got, expected) in enumerate(zip(shape, want, strict=True)):
            if expected not in (None, "Any") and got != expected:
                raise InvalidInput(
                    f"expected size {expected} on axis {axis}, received {got} at {path}", field=path
                )
    item = spec.get("item_type")
    if item is not None:
        for leaf in leaves:
            _validate(leaf.item() if hasattr(leaf, "item") else leaf, item, f"{path}[…]", warnings)


def _nested_shape(value: Any) -> tuple[tuple[int, ...], list[Any]]:
    """The shape of a rectangular nested list and its leaves; raises ValueError when ragged."""
    if not isinstance(value, (list, tuple)):
        return (), [value]
    if not value:
        return (0,), []
    shapes, leaves = [], []
    for item in value:
        shape, items = _nested_shape(item)
        shapes.append(shape)
        leaves += items
    if any(s != shapes[0] for s in shapes):
        raise ValueError("the nested lists are ragged, not an array")
    return (len(value), *shapes[0]), leaves


def _structure(value: Any, spec: Mapping[str, Any], path: str) -> None:
    if hasattr(value, "get_chemical_symbols"):  # an ase.Atoms
        species = tuple(value.get_chemical_symbols())
        periodic = bool(any(value.pbc))
    elif hasattr(value, "species") and hasattr(value, "sites"):  # a pymatgen Structure/Molecule
        species = tuple(str(s) for s in value.species)
        periodic = hasattr(value, "lattice")
    else:
        formats = spec.get("formats") or [None]
        errors = []
        for fmt in formats:
            try:
                parsed = parse_structure(value, fmt)
                break
            except ValueError as exc:
                errors.append(str(exc))
        else:
            raise InvalidInput(f"not a structure ({'; '.join(errors)}) at {path}", field=path)
        species, periodic = parsed.species, parsed.periodic
    if not species:
        raise InvalidInput(f"the structure has no atoms at {path}", field=path)
    _elements_allowed(set(species), spec, path)
    if "periodic" in spec and spec["periodic"] != periodic:
        wanted = "a periodic crystal" if spec["periodic"] else "a molecule (not periodic)"
        raise InvalidInput(f"expected {wanted} at {path}", field=path)
    limit = spec.get("max_sites")
    if limit is not None and len(species) > limit:
        raise InvalidInput(
            f"{len(species)} sites is over the limit of {limit} at {path}", field=path
        )


def _composition(value: Any, spec: Mapping[str, Any], path: str) -> None:
    if isinstance(value, str):
        try:
            amounts = parse_formula(value)
        except ValueError as exc:
            raise InvalidInput(f"{exc} at {path}", field=path) from None
    elif isinstance(value, Mapping):
        amounts = {}
        for symbol, amount in value.items():
            if symbol not in ELEMENTS:
                raise InvalidInput(
                    f"{symbol!r} is not a chemical element at {path}", field=f"{path}.{symbol}"
                )
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
                raise InvalidInput(
                    f"the amount of {symbol} must be a number ≥ 0 at {path}",
                    field=f"{path}.{symbol}",
                )
            amounts[symbol] = float(amount)
    elif hasattr(value, "get_el_amt_dict"):  # a pymatgen Composition
        amounts = dict(value.get_el_amt_dict())
    else:
        raise _fail(spec, value, path)
    if not any(amounts.values()):
        raise InvalidInput(f"the composition is empty at {path}", field=path)
    _elements_allowed(set(amounts), spec, path)


def _elements_allowed(present: set[str], spec: Mapping[str, Any], path: str) -> None:
    allowed = spec.get("elements")
    if allowed:
        outside = sorted(present - set(allowed))
        if outside:
            raise InvalidInput(
                f"element {outside[0]} is outside this servable's domain "
                f"({', '.join(allowed)}) at {path}",
                field=path,
            )
