"""DLHub type blocks in words, for servable pages: `ndarray[None, 3] of float`, `list of structure`.

`core.types.type_label` is the terse form error messages use (`list[int]`); this is the reading
form a person meets first on a servable's page, recursive over DLHub's grammar plus the two
materials types, with each nested part's description kept for a detail list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["parameter_rows", "type_parts", "type_text"]

_SIMPLE = {
    "number": "number",
    "integer": "integer",
    "float": "float",
    "complex": "complex number",
    "boolean": "boolean",
    "string": "string",
    "datetime": "date-time",
    "timedelta": "time interval",
}


def _shape(shape: Any) -> str:
    if shape == "Any" or shape is None:
        return " of any shape"
    if isinstance(shape, list | tuple):
        return "[" + ", ".join("None" if d is None else str(d) for d in shape) + "]"
    return f"[{shape}]"


def _needs_brackets(spec: Any) -> bool:
    """Whether a nested type reads ambiguously without parentheses inside a tuple or dict."""
    return isinstance(spec, Mapping) and spec.get("type") in ("tuple", "dict")


def _qualifiers(spec: Mapping[str, Any]) -> str:
    parts = []
    if spec.get("elements"):
        parts.append("elements " + ", ".join(str(e) for e in spec["elements"]))
    if spec.get("formats"):
        parts.append("formats " + ", ".join(str(f) for f in spec["formats"]))
    if spec.get("periodic") is True:
        parts.append("periodic")
    elif spec.get("periodic") is False:
        parts.append("molecular")
    if spec.get("max_sites"):
        parts.append(f"at most {spec['max_sites']} sites")
    return f" ({'; '.join(parts)})" if parts else ""


def type_text(spec: Any) -> str:
    """A type block in words; anything unrecognised is shown as it is named."""
    if not isinstance(spec, Mapping):
        return "any"
    kind = spec.get("type")
    if kind in _SIMPLE:
        return _SIMPLE[str(kind)]
    if kind == "ndarray":
        item = spec.get("item_type")
        of = f" of {type_text(item)}" if isinstance(item, Mapping) else ""
        return f"ndarray{_shape(spec.get('shape', 'Any'))}{of}"
    if kind == "list":
        item = spec.get("item_type")
        return f"list of {type_text(item)}" if isinstance(item, Mapping) else "list"
    if kind == "tuple":
        elements = spec.get("element_types") or []
        inner = ", ".join(_nested(e) for e in elements)
        return f"tuple ({inner})"
    if kind == "dict":
        properties = spec.get("properties") or {}
        if not properties:
            return "dict (any keys)"
        inner = ", ".join(f"{k}: {_nested(v)}" for k, v in properties.items())
        return "dict {" + inner + "}"
    if kind == "python object":
        return f"python object ({spec.get('python_type', '?')})"
    if kind == "file":
        types = spec.get("file_types") or []
        return f"file ({', '.join(str(t) for t in types)})" if types else "file"
    if kind in ("structure", "composition"):
        return f"{kind}{_qualifiers(spec)}"
    return str(kind) if kind else "any"


def _nested(spec: Any) -> str:
    text = type_text(spec)
    return f"({text})" if _needs_brackets(spec) else text


def type_parts(spec: Any) -> list[dict[str, str]]:
    """The named parts of a tuple or dict (position or key, type, description), for a list."""
    if not isinstance(spec, Mapping):
        return []
    if spec.get("type") == "tuple":
        items = [(f"[{i}]", e) for i, e in enumerate(spec.get("element_types") or [])]
    elif spec.get("type") == "dict":
        items = list((spec.get("properties") or {}).items())
    else:
        return []
    return [
        {
            "name": str(name),
            "type": type_text(part),
            "description": str(part.get("description") or "") if isinstance(part, Mapping) else "",
        }
        for name, part in items
    ]


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return "any"


def parameter_rows(method: Mapping[str, Any]) -> list[dict[str, str]]:
    """A method's keyword parameters: name, type (declared, else the default's) and default."""
    defaults = method.get("parameters") or {}
    declared = (method.get("method_details") or {}).get("parameter_types") or {}
    rows = []
    for name, default in defaults.items():
        spec = declared.get(name)
        rows.append(
            {
                "name": str(name),
                "type": type_text(spec) if isinstance(spec, Mapping) else _json_kind(default),
                "default": json.dumps(default, ensure_ascii=False),
                "description": str(spec.get("description") or "")
                if isinstance(spec, Mapping)
                else "",
            }
        )
    return rows
