"""The command line that starts one worker: under bubblewrap when it is installed, else bare.

The sandbox (Debian's `bubblewrap`): no network (`--unshare-net`, plus pid/ipc/uts namespaces),
the host root mounted read-only, `/tmp` and the hub's data folder hidden behind empty read-only
tmpfs mounts (so a servable sees no catalog, secret or other servable), then only its own
environment and files bound back read-only and one private scratch folder writable. The worker
dies with its parent. Memory and CPU-time limits are set by the worker on itself (`worker.py`).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from matterhub.core.errors import InvalidInput
from matterhub.hub.runtime.base import WorkerSpec

__all__ = ["WORKER_SCRIPT", "Sandbox"]

log = logging.getLogger(__name__)
WORKER_SCRIPT = Path(__file__).with_name("worker.py")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


class Sandbox:
    """Builds worker command lines; `mode` is 'auto' (bwrap when found), 'bwrap' or 'none'."""

    def __init__(self, mode: str, *, hidden: tuple[Path, ...] = ()) -> None:
        if mode not in ("auto", "bwrap", "none"):
            raise InvalidInput(f"unknown sandbox {mode!r}", field="hub_sandbox")
        self.bwrap = shutil.which("bwrap") if mode in ("auto", "bwrap") else None
        if mode == "bwrap" and self.bwrap is None:
            raise InvalidInput(
                "hub_sandbox is 'bwrap' but bubblewrap is not installed (apt-get install "
                "bubblewrap)",
                field="hub_sandbox",
            )
        self.hidden = tuple(p.resolve() for p in hidden)
        if self.bwrap is None:
            log.warning(
                "!!! SERVABLES RUN UNSANDBOXED: bubblewrap (`bwrap`) is %s. A servable can read "
                "and write anything this server can and reach the network. Install bubblewrap "
                "(Linux) for network-less, read-only sandboxes. !!!",
                "disabled by hub_sandbox=none" if mode == "none" else "not installed",
            )

    @property
    def enabled(self) -> bool:
        """Whether workers run inside bubblewrap."""
        return self.bwrap is not None

    def environment(self, spec: WorkerSpec, scratch: Path) -> dict[str, str]:
        """The worker's whole environment: nothing of the server's leaks in."""
        env = {
            "PATH": f"{spec.python.parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(scratch),
            "TMPDIR": str(scratch),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
        }
        env.update({name: str(spec.threads) for name in _THREAD_VARS})
        return env

    def command(self, spec: WorkerSpec, scratch: Path) -> list[str]:
        """The argv that starts a worker for `spec` with `scratch` as its only writable folder."""
        inner = [
            str(spec.python),
            "-u",
            str(WORKER_SCRIPT),
            str(spec.shim),
            str(spec.files_dir),
            str(spec.document_path),
            str(spec.memory_mb),
        ]
        if self.bwrap is None:
            return inner
        argv = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        hidden = [Path("/tmp"), *self.hidden]
        for path in hidden:
            argv += ["--tmpfs", str(path)]
        for path in (spec.env_dir, spec.files_dir, spec.document_path, WORKER_SCRIPT):
            real = str(path.resolve())
            argv += ["--ro-bind", real, real]
        argv += ["--bind", str(scratch), str(scratch)]
        for path in hidden:  # empty and read-only: the only writable place is the scratch
            argv += ["--remount-ro", str(path)]
        argv += [
            "--unshare-net",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--die-with-parent",
            "--new-session",
            "--chdir",
            str(scratch),
            "--",
            *inner,
        ]
        return argv


def default_sandbox_note() -> str:
    """A line for `matterhub serve` and the health page."""
    return (
        f"python {sys.version.split()[0]}; bwrap {'found' if shutil.which('bwrap') else 'absent'}"
    )
