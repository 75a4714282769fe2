"""Isolated Python environments for servables, content-addressed by what goes into them.

An environment is a fresh virtual environment with exactly the declared requirements (no system
site-packages: a servable sees only what it declared, plus the stdlib shim). It lives at
`<envs_dir>/<hash>`, where the hash covers the interpreter version, the sorted requirement lines,
the package sources and the shim, so identical requirement sets share one read-only environment
and any change builds a new one. `uv` is used when it is installed (much faster, and its cache
hard-links files into each environment), else `venv` + `pip`; both use one shared cache under
the data folder, so a rebuild downloads nothing. An environment is built in a temporary folder
and renamed into place once complete: a failed or interrupted build leaves nothing half-made.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from matterhub.hub import shim

__all__ = ["BuildStepFailed", "EnvironmentBuilder", "PackageSources"]

SHIM_NAME = "matterhub_shim.py"
_READY = ".matterhub-ready"


class BuildStepFailed(Exception):
    """A build step failed; `step` names it and the message says why (installer output included)."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


@dataclass(frozen=True, slots=True)
class PackageSources:
    """Where installers look for packages (plain values, so the hub never reads settings)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()

    def args(self) -> list[str]:
        """The same options for pip and `uv pip`."""
        out = ["--index-url", self.index_url] if self.index_url else []
        for url in self.extra_index_urls:
            out += ["--extra-index-url", url]
        for link in self.find_links:
            out += ["--find-links", link]
        return out


@dataclass
class EnvironmentBuilder:
    """Builds (or finds) the environment for a requirement set."""

    envs_dir: Path
    cache_dir: Path
    sources: PackageSources = field(default_factory=PackageSources)
    installer: str = "auto"  # auto | uv | pip
    python: str = sys.executable
    timeout_s: float = 1800.0
    _locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def tool(self) -> str:
        """`uv` (its path) when usable, else `pip`."""
        if self.installer in ("auto", "uv"):
            found = shutil.which("uv") or _beside_python("uv")
            if found:
                return found
            if self.installer == "uv":
                raise BuildStepFailed("environment", "installer 'uv' requested but not found")
        return "pip"

    def environment_hash(self, requirements: Sequence[str]) -> str:
        """The content address of an environment with these requirements."""
        digest = hashlib.sha256()
        payload = {
            "python": list(sys.version_info[:3]),
            "requirements": sorted(requirements, key=str.lower),
            "sources": self.sources.args(),
            "shim": hashlib.sha256(Path(shim.__file__).read_bytes()).hexdigest(),
        }
        digest.update(json.dumps(payload, sort_keys=True).encode())
        return digest.hexdigest()[:32]

    def path(self, env_hash: str) -> Path:
        """Where the environment with this hash lives."""
        return self.envs_dir / env_hash

    def interpreter(self, env_hash: str) -> Path:
        """The environment's Python."""
        return self.path(env_hash) / "bin" / "python"

    def ensure(self, requirements: Sequence[str], log: Callable[[str], None]) -> str:
        """Build the environment unless a complete one exists; returns its hash.

        Raises:
            BuildStepFailed: the installer failed (its output is in the message).
        """
        env_hash = self.environment_hash(requirements)
        with self._guard:
            lock = self._locks.setdefault(env_hash, threading.Lock())
        with lock:
            target = self.path(env_hash)
            if (target / _READY).exists():
                log(f"environment {env_hash} exists; reusing it")
                return env_hash
            self.envs_dir.mkdir(parents=True, exist_ok=True)
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            staging = self.envs_dir / f".{env_hash}.{os.getpid()}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            try:
                self._create(staging, requirements, log)
                shutil.copy2(shim.__file__, staging / SHIM_NAME)
                (staging / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
                (staging / _READY).write_text(env_hash)
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return env_hash

    def _create(self, where: Path, requirements: Sequence[str], log: Callable[[str], None]) -> None:
        tool = self.tool()
        log(f"installer: {tool}")
        python = where / "bin" / "python"
        if tool == "pip":
            self._run([self.python, "-m", "venv", str(where)], log)
            if requirements:
                cmd = [str(python), "-m", "pip", "install", "--no-input", "--cache-dir"]
                cmd += [str(self.cache_dir / "pip"), *self.sources.args(), *requirements]
                self._run(cmd, log)
            return
        env = {"UV_CACHE_DIR": str(self.cache_dir / "uv"), "UV_NO_CONFIG": "1"}
        self._run([tool, "venv", "--quiet", "--python", self.python, str(where)], log, env)
        if requirements:
            cmd = [tool, "pip", "install", "--python", str(python), *self.sources.args()]
            self._run([*cmd, *requirements], log, env)

    def _run(
        self, cmd: list[str], log: Callable[[str], None], env: dict[str, str] | None = None
    ) -> None:
        log("$ " + " ".join(cmd))
        try:
            done = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                env={**os.environ, **(env or {})},
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BuildStepFailed(
                "environment", f"{cmd[0]} timed out after {self.timeout_s:.0f} s"
            ) from None
        output = (done.stdout + done.stderr).strip()
        if output:
            log(output)
        if done.returncode != 0:
            tail = "\n".join(output.splitlines()[-15:])
            raise BuildStepFailed("environment", f"installing the requirements failed:\n{tail}")


def _beside_python(name: str) -> str | None:
    """A tool installed in the same environment as the server (e.g. `.venv/bin/uv`)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else None
