"""Describe a Python function (type hints → DLHub types) or a generic files + entry point form."""

from __future__ import annotations

import collections.abc as cabc
import datetime as dt
import inspect
import io
import os
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from matterhub.client.describe.base import ServableDescription
from matterhub.client.describe.requirements import detect_requirements, imported_modules

__all__ = ["describe_files", "describe_function", "type_from_hint"]

_SHIM = "python.PythonStaticMethodServable"
_SCALARS = {
    bool: "boolean", int: "integer", float: "float", complex: "complex", str: "string",
    dt.datetime: "datetime", dt.timedelta: "timedelta",
}  # fmt: skip
_STRUCTURES = {
    "ase.atoms.Atoms",
    "pymatgen.core.structure.Structure",
    "pymatgen.core.structure.Molecule",
}
_COMPOSITIONS = {"pymatgen.core.composition.Composition"}


def type_from_hint(hint: Any) -> dict[str, Any]:
    """A Python type hint → a DLHub type block (as DLHub's `utils/inspect.py`, plus materials)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        real = [a for a in args if a is not type(None)]
        if len(real) == 1:
            return type_from_hint(real[0])
        return {"type": "python object", "python_type": "typing.Union"}
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if origin in (list, cabc.Sequence, cabc.Iterable) or hint in (list,):
        item = (
            type_from_hint(args[0]) if args else {"type": "python object", "python_type": "object"}
        )
        return {"type": "list", "item_type": item}
    if origin is tuple and args and args[-1] is not Ellipsis:
        return {"type": "tuple", "element_types": [type_from_hint(a) for a in args]}
    if origin is tuple:
        item = (
            type_from_hint(args[0]) if args else {"type": "python object", "python_type": "object"}
        )
        return {"type": "list", "item_type": item}
    if origin in (dict, cabc.Mapping) or hint is dict:
        return {"type": "dict", "properties": {}}
    if hint in (Path, os.PathLike, io.IOBase, typing.IO, typing.BinaryIO, typing.TextIO):
        return {"type": "file"}
    qualified = f"{getattr(hint, '__module__', '')}.{getattr(hint, '__qualname__', str(hint))}"
    if qualified in ("numpy.ndarray",) or (origin is not None and _name(origin) == "numpy.ndarray"):
        return {"type": "ndarray", "shape": "Any"}
    if qualified in _STRUCTURES:
        return {"type": "structure"}
    if qualified in _COMPOSITIONS:
        return {"type": "composition"}
    if hint is Any:
        return {"type": "python object", "python_type": "typing.Any"}
    return {"type": "python object", "python_type": qualified}


def _name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"


def describe_function(
    function: Callable[..., Any],
    name: str | None = None,
    *,
    autobatch: bool = False,
    batch_function: str | Callable[..., Any] | None = None,
    detect: bool = True,
    extra_files: Sequence[str | Path] = (),
    source: str | None = None,
    paths: Sequence[str] | None = None,
) -> ServableDescription:
    """Describe a function defined in a module file: the file ships, hints become types.

    One parameter gives its own type; several give a tuple and `unpack` (the run splats them).
    A parameter without a hint raises TypeError (as DLHub). `detect` pins the installed versions
    of the third-party modules the file imports. With `source` (a git repository or URL, see
    `ServableDescription.set_source`) the hub fetches the files from there instead: the module
    is `<module>.py` at the source's root (or among `paths`), and `extra_files` are paths in it.
    `batch_function` (a function of the same module, or its name) takes a list of inputs and
    returns a list of outputs: the hub calls it once for many runs of a batch (see docs/hub-run.md).
    """
    where = source
    source = inspect.getsourcefile(function)
    if source is None:
        raise TypeError(f"{function!r} has no source file to ship; define it in a module")
    module = Path(source).stem if function.__module__ == "__main__" else function.__module__
    if "." in module:
        module = module.rsplit(".", 1)[-1]
    hints = typing.get_type_hints(function)
    params = [p for p in inspect.signature(function).parameters.values() if p.default is p.empty]
    missing = [p.name for p in params if p.name not in hints]
    if missing:
        raise TypeError(f"parameter {missing[0]!r} of {function.__name__} has no type hint")
    if not params:
        raise TypeError(f"{function.__name__} takes no input")
    defaults = {
        p.name: p.default
        for p in inspect.signature(function).parameters.values()
        if p.default is not p.empty
    }
    unpack = len(params) > 1
    spec: dict[str, Any]
    if unpack:
        spec = {"type": "tuple", "element_types": [type_from_hint(hints[p.name]) for p in params]}
    else:
        spec = type_from_hint(hints[params[0].name])
    if autobatch:
        spec = {"type": "list", "item_type": spec}
    output = (
        type_from_hint(hints["return"])
        if "return" in hints
        else {"type": "python object", "python_type": "object"}
    )
    details = {
        "module": module,
        "method_name": function.__name__,
        "autobatch": autobatch,
        "unpack": unpack,
    }
    if batch_function is not None:
        details["batch_function"] = _batch_name(batch_function, module)
    description = ServableDescription(
        name or function.__name__, _SHIM, model_type="python function", method_details=details
    )
    if where is not None:
        description.add_source_file(f"{module}.py")
        for extra in extra_files:
            description.add_source_file(str(extra))
        description.set_source(where, paths=list(paths) if paths else None)
    else:
        description.add_file(source, f"{module}.py")
        for extra in extra_files:
            description.add_file(extra)
    description.set_inputs(spec).set_outputs(output)
    description.set_parameters({k: v for k, v in defaults.items() if _jsonable(v)})
    if function.__doc__:
        description.set_abstract(inspect.cleandoc(function.__doc__))
    if detect:
        local = {Path(p).stem for p in description.files} | {module}
        description.add_requirements(
            detect_requirements(imported_modules(Path(source)), local=local)
        )
    return description


def _batch_name(function: str | Callable[..., Any], module: str) -> str:
    """The batch function's name; a function must come from the servable's own module."""
    if isinstance(function, str):
        name = function
    else:
        home = getattr(function, "__module__", "")
        home = Path(inspect.getsourcefile(function) or "").stem if home == "__main__" else home
        if home.rsplit(".", 1)[-1] != module:
            raise ValueError(f"the batch function must be defined in {module}.py, with the method")
        name = function.__name__
    if not name.isidentifier():
        raise ValueError(f"batch_function {name!r} is not a Python function name")
    return name


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, list, dict))


def describe_files(
    name: str,
    entry_point: str,
    files: Sequence[str | Path],
    *,
    input_type: dict[str, Any],
    output_type: dict[str, Any],
    unpack: bool = False,
    batch_function: str | None = None,
    detect: bool = True,
    source: str | None = None,
    paths: Sequence[str] | None = None,
) -> ServableDescription:
    """The generic form: files plus an entry point `module:function` among them.

    `batch_function` names a function of the same module taking a list of inputs and returning
    a list of outputs, which the hub calls once for many runs of a batch (docs/hub-run.md).

    With `source` (see `ServableDescription.set_source`) `files` are paths in the source, which
    the hub fetches; nothing is read here, so give the requirements with `add_requirement`.
    """
    module, sep, function = entry_point.partition(":")
    if not sep or not module or not function:
        raise ValueError(f"entry_point {entry_point!r} must look like 'module:function'")
    details: dict[str, Any] = {
        "module": module, "method_name": function, "autobatch": False, "unpack": unpack,
    }  # fmt: skip
    if batch_function is not None:
        details["batch_function"] = _batch_name(batch_function, module)
    description = ServableDescription(
        name, _SHIM, model_type="python function", method_details=details
    )
    if source is not None:
        for path in files:
            description.add_source_file(str(path))
        description.set_source(source, paths=list(paths) if paths else None)
        named = set(description.document["dlhub"]["files"].get("other", []))
    else:
        for path in files:
            description.add_file(path)
        named = set(description.files)
    if f"{module}.py" not in named:
        raise ValueError(f"the entry point's module {module}.py is not among the files")
    description.set_inputs(input_type).set_outputs(output_type)
    if detect and source is None:
        imported: set[str] = set()
        for rel, local in description.files.items():
            if rel.endswith(".py"):
                imported |= imported_modules(local)
        local_names = {Path(p).stem for p in description.files}
        description.add_requirements(detect_requirements(imported, local=local_names))
    return description
