"""Isolated Python environments for servables, content-addressed by what goes into them.

An environment is a fresh virtual environment with exactly the declared requirements (no system
site-packages: a servable sees only what it declared, plus the stdlib shim). It lives at
`<envs_dir>/<hash>`, where the hash covers the interpreter version, the sorted requirement lines,
the package sources and the shim, so identical requirement sets share one read-only environment
and any change builds a new one. `uv` is used when it is installed (much faster, and its cache
hard-links files into each environment), else `venv` + `pip`; both use one shared cache under
the data folder, so a rebuild downloads nothing. An environment is built in a temporary folder
and renamed into place once complete: a failed or interrupted build leaves nothing half-made,
and hubs on one machine may share the environments' folder (`hub_envs_dir`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from matterhub.hub import shim
from matterhub.hub.adapters import ADAPTERS_TABLE, AdapterSource, adapters_table
from matterhub.sandbox import Limits, Sandbox, SandboxUnavailable, View

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
    # The base interpreter (never the server's own virtual environment, which the installer's
    # sandbox does not show).
    python: str = str(Path(sys.executable).resolve())
    timeout_s: float = 1800.0
    sandbox: Sandbox = field(default_factory=Sandbox)
    # Wheels only unless the operator allows source builds: a wheel installs without running
    # any of the package's code, a source build runs its build scripts (in the sandbox).
    source_builds: bool = False
    # The model adapters that bring their own loader module: each environment holds a copy.
    adapters: tuple[AdapterSource, ...] = ()
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
        if self.source_builds:  # an environment that ran build scripts is not a wheels-only one
            payload["source_builds"] = True
        if self.adapters:  # (absent otherwise, so the built-in adapters alone keep old hashes)
            payload["adapters"] = {
                a.shim: [a.module, a.arrays, hashlib.sha256(a.path.read_bytes()).hexdigest()]
                for a in self.adapters
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
            # The installer's sandbox sees (and may write) only this folder: the environment
            # is made inside it, then moved into place.
            # Hubs may share the folder (`hub_envs_dir`): each build stages in its own box.
            box = self.envs_dir / f".{env_hash}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
            shutil.rmtree(box, ignore_errors=True)
            staging = box / "env"
            try:
                box.mkdir()
                self._create(box, staging, requirements, log)
                staging.chmod(0o755)  # read (bound read-only) by every sandboxed worker
                shutil.copy2(shim.__file__, staging / SHIM_NAME)
                (staging / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
                names = [SHIM_NAME, "requirements.txt", _READY]
                if self.adapters:
                    self._copy_adapters(staging)
                    names += [ADAPTERS_TABLE, *(a.module for a in self.adapters)]
                (staging / _READY).write_text(env_hash)
                for name in names:
                    (staging / name).chmod(0o644)
                if (target / _READY).exists():  # another hub sharing the folder finished first
                    log(f"environment {env_hash} was built meanwhile; using it")
                    return env_hash
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
            finally:
                shutil.rmtree(box, ignore_errors=True)
        return env_hash

    def _copy_adapters(self, staging: Path) -> None:
        """Each adapter's loader module, and the table the shim finds them by."""
        for adapter in self.adapters:
            target = staging / adapter.module
            target.parent.mkdir(mode=0o755, exist_ok=True)
            target.parent.chmod(0o755)
            shutil.copyfile(adapter.path, target)
        (staging / ADAPTERS_TABLE).write_text(adapters_table(self.adapters))

    def _create(
        self, box: Path, where: Path, requirements: Sequence[str], log: Callable[[str], None]
    ) -> None:
        tool = self.tool()
        log(f"installer: {tool}")
        python = where / "bin" / "python"
        if tool == "pip":
            self._run([self.python, "-m", "venv", str(where)], box, log)
            if requirements:
                cmd = [str(python), "-m", "pip", "install", "--no-input", "--cache-dir"]
                cmd += [str(self.cache_dir / "pip"), *self.sources.args()]
                if not self.source_builds:
                    cmd += ["--only-binary", ":all:"]
                cmd += requirements
                self._run(cmd, box, log)
            return
        # Each install writes into its own folder only, so uv copies from the cache (a hard
        # link cannot cross the sandbox's bind mounts).
        env = {"UV_CACHE_DIR": str(self.cache_dir / "uv"), "UV_NO_CONFIG": "1"}
        env["UV_LINK_MODE"] = "copy"
        self._run([tool, "venv", "--quiet", "--python", self.python, str(where)], box, log, env)
        if requirements:
            # Bytecode now: workers see the environment read-only and could never write it,
            # so without it every cold start would compile the whole dependency tree again.
            cmd = [tool, "pip", "install", "--compile-bytecode", "--python", str(python)]
            cmd += self.sources.args()
            if not self.source_builds:
                cmd.append("--no-build")
            self._run([*cmd, *requirements], box, log, env)

    def _run(
        self,
        cmd: list[str],
        where: Path,
        log: Callable[[str], None],
        env: dict[str, str] | None = None,
    ) -> None:
        """Run one installer command in the sandbox: the network, but no view of the hub.

        It sees the system, the base interpreter, the installer, local package folders, the
        shared package cache and the environment being made — never the data folder, the
        catalog, the secret or the server's environment variables; it runs as the install uid.
        """
        log("$ " + " ".join(cmd))
        uid = self.sandbox.install_uid()
        self.sandbox.give(where, uid)
        self._give_cache(uid)
        variables = {**_installer_variables(), **(env or {})}
        tools = tuple(Path(c) for c in cmd[:1] if Path(c).is_absolute() and Path(c).exists())
        view = View(
            read_only=tuple(p for p in tools if not _under(p, where))
            + _local_sources([*self.sources.args(), *variables.values()]),
            writable=(where, self.cache_dir),
            network=True,
            python=Path(self.python),
        )
        limits = Limits(
            memory_mb=0,
            cpu_s=self.timeout_s,
            wall_s=self.timeout_s,
            processes=256,
            open_files=4096,
            output_mb=4096,
            scratch_mb=2048,
        )
        try:
            done = self.sandbox.run(cmd, view, limits, env=variables, uid=uid, umask=0o022)
        except subprocess.TimeoutExpired:
            raise BuildStepFailed(
                "environment", f"{cmd[0]} timed out after {self.timeout_s:.0f} s"
            ) from None
        except SandboxUnavailable as exc:
            raise BuildStepFailed("environment", exc.detail) from None
        output = (done.stdout + done.stderr).strip()
        if output:
            log(output)
        if done.returncode != 0:
            tail = "\n".join(output.splitlines()[-15:])
            if not self.source_builds and _needs_a_build(output):
                tail += (
                    "\n(a requirement has no wheel for this platform and this hub installs "
                    "wheels only; an administrator can allow source builds: "
                    "MATTERHUB_HUB_SOURCE_BUILDS)"
                )
            raise BuildStepFailed("environment", f"installing the requirements failed:\n{tail}")

    def _give_cache(self, uid: int | None) -> None:
        """The shared package cache belongs to the install uid (once; new files are its own)."""
        if uid is None:
            return
        if self.cache_dir.stat().st_uid != uid:
            self.sandbox.give(self.cache_dir, uid)


_PASSED = ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR")


def _installer_variables() -> dict[str, str]:
    """The server's variables an installer may see: its own (PIP_*, UV_*) and proxies only."""
    out = {}
    for name, value in os.environ.items():
        if name.startswith(("PIP_", "UV_")) or name.lower() in _PASSED or name in _PASSED:
            out[name] = value
    return out


def _needs_a_build(output: str) -> bool:
    """Whether an installer failed because only a source distribution was found."""
    text = output.lower()
    return (
        "building source distributions is disabled" in text
        or "--no-build" in text
        or ("no matching distribution" in text)
    )


def _local_sources(values: Sequence[str]) -> tuple[Path, ...]:
    """Local folders named by package-source options (find-links, file:// indexes)."""
    found: list[Path] = []
    for value in values:
        for item in str(value).split():
            text = item.removeprefix("file://")
            if text.startswith("/") and Path(text).exists():
                path = Path(text) if Path(text).is_dir() else Path(text).parent
                if path not in found:
                    found.append(path)
    return tuple(found)


def _under(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _beside_python(name: str) -> str | None:
    """A tool installed in the same environment as the server (e.g. `.venv/bin/uv`)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else None
