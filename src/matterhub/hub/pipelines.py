"""Pipelines: a servable whose `servable.steps` are other servables, run in order on the server.

A pipeline document has `servable.type: "pipeline"` and no files or requirements:
```
"servable": {"type": "pipeline", "steps": [
    {"servable": "alice/featurize"},                              # gets the pipeline's input
    {"servable": "alice/gap", "version": "1712345678901", "input": "$.features",
     "parameters": {"scale": 2}}]}
```
Each step gets a part of the previous output chosen by its `input` mapping, a small key path:
`$` (all of it, the default), `$.key.other[0]` (dict keys and list indices), or an integer `n`
(= `$[n]`). Its `parameters` merge over the step's declared defaults, and a caller's
`parameters: {"<step index>": {…}}` over those.

Build (`check_steps`): every step must exist, be ready, not be a pipeline, and be runnable by the
publisher; where both ends are declared, each step's input type must accept the part of the
previous output its mapping selects. The pipeline's `methods.run` is filled in (input of the
first step, output of the last) when the document has none, so it is discovered like any
servable. Run (`run_calls`): the steps go through `RunService.execute` one after another, so each
step keeps its own warm workers and memoization; the first failure ends the run and names the
step. Rights: `RunService.target` resolves every step as the caller (403 names the step).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from matterhub.core.errors import InvalidInput, MatterHubError
from matterhub.core.identity import Identity
from matterhub.core.servables import is_pipeline
from matterhub.core.types import type_label, validate
from matterhub.hub.cache import digest
from matterhub.hub.environments import BuildStepFailed
from matterhub.hub.runtime.base import Call, CallResult

if TYPE_CHECKING:
    from matterhub.hub.runtime.service import RunService, Target

__all__ = [
    "PIPELINE_ENV",
    "PipelineStep",
    "StepSpec",
    "apply_mapping",
    "check_steps",
    "parse_mapping",
    "resolve_steps",
    "run_calls",
    "steps_of",
]

PIPELINE_ENV = "pipeline"  # the environment hash of a ready pipeline: it has no environment
_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(-?[0-9]+)\]")
_NUMBERS = {"number", "integer", "float"}


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step as the document declares it."""

    index: int
    ref: str
    version: str | None
    path: tuple[str | int, ...]
    parameters: dict[str, Any]

    @property
    def label(self) -> str:
        """How messages name the step: `steps[1] (alice/gap)`."""
        return f"steps[{self.index}] ({self.ref})"


@dataclass(frozen=True, slots=True)
class PipelineStep:
    """A step resolved for a caller: its declaration and the ready version it runs."""

    spec: StepSpec
    target: Target


def parse_mapping(mapping: str | int | None) -> tuple[str | int, ...]:
    """`$`, `$.a.b[0]` or an index → the key path; raises InvalidInput on anything else."""
    if mapping is None:
        return ()
    if isinstance(mapping, int) and not isinstance(mapping, bool):
        return (mapping,)
    if not isinstance(mapping, str) or not mapping.startswith("$"):
        raise InvalidInput(f"{mapping!r} is not a mapping ('$', '$.key[0]' or n)", field="input")
    parts: list[str | int] = []
    rest = mapping[1:]
    while rest:
        found = _PART.match(rest)
        if found is None:
            raise InvalidInput(f"{mapping!r} is not a key path like '$.key[0]'", field="input")
        parts.append(found.group(1) if found.group(1) is not None else int(found.group(2)))
        rest = rest[found.end() :]
    return tuple(parts)


def apply_mapping(value: Any, path: Sequence[str | int]) -> Any:
    """The part of `value` a key path selects; KeyError naming the missing part otherwise."""
    where = "$"
    for part in path:
        if isinstance(part, int):
            where += f"[{part}]"
            if not isinstance(value, list) or not -len(value) <= part < len(value):
                raise KeyError(f"{where} is not in the previous output")
        else:
            where += f".{part}"
            if not isinstance(value, dict) or part not in value:
                raise KeyError(f"{where} is not in the previous output")
        value = value[part]
    return value


def steps_of(document: dict[str, Any]) -> list[StepSpec]:
    """The steps of a pipeline document (checked against the schema on publish)."""
    out = []
    for i, step in enumerate(document["servable"]["steps"]):
        try:
            path = parse_mapping(step.get("input"))
        except InvalidInput as exc:
            raise InvalidInput(exc.detail, field=f"servable.steps[{i}].input") from None
        version = step.get("version")
        out.append(
            StepSpec(
                i,
                step["servable"],
                str(version) if version is not None else None,
                path,
                dict(step.get("parameters") or {}),
            )
        )
    return out


# build ---------------------------------------------------------------------------------------


def _select_type(spec: dict[str, Any], path: Sequence[str | int]) -> dict[str, Any] | None:
    """The declared type of the part a key path selects, or None when it cannot be known."""
    for part in path:
        kind = spec.get("type")
        if isinstance(part, int) and kind in ("list", "ndarray") and "item_type" in spec:
            spec = spec["item_type"]
        elif isinstance(part, int) and kind == "tuple":
            elements = spec.get("element_types") or []
            if not -len(elements) <= part < len(elements):
                return None
            spec = elements[part]
        elif isinstance(part, str) and kind == "dict" and part in (spec.get("properties") or {}):
            spec = spec["properties"][part]
        else:
            return None
    return spec


def incompatible(output: dict[str, Any] | None, accepted: dict[str, Any]) -> str | None:
    """Why a value of type `output` cannot be the input `accepted`, or None (also if unknown)."""
    if output is None:
        return None
    got, want = output.get("type"), accepted.get("type")
    if got == want or want == "python object" or got == "python object":
        return None
    if got in _NUMBERS and want in _NUMBERS and not (got == "float" and want == "integer"):
        return None
    if {got, want} <= {"list", "ndarray", "tuple"}:
        return None
    return f"it gives {type_label(output)} where {type_label(accepted)} is expected"


