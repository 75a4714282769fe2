"""The build of one servable version: unpack → environment → load + example → compare → recipes.

Each step is recorded on the `builds` row before it starts, so a failure names the step that
failed; the log keeps the installer's and the servable's own output. A build never touches the
version that is live: the registry flips the live version only after every step passed.

On disk (the runtime of issue #8 starts warm workers from here):
```
<hub_dir>/envs/<environment_hash>/bin/python   the isolated environment (+ matterhub_shim.py)
<hub_dir>/versions/<version id>/files/         the servable's files
<hub_dir>/versions/<version id>/document.json  its final document
<hub_dir>/versions/<version id>/build/         Dockerfile, apptainer.def, requirements.txt
```
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matterhub.blobs import BlobStore
from matterhub.core.servables import requirements
from matterhub.hub.environments import SHIM_NAME, BuildStepFailed, EnvironmentBuilder
from matterhub.hub.recipes import apptainer_definition, dockerfile
from matterhub.sandbox import Sandbox, SandboxUnavailable, View

__all__ = ["ARTEFACTS", "BuildInput", "Builder", "mismatch"]

ARTEFACTS = ("Dockerfile", "apptainer.def", "requirements.txt")
DEFAULT_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class BuildInput:
    """What a build needs from the catalog (read in one transaction, then released)."""

    version_id: str
    storage_prefix: str
    document: dict[str, Any]


def mismatch(actual: Any, expected: Any, tolerance: float, path: str = "output") -> str | None:
    """Where `actual` first differs from `expected` (numbers within `tolerance`), or None."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return None if actual == expected else path
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        ok = math.isclose(actual, expected, rel_tol=tolerance, abs_tol=tolerance)
        return None if ok else path
    if isinstance(expected, list) and isinstance(actual, list):
        if len(actual) != len(expected):
            return f"{path} (length {len(actual)}, expected {len(expected)})"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            found = mismatch(a, e, tolerance, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        if set(actual) != set(expected):
            return f"{path} (keys {sorted(actual)}, expected {sorted(expected)})"
        for key in expected:
            found = mismatch(actual[key], expected[key], tolerance, f"{path}.{key}")
            if found:
                return found
        return None
    return None if actual == expected else path


class Builder:
    """Runs the steps of one build; `step` and `log` report progress to the registry."""

    def __init__(
        self,
        blobs: BlobStore,
        envs: EnvironmentBuilder,
        *,
        hub_dir: Path,
        example_timeout_s: float,
        sandbox: Sandbox,
    ) -> None:
        self._blobs = blobs
        self._envs = envs
        self._hub_dir = hub_dir
        self._example_timeout_s = example_timeout_s
        self._sandbox = sandbox

    def version_dir(self, version_id: str) -> Path:
        """Where a version's files, document and artefacts live on this host."""
        return self._hub_dir / "versions" / version_id

    def run(self, job: BuildInput, step: Callable[[str], None], log: Callable[[str], None]) -> str:
        """Build; returns the environment hash. Raises BuildStepFailed naming the failed step."""
        step("unpack")
        where = self.version_dir(job.version_id)
        self._unpack(job, where, log)
        step("environment")
        reqs = requirements(job.document)
        log("requirements: " + (", ".join(reqs) or "(none)"))
        env_hash = self._envs.ensure(reqs, log)
        step("example")
        self._check(job.document, env_hash, where, log)
        step("recipes")
        self._recipes(job, reqs, where, log)
        return env_hash

    def _unpack(self, job: BuildInput, where: Path, log: Callable[[str], None]) -> None:
        shutil.rmtree(where, ignore_errors=True)
        files = where / "files"
        files.mkdir(parents=True)
        prefix = job.storage_prefix + "files/"
        count = 0
        for key in self._blobs.list(prefix):
            target = files / key[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                for chunk in self._blobs.stream(key):
                    out.write(chunk)
            count += 1
        (where / "document.json").write_text(json.dumps(job.document, indent=1))
        # The sandbox's unprivileged uid reads these, bound read-only.
        self._sandbox.readable(where)
        log(f"unpacked {count} file(s)")

    def _check(
        self, document: dict[str, Any], env_hash: str, where: Path, log: Callable[[str], None]
    ) -> None:
        """Load the model once in its environment and run the example; compare with the output."""
        python = self._envs.interpreter(env_hash)
        shim = self._envs.path(env_hash) / SHIM_NAME
        cmd = [str(python), "-I", str(shim), "check", str(where / "files")]
        cmd.append(str(where / "document.json"))
        # The servable's own code runs here for the first time: in the same sandbox as its
        # workers, with the limits it asked for within the server's, and its own wall time.
        limits = self._sandbox.maxima.clamp(document["servable"].get("options") or {})
        limits = dataclasses.replace(
            limits, wall_s=self._example_timeout_s, cpu_s=self._example_timeout_s
        )
        view = View(
            read_only=(self._envs.path(env_hash), where / "files", where / "document.json"),
            python=python,
        )
        log("limits: " + json.dumps(limits.public(), sort_keys=True))
        try:
            done = self._sandbox.run(cmd, view, limits)
        except subprocess.TimeoutExpired:
            raise BuildStepFailed(
                "example", f"the example did not finish in {self._example_timeout_s:.0f} s"
            ) from None
        except SandboxUnavailable as exc:
            raise BuildStepFailed("example", exc.detail) from None
        if done.stderr.strip():
            log("servable stderr:\n" + done.stderr.strip()[-4000:])
        lines = done.stdout.strip().splitlines()
        try:
            result = json.loads(lines[-1])
        except (IndexError, ValueError):
            raise BuildStepFailed(
                "load", f"the servable process died (exit {done.returncode})"
            ) from None
        if not result.get("ok"):
            failed = "load" if result.get("step") == "load" else "example"
            what = "loading the servable" if failed == "load" else "running the example"
            log(result.get("traceback", ""))
            raise BuildStepFailed(
                failed, f"{what} raised {result.get('error_type')}: {result.get('error')}"
            )
        log(f"loaded in {result['load_s']:.3f} s")
        example = document["servable"].get("example")
        if example is None:
            log("no example input: the model was loaded but not run")
            return
        log(f"example ran in {result['run_s']:.3f} s")
        if "output" in example:
            tolerance = float(example.get("tolerance", DEFAULT_TOLERANCE))
            where_ = mismatch(result["output"], example["output"], tolerance)
            if where_ is not None:
                raise BuildStepFailed(
                    "compare",
                    f"the example's output differs at {where_} (tolerance {tolerance}):\n"
                    f"  expected: {json.dumps(example['output'])[:2000]}\n"
                    f"  received: {json.dumps(result['output'])[:2000]}",
                )
            log("the example's output matches the expected output")
        if "batch_output" in result:
            self._check_batch(result, float(example.get("tolerance", DEFAULT_TOLERANCE)), log)

    @staticmethod
    def _check_batch(result: dict[str, Any], tolerance: float, log: Callable[[str], None]) -> None:
        """The batch function, given the example alone, answers a list of its one output."""
        many = result["batch_output"]
        if not isinstance(many, list) or len(many) != 1:
            raise BuildStepFailed(
                "compare",
                "the batch function, given a list of the example's input, answered "
                f"{json.dumps(many)[:200]} (a list of one output was expected)",
            )
        where_ = mismatch(many[0], result["output"], tolerance)
        if where_ is not None:
            raise BuildStepFailed(
                "compare",
                f"the batch function's output for the example differs from the function's at "
                f"{where_} (tolerance {tolerance})",
            )
        log("the batch function answers the example as the function does")

    def _recipes(
        self, job: BuildInput, reqs: list[str], where: Path, log: Callable[[str], None]
    ) -> None:
        build = where / "build"
        build.mkdir(exist_ok=True)
        texts = {
            "Dockerfile": dockerfile(job.document, reqs),
            "apptainer.def": apptainer_definition(job.document, reqs),
            "requirements.txt": "".join(f"{r}\n" for r in reqs),
        }
        for name, text in texts.items():
            (build / name).write_text(text)
            self._blobs.put(f"{job.storage_prefix}build/{name}", text.encode())
        log("wrote " + ", ".join(texts))
