"""Servable documents (DLHub's `{datacite, dlhub, servable}`): checks, requirements and API shapes.

Pure rules shared by the server, the SDK and the CLI. A document is checked in three passes, each
failure an `InvalidInput` naming the path: the shipped JSON Schema (`core/schemas/servable.json`),
the argument-type grammar of every method (`core.types`), then cross-field rules (files named in
`dlhub.files` exist in the bundle, requirements are plain PEP 508 names and versions, a batch
function is a name, of a python servable, the example input fits the declared input type).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from matterhub.core.errors import InvalidInput
from matterhub.core.types import check_type, type_label, types_used, validate

__all__ = [
    "SHIMS",
    "BuildPublic",
    "ServablePublic",
    "ServableVersionPublic",
    "check_document",
    "document_files",
    "is_pipeline",
    "parse_servable_ref",
    "requirements",
    "usage",
]

SHIMS = (
    "python.PythonStaticMethodServable",
    "sklearn.ScikitLearnServable",
    "torch.TorchServable",
    "keras.KerasServable",
    "onnx.ONNXServable",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# PEP 508 project names and a conservative version-specifier set: these go on an installer's
# command line, so anything else (options, URLs, paths) is refused rather than quoted.
_PROJECT = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?(\[[A-Za-z0-9._,-]+\])?$")
_SPEC = re.compile(r"^(===?|~=|!=|<=|>=|<|>)?\s*[A-Za-z0-9.*+!_-]+$")


def parse_servable_ref(ref: str) -> tuple[str, str]:
    """`owner/name` → (owner, name); raises InvalidInput on anything else (DLHub's rule)."""
    owner, sep, name = ref.strip().partition("/")
    if not sep or not owner or not name or "/" in name:
        raise InvalidInput(f"{ref!r} is not a servable name of the form owner/name", field="name")
    return owner, name


def _schema_errors(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    # jsonschema is a server dependency: without it (a bare client install) the SDK still checks
    # types, requirements and files, and the hub applies the schema on upload.
    try:
        from jsonschema import Draft202012Validator

        from matterhub.core.schemas import schema
    except ImportError:
        return []
    out = []
    for error in Draft202012Validator(schema("servable")).iter_errors(dict(document)):
        path = ""
        for part in error.absolute_path:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        out.append((path or "document", error.message))
    return sorted(out)


def check_document(
    document: Any,
    *,
    bundle_files: Iterable[str] | None = None,
    shims: Collection[str] | None = None,
) -> None:
    """Raise InvalidInput (with the path) unless `document` is a valid servable document.

    `shims` are the `servable.shim` values the hub runs (its model adapters); None (the SDK,
    which does not know the hub's) accepts any well-formed one.
    """
    if not isinstance(document, Mapping):
        raise InvalidInput("the servable document is a JSON object", field="document")
    # The type grammar first: its messages name the exact key (`….input.shape[1]`).
    methods = (document.get("servable") or {}).get("methods")
    if isinstance(methods, Mapping):
        for method, spec in methods.items():
            for part in ("input", "output"):
                if isinstance(spec, Mapping) and part in spec:
                    check_type(spec[part], f"servable.methods.{method}.{part}")
    errors = _schema_errors(document)
    if errors:
        path, message = errors[0]
        raise InvalidInput(f"{path}: {message}", field=path)
    dlhub, servable = document["dlhub"], document["servable"]
    shim = servable.get("shim")
    if shims is not None and shim is not None and shim not in shims:
        raise InvalidInput(
            f"no model adapter on this hub runs {shim!r} (installed: {', '.join(sorted(shims))})",
            field="servable.shim",
        )
    if not _NAME.fullmatch(dlhub["name"]):
        raise InvalidInput("name may not contain whitespace or '/'", field="dlhub.name")
    requirements(document)
    if is_pipeline(document):
        _check_pipeline(document)
    _check_batch_functions(document)
    example = servable.get("example")
    run = (servable.get("methods") or {}).get("run")
    if example is not None and run is not None:
        validate(example["input"], run["input"], "servable.example.input")
    if bundle_files is not None:
        present = set(bundle_files)
        for key, path in document_files(document):
            if path not in present:
                raise InvalidInput(f"file {path!r} is named but not in the bundle", field=key)


def _check_batch_functions(document: Mapping[str, Any]) -> None:
    """`method_details.batch_function`: a function name, of a python servable, without autobatch;
    `method_details.fold_rows`: a boolean, of a model servable."""
    servable = document["servable"]
    for method, spec in (servable.get("methods") or {}).items():
        details = spec.get("method_details") or {}
        if "fold_rows" in details:
            _check_fold_rows(servable, method, details["fold_rows"])
        if "batch_function" not in details:
            continue
        field = f"servable.methods.{method}.method_details.batch_function"
        name = details["batch_function"]
        if not isinstance(name, str) or not name.isidentifier() or len(name) > 128:
            raise InvalidInput("a batch function is named by a Python identifier", field=field)
        if servable.get("shim") != SHIMS[0]:
            raise InvalidInput("only a python servable has a batch function", field=field)
        if details.get("autobatch"):
            raise InvalidInput(
                "autobatch already maps the function over a list: no batch function with it",
                field=field,
            )


def _check_fold_rows(servable: Mapping[str, Any], method: str, value: Any) -> None:
    """`method_details.fold_rows`: true or false, of a model servable (not python)."""
    field = f"servable.methods.{method}.method_details.fold_rows"
    if not isinstance(value, bool):
        raise InvalidInput("fold_rows is true or false", field=field)
    if value and servable.get("shim") == SHIMS[0]:
        raise InvalidInput(
            "fold_rows is for model servables (sklearn, torch, keras, onnx); "
            "a python servable names a batch_function",
            field=field,
        )


def is_pipeline(document: Mapping[str, Any]) -> bool:
    """Whether a document describes a pipeline (`servable.type: "pipeline"`)."""
    return bool((document.get("servable") or {}).get("type") == "pipeline")


def _check_pipeline(document: Mapping[str, Any]) -> None:
    """A pipeline has steps only: no files, no requirements, no step that is itself."""
    dlhub = document["dlhub"]
    if dlhub.get("files"):
        raise InvalidInput("a pipeline has no files", field="dlhub.files")
    if (dlhub.get("dependencies") or {}).get("python"):
        raise InvalidInput("a pipeline has no requirements", field="dlhub.dependencies")
    for i, step in enumerate(document["servable"]["steps"]):
        if step["servable"].split("/", 1)[1] == dlhub["name"]:
            raise InvalidInput(
                "a pipeline cannot be its own step", field=f"servable.steps[{i}].servable"
            )


def document_files(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(document path, file path) for every file `dlhub.files` names."""
    out: list[tuple[str, str]] = []
    for key, value in (document.get("dlhub", {}).get("files") or {}).items():
        if isinstance(value, str):
            out.append((f"dlhub.files.{key}", value))
        else:
            out += [(f"dlhub.files.{key}[{i}]", v) for i, v in enumerate(value)]
    return out


def requirements(document: Mapping[str, Any]) -> list[str]:
    """`dlhub.dependencies.python` as installer lines (`scikit-learn==1.5.2`), sorted.

    A bare version means `==`; `""`/`"*"` means any version; a specifier (`>=1.2`) is kept.
    Raises InvalidInput naming the requirement when it is not a plain name and version.
    """
    python = (document.get("dlhub", {}).get("dependencies") or {}).get("python") or {}
    lines = []
    for name, version in python.items():
        field = f"dlhub.dependencies.python.{name}"
        if not _PROJECT.match(name):
            raise InvalidInput(f"{name!r} is not a Python package name", field=field)
        version = str(version).strip()
        if version in ("", "*", "latest"):
            lines.append(name)
            continue
        parts = [p.strip() for p in version.split(",")]
        if not all(_SPEC.match(p) for p in parts):
            raise InvalidInput(f"{version!r} is not a version or version specifier", field=field)
        if len(parts) == 1 and parts[0][0].isalnum():
            lines.append(f"{name}=={parts[0]}")
        else:
            lines.append(name + ",".join(parts))
    return sorted(lines, key=str.lower)


def usage(document: Mapping[str, Any]) -> dict[str, Any]:
    """How to call a servable: per method, its input/output in words and a client snippet."""
    dlhub, servable = document.get("dlhub", {}), document.get("servable", {})
    ref = dlhub.get("shorthand_name") or dlhub.get("name")
    methods = {}
    for method, spec in (servable.get("methods") or {}).items():
        methods[method] = {
            "input": type_label(spec.get("input", {})),
            "output": type_label(spec.get("output", {})),
            "parameters": spec.get("parameters", {}),
            "input_types": sorted(types_used(spec.get("input", {}))),
        }
    return {
        "methods": methods,
        "python": f"Client(url, token).run({ref!r}, inputs)",
        "http": f'POST /servables/{ref}/run {{"inputs": …, "parameters": {{}}}}',
    }


class BuildPublic(BaseModel):
    """A build of one servable version: status, the step reached, the log and its artefacts."""

    id: str
    servable: str = Field(description="owner/name")
    version: str
    status: str = Field(description="pending, running, succeeded or failed")
    step: str | None = Field(description="The step running, or the one that failed.")
    log: str
    started_at: datetime | None
    finished_at: datetime | None
    artefacts: list[str] = Field(default=[], description="Files written: Dockerfile, …")


class ServableVersionPublic(BaseModel):
    """One published version and where its build stands."""

    version: str
    state: str = Field(description="building, ready or failed")
    created_at: datetime
    build_id: str | None
    environment_hash: str | None
    latest: bool = Field(description="Whether this is the version runs use by default.")
    identifier: str | None = Field(
        default=None, description="Its registered PID or DOI (minted when it went live)."
    )


class ServablePublic(BaseModel):
    """A servable as `describe` returns it: its latest document, rights, versions and usage."""

    owner: str
    name: str
    shorthand_name: str
    visible_to: list[str]
    runnable_by: list[str]
    latest_version: str | None = Field(description="The newest ready version, None before one.")
    document: dict[str, Any] = Field(description="The document of the version shown.")
    versions: list[ServableVersionPublic]
    usage: dict[str, Any]