def check_steps(
    document: dict[str, Any],
    lookup: Callable[[str, str | None], dict[str, Any]],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The build of a pipeline: each step runnable by the publisher and types that connect.

    `lookup(ref, version)` returns the document of a ready step version the publisher may run
    (raising NotFound or PermissionDenied). Returns the document with `methods.run` filled in.

    Raises:
        BuildStepFailed: at `steps`, naming the step that is missing, not runnable or mismatched.
    """
    steps = steps_of(document)
    runs: list[dict[str, Any]] = []
    for step in steps:
        try:
            found = lookup(step.ref, step.version)
        except MatterHubError as exc:
            raise BuildStepFailed("steps", f"{step.label}: {exc.detail}") from None
        if is_pipeline(found):
            raise BuildStepFailed("steps", f"{step.label} is a pipeline; steps must be servables")
        run = found["servable"]["methods"]["run"]
        log(
            f"{step.label}: version {found['dlhub'].get('version')}, "
            f"{type_label(run['input'])} → {type_label(run['output'])}"
        )
        if runs:
            given = _select_type(runs[-1]["output"], step.path)
            why = incompatible(given, run["input"])
            if why is not None:
                raise BuildStepFailed("steps", f"{step.label} cannot follow the step before: {why}")
        elif step.path:
            raise BuildStepFailed("steps", f"{step.label}: the first step takes the input as is")
        runs.append(run)
    final: dict[str, Any] = {**document, "servable": dict(document["servable"])}
    methods = dict(final["servable"].get("methods") or {})
    if "run" not in methods:
        methods["run"] = {
            "input": runs[0]["input"],
            "output": runs[-1]["output"],
            "parameters": {},
            "method_details": {"steps": len(steps)},
        }
        log("methods.run: the first step's input, the last step's output")
    final["servable"]["methods"] = methods
    example = final["servable"].get("example")
    if example is not None:
        try:
            validate(example["input"], methods["run"]["input"], "servable.example.input")
        except InvalidInput as exc:
            raise BuildStepFailed("steps", exc.detail) from None
    return final


# run -----------------------------------------------------------------------------------------


def resolve_steps(
    runs: RunService, identity: Identity, document: dict[str, Any]
) -> tuple[PipelineStep, ...]:
    """Each step's ready version, as `identity` may run it (errors name the step)."""
    out = []
    for step in steps_of(document):
        try:
            target = runs.resolve(identity, step.ref, step.version)
        except MatterHubError as exc:
            raise type(exc)(
                f"{step.label}: {exc.detail}", field=f"servable.steps[{step.index}]"
            ) from None
        out.append(PipelineStep(step, target))
    return tuple(out)


def run_calls(
    runs: RunService, target: Target, calls: Sequence[Call], caller: dict[str, Any], debug: bool
) -> tuple[list[CallResult], list[list[dict[str, Any]]]]:
    """Run each call through the steps; one result per call and the per-step timings of each."""
    results, timings = [], []
    for call in calls:
        result, steps = _run_one(runs, target, call, caller, debug)
        results.append(result)
        timings.append(steps)
    return results, timings


def _run_one(
    runs: RunService, target: Target, call: Call, caller: dict[str, Any], debug: bool
) -> tuple[CallResult, list[dict[str, Any]]]:
    value: Any = call.inputs
    records: list[dict[str, Any]] = []
    out, err = [], []
    wall = 0.0
    given = call.parameters or {}
    for step in target.steps:
        spec, started = step.spec, time.perf_counter()
        label = spec.label
        try:
            value = apply_mapping(value, spec.path)
            method = step.target.method("run")
            validate(value, method["input"], "inputs")
        except (KeyError, InvalidInput) as exc:
            text = exc.args[0] if isinstance(exc, KeyError) else exc.detail
            records.append({"step": spec.index, "servable": spec.ref, "ok": False})
            return CallResult.failure("PipelineStepFailed", f"{label}: {text}"), records
        extra = given.get(str(spec.index))
        parameters = {
            **(method.get("parameters") or {}),
            **spec.parameters,
            **(extra if isinstance(extra, dict) else {}),
        }
        hashes = {"input_hash": digest(value), "parameters_hash": digest(parameters)}
        outcome = runs.execute(
            step.target, [Call(value, parameters)], [hashes], caller, debug=debug
        )[0]
        step_run = float(outcome.provenance.get("timings", {}).get("run_s", 0.0))
        wall += step_run
        records.append(
            {
                "step": spec.index,
                "servable": spec.ref,
                "version": step.target.runtime.version,
                "ok": outcome.ok,
                "cached": outcome.cached,
                "run_s": step_run,
                "total_s": time.perf_counter() - started,
            }
        )
        if debug:
            out.append(f"[{label}]\n{outcome.stdout}" if outcome.stdout else "")
            err.append(f"[{label}]\n{outcome.stderr}" if outcome.stderr else "")
        if not outcome.ok:
            error = outcome.error or {}
            failed = CallResult.failure(
                error.get("type") or "Error", f"{label}: {error.get('message') or ''}"
            )
            failed.traceback, failed.wall_s = error.get("traceback"), wall
            failed.stdout, failed.stderr = "".join(out), "".join(err)
            return failed, records
        value = outcome.output
    done = CallResult(ok=True, output=value, wall_s=wall)
    done.stdout, done.stderr = "".join(out), "".join(err)
    return done, records
