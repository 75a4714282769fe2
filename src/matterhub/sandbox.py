"""The one sandbox: every execution of code a user published (or installs) starts here.

A sandboxed process runs under bubblewrap in its own pid, ipc, uts, cgroup, mount and (unless
asked for) network namespaces and never as the server's user:

- server running as root: bwrap sets up the mounts with the server's privileges, then
  `prlimit` sets the limits and `setpriv` drops to an unprivileged uid/gid of the sandbox range
  (no supplementary groups, empty capability sets *and* bounding set, no-new-privs) before the
  servable's interpreter starts — so the process holds no capability in any namespace, least of
  all the initial one that owns the host's resources;
- server running as an ordinary user: bwrap builds a user namespace of its own
  (`--unshare-all`, `--disable-userns`, `--cap-drop ALL`), so the process has no capability
  there either, and no more rights on the host than the server's user.

It sees only what it needs, read-only: /usr (and the /bin, /lib… links to it), a few files of
/etc (the dynamic loader's cache, time zone; TLS roots and resolver only for installs, which
need the network), the base Python install its environment was made from, its environment, its
files; a fresh /proc of its own pid namespace, a minimal /dev and a size-limited private tmpfs
for /tmp (its home, scratch and working directory). Never /root, /home, /etc/shadow, the data
folder, the source tree, the hub's environment variables or another servable.

A seccomp filter (libseccomp, through pyseccomp) refuses the calls that re-arrange namespaces or
reach into the kernel: mount and the new mount API, pivot_root, setns, unshare, clone/clone3
with namespace flags, ptrace and process_vm_*, keyctl, bpf, perf_event_open, module and kexec
loading, userfaultfd, handle-based opens, TIOCSTI/TIOCLINUX, and more. Limits come from rlimits
set outside the servable's reach (hard limits, below what it could raise): address space, CPU
seconds, processes, open files, file size (which caps every file it writes, its stderr log
included) and no core dumps; the host enforces wall time and output size.

Where no working sandbox exists (no bubblewrap, user namespaces off, no libseccomp), nothing
runs unless the operator chose `hub_sandbox = "none"` explicitly — and then it says so loudly.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from matterhub.core.errors import ExecutorError, InvalidInput

__all__ = [
    "Limits",
    "Sandbox",
    "SandboxUnavailable",
    "View",
    "python_home",
]

log = logging.getLogger(__name__)

Mode = Literal["bwrap", "none"]

# Files of /etc a Python process reads at start or on common imports; nothing secret.
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "mime.types")
# Installers also need name resolution and TLS roots (they reach the package index).
_ETC_NET = (
    "resolv.conf",
    "hosts",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
    "pip.conf",
    "xdg/pip",
)
_TOP_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")

# Namespace flags of clone(2); a raw clone with any of them would make a namespace.
_CLONE_NS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
    0x00000080,  # CLONE_NEWTIME
)
_DENIED = (
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "setns",
    "unshare",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "vhangup",
    "iopl",
    "ioperm",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "personality",
    "lookup_dcookie",
    "fanotify_init",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
)
_TIOCSTI = 0x5412
_TIOCLINUX = 0x541C


class SandboxUnavailable(ExecutorError):
    """No working sandbox on this host; servable code is refused (unless mode is 'none')."""

    code = "sandbox_unavailable"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one sandboxed process may use; `clamp` keeps a request within the server's maxima."""

    memory_mb: int = 2048  # address space per process (0: none)
    cpu_s: float = 60.0  # CPU seconds per call (the hard limit is `cpu_total_s`)
    wall_s: float = 60.0  # wall seconds per call, enforced by the host
    processes: int = 64  # processes and threads of the sandbox's uid
    open_files: int = 256
    output_mb: int = 64  # largest file it may write (its log too) and largest reply
    scratch_mb: int = 256  # size of its private /tmp
    cpu_total_s: float = 0.0  # a warm worker's lifetime CPU seconds (0: `cpu_s`)

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        """The names a servable may request in `servable.options`."""
        return ("memory_mb", "cpu_s", "wall_s", "processes", "open_files", "output_mb")

    def clamp(self, requested: Mapping[str, Any]) -> Limits:
        """Limits for a request: each asked-for value, at most this (the server's maximum).

        `timeout_s` is accepted as the name DLHub documents use for `wall_s`.

        Raises:
            InvalidInput: a value is not a positive number.
        """
        asked = dict(requested)
        if "timeout_s" in asked and "wall_s" not in asked:
            asked["wall_s"] = asked["timeout_s"]
        values: dict[str, Any] = {}
        for name in self.fields():
            if asked.get(name) is None:
                continue
            value = asked[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise InvalidInput(
                    f"{name} must be a positive number", field=f"servable.options.{name}"
                )
            ceiling = getattr(self, name)
            values[name] = type(ceiling)(min(value, ceiling) if ceiling else value)
        return replace(self, **values)

    def public(self) -> dict[str, Any]:
        """The limits as a caller is told them (what applied, not what was asked)."""
        return dict(_public(self))


@functools.lru_cache(maxsize=256)
def _public(limits: Limits) -> tuple[tuple[str, Any], ...]:
    """`Limits.public` once per distinct value (it is in every run's provenance)."""
    out = asdict(limits)
    out.pop("cpu_total_s")
    out["timeout_s"] = out["wall_s"]
    return tuple(out.items())


@dataclass(frozen=True, slots=True)
class View:
    """What a sandboxed process sees of the host besides the system: bound at the same paths."""

    read_only: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    network: bool = False  # installers only: the package index is on the network
    cwd: str = "/tmp"
    python: Path | None = None  # an interpreter whose base install must be visible


@dataclass
class Sandbox:
    """Builds and starts sandboxed processes; `mode` is 'bwrap' (required) or 'none'."""

    mode: str = "bwrap"
    maxima: Limits = field(default_factory=Limits)
    uid_base: int = 100_000  # root servers: installs run as this uid, workers above it
    uid_count: int = 1_000
    _uids: itertools.count[int] = field(default_factory=itertools.count, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _uid_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _problem: str | None = field(default=None, repr=False)
    _checked: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode == "auto":  # older settings: 'auto' never falls back any more
            self.mode = "bwrap"
        if self.mode not in ("bwrap", "none"):
            raise InvalidInput(
                f"unknown sandbox {self.mode!r}: use 'bwrap' or 'none'", field="hub_sandbox"
            )
        if self.mode == "none":
            log.warning(
                "!!! SERVABLES RUN UNSANDBOXED (hub_sandbox=none): published code runs as this "
                "server's user and can read and write anything it can and reach the network. "
                "Only for a hub whose servables you wrote yourself. !!!"
            )

    def config(self) -> dict[str, Any]:
        """Plain values that make the same sandbox elsewhere (a Ray actor): `from_config`."""
        return {
            "mode": self.mode,
            "maxima": asdict(self.maxima),
            "uid_base": self.uid_base,
            "uid_count": self.uid_count,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Sandbox:
        """The sandbox `config` describes."""
        return cls(
            mode=config["mode"],
            maxima=Limits(**config["maxima"]),
            uid_base=config["uid_base"],
            uid_count=config["uid_count"],
        )

    # what works -------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether processes run sandboxed (False only in the operator's explicit 'none')."""
        return self.mode != "none"

    @property
    def as_root(self) -> bool:
        """Whether this server runs as root (then the sandbox drops to its own uid range)."""
        return os.geteuid() == 0

    def problem(self) -> str | None:
        """Why no sandbox can be made here, or None when one works (checked once, by trying)."""
        if not self.enabled:
            return None
        with self._lock:
            if not self._checked:
                self._problem = self._probe()
                self._checked = True
            return self._problem

    def require(self) -> None:
        """Raise unless code may run: a working sandbox, or the operator's explicit 'none'.

        Raises:
            SandboxUnavailable: no working sandbox and unsandboxed mode not chosen.
        """
        why = self.problem()
        if why is not None:
            raise SandboxUnavailable(
                f"servable code is refused: no working sandbox on this server ({why}). Install "
                "bubblewrap and libseccomp and enable unprivileged user namespaces, or set "
                "hub_sandbox = 'none' to run published code unsandboxed (unsafe)"
            )

    def describe(self) -> dict[str, Any]:
        """For the health page and `stats`: mode, whether it works, the uid and the maxima."""
        why = self.problem()
        return {
            "mode": self.mode,
            "working": self.enabled and why is None,
            "problem": why,
            "runs_as": "sandbox uid range" if self.as_root else "user namespace of the server",
            "maxima": self.maxima.public(),
        }

    def _probe(self) -> str | None:
        if shutil.which("bwrap") is None:
            return "bubblewrap (bwrap) is not installed"
        if self.as_root and shutil.which("setpriv") is None:
            return "setpriv (util-linux) is not installed"
        if shutil.which("prlimit") is None:
            return "prlimit (util-linux) is not installed"
        try:
            seccomp_program()
        except Exception as exc:  # a missing library is one of several ways this fails
            return f"no seccomp filter: {exc}"
        try:
            done = self.run(["/bin/true"], View(), Limits(wall_s=30.0), probe=True)
        except (OSError, ExecutorError) as exc:
            return f"bubblewrap does not start: {exc}"
        if done.returncode != 0:
            return f"bubblewrap does not start: {done.stderr.strip()[-300:] or done.returncode}"
        return None

    # starting processes -----------------------------------------------------------------------

    def uid(self) -> int | None:
        """A uid of the sandbox range for one worker; None where the sandbox drops to none
        (a server that is not root, or unsandboxed mode)."""
        if not (self.as_root and self.enabled):
            return None
        with self._uid_lock:
            return self.uid_base + 1 + next(self._uids) % self.uid_count

    def install_uid(self) -> int | None:
        """The uid installers run as (owns the package cache); None as for `uid`."""
        return self.uid_base if self.as_root and self.enabled else None

    def give(self, path: Path, uid: int | None) -> None:
        """Let a sandbox uid (from `uid`/`install_uid`) own `path` and everything below it."""
        if uid is None:
            return
        os.chown(path, uid, uid, follow_symlinks=False)
        if path.is_dir() and not path.is_symlink():
            for root, dirs, files in os.walk(path):
                for name in dirs + files:
                    os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)

    @staticmethod
    def readable(path: Path) -> None:
        """Make a tree the server wrote (umask 0o077) readable by a sandbox uid that has it
        bound read-only: folders 0755, files 0644 (0755 when executable). The 0700 data
        folder above keeps everyone else out."""
        for root, _, files in os.walk(path):
            os.chmod(root, 0o755)
            for name in files:
                target = os.path.join(root, name)
                executable = os.stat(target, follow_symlinks=False).st_mode & 0o100
                os.chmod(target, 0o755 if executable else 0o644, follow_symlinks=False)

    def command(
        self, inner: Sequence[str], view: View, limits: Limits, *, uid: int | None = None
    ) -> tuple[list[str], int | None]:
        """The argv that runs `inner` sandboxed, and the seccomp fd it needs passed (or None).

        The caller owns the fd (`pass_fds`, then close it).
        """
        if not self.enabled:
            return list(inner), None
        argv = ["bwrap"]
        if self.as_root:
            # Privileged bwrap sets up the mounts; setpriv drops every privilege below.
            argv += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
            if not view.network:
                argv += ["--unshare-net"]
        else:
            argv += ["--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
            if view.network:
                argv += ["--share-net"]
        argv += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
        binds: list[tuple[str, str]] = [("--ro-bind", path) for path in _system_binds(view.network)]
        if view.python is not None:
            home = python_home(view.python)
            if home is not None:
                binds.append(("--ro-bind", str(home)))
        binds += [("--ro-bind", str(Path(p).resolve())) for p in view.read_only]
        binds += [("--bind", str(Path(p).resolve())) for p in view.writable]
        # /proc, /dev and /tmp first: a folder bound below /tmp (a test's, say) stays visible.
        argv += ["--proc", "/proc", "--dev", "/dev"]
        argv += ["--size", str(limits.scratch_mb * 1024 * 1024), "--perms", "1777"]
        argv += ["--tmpfs", "/tmp"]
        # POSIX shared memory and semaphores (joblib, torch's loaders) live in /dev/shm.
        argv += ["--size", str(limits.scratch_mb * 1024 * 1024), "--perms", "1777"]
        argv += ["--tmpfs", "/dev/shm"]
        made: set[str] = {"/", "/tmp"}
        for option, path in binds:
            # bwrap makes missing parents 0700 (root's): make them 0755 so the uid may pass.
            argv += _parents(path, made)
            argv += [option, path, path]
        argv += _top_links()
        # The root is bwrap's own tmpfs, unbounded: read-only once built (only /tmp is written).
        argv += ["--remount-ro", "/"]
        argv += ["--chdir", view.cwd]
        fd = _seccomp_fd()
        argv += ["--seccomp", str(fd), "--", *_rlimits(limits)]
        if self.as_root:
            who = str(uid if uid is not None else self.uid_base + 1)
            argv += [
                "setpriv",
                f"--reuid={who}",
                f"--regid={who}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
            ]
        return [*argv, *inner], fd

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The whole environment of a sandboxed process: nothing of the server's leaks in."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
        }
        env.update(extra or {})
        return env

    def popen(
        self,
        inner: Sequence[str],
        view: View,
        limits: Limits,
        *,
        env: Mapping[str, str] | None = None,
        uid: int | None = None,
        umask: int = 0o022,
        probe: bool = False,
        **kwargs: Any,
    ) -> subprocess.Popen[bytes]:
        """Start `inner` sandboxed (refused when no sandbox works); `kwargs` go to Popen.

        Raises:
            SandboxUnavailable: no sandbox works and unsandboxed mode is not chosen.
        """
        if not probe:
            self.require()
        argv, fd = self.command(inner, view, limits, uid=uid)
        try:
            return subprocess.Popen(
                argv,
                env=self.environment(env),
                pass_fds=(fd,) if fd is not None else (),
                close_fds=True,
                start_new_session=True,
                umask=umask,
                **kwargs,
            )
        finally:
            if fd is not None:
                os.close(fd)

    def run(
        self,
        inner: Sequence[str],
        view: View,
        limits: Limits,
        *,
        env: Mapping[str, str] | None = None,
        uid: int | None = None,
        umask: int = 0o022,
        probe: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run `inner` sandboxed to its end (killed at `limits.wall_s`); output captured.

        Output beyond `limits.output_mb` is cut (the process keeps running to its end).

        Raises:
            subprocess.TimeoutExpired: it ran past its wall time (it has been killed).
            SandboxUnavailable: no sandbox works and unsandboxed mode is not chosen.
        """
        proc = self.popen(
            inner,
            view,
            limits,
            env=env,
            uid=uid,
            umask=umask,
            probe=probe,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        return _collect(proc, limits.wall_s, limits.output_mb * 1024 * 1024)


def _collect(
    proc: subprocess.Popen[bytes], wall_s: float, cap: int
) -> subprocess.CompletedProcess[str]:
    """Read both pipes up to `cap` bytes each until exit or the deadline (then kill)."""
    outs: dict[int, bytearray] = {}
    readers = []
    for stream in (proc.stdout, proc.stderr):
        assert stream is not None
        buf = outs.setdefault(stream.fileno(), bytearray())

        def drain(stream: Any = stream, buf: bytearray = buf) -> None:
            while chunk := stream.read1(1 << 16):
                if len(buf) < cap:
                    buf.extend(chunk[: cap - len(buf)])

        thread = threading.Thread(target=drain, daemon=True)
        thread.start()
        readers.append(thread)
    try:
        proc.wait(timeout=wall_s)
    except subprocess.TimeoutExpired:
        kill(proc)
        raise
    finally:
        for thread in readers:
            thread.join(timeout=5)
        texts = [bytes(buf).decode(errors="replace") for buf in outs.values()]
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return subprocess.CompletedProcess(proc.args, proc.returncode, texts[0], texts[1])


def kill(proc: subprocess.Popen[Any]) -> None:
    """End a sandboxed process now: its whole session (bwrap and everything inside)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(timeout=5)


def python_home(python: Path) -> Path | None:
    """The base install a (virtual-environment) interpreter runs from: its prefix folder."""
    python = Path(python)
    cfg = python.parent.parent / "pyvenv.cfg"
    if cfg.exists():
        for line in cfg.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home":
                return Path(value.strip()).resolve().parent
    real = python.resolve()
    if real.parent.name == "bin":
        return real.parent.parent
    return None


@functools.lru_cache(maxsize=2)
def _system_binds(network: bool) -> tuple[str, ...]:
    """/usr and the files of /etc a process needs (installs: also resolver and TLS roots)."""
    paths = ["/usr"]
    for name in _ETC + (_ETC_NET if network else ()):
        path = Path("/etc") / name
        if path.exists():
            paths.append(str(path))
    return tuple(paths)


@functools.lru_cache(maxsize=1)
def _top_links() -> tuple[str, ...]:
    """/bin, /lib… as the host has them: links into /usr (merged /usr) or read-only binds."""
    argv: list[str] = []
    for name in _TOP_LINKS:
        top = Path("/") / name
        if top.is_symlink():
            argv += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            argv += ["--ro-bind", str(top), str(top)]
    return tuple(argv)


def _parents(path: str, made: set[str]) -> list[str]:
    """`--perms 0755 --dir` for each ancestor of `path` not made yet."""
    argv: list[str] = []
    parts = Path(path).parts
    for i in range(2, len(parts)):
        parent = str(Path(*parts[:i]))
        if parent not in made:
            made.add(parent)
            argv += ["--perms", "0755", "--dir", parent]
    return argv


def _rlimits(limits: Limits) -> list[str]:
    """`prlimit` options: hard limits, set before the servable exists, so it cannot lift them."""
    cpu_total = int(max(limits.cpu_total_s, limits.cpu_s)) + 1
    out = [
        "prlimit",
        f"--nproc={limits.processes}",
        f"--nofile={limits.open_files}",
        f"--fsize={limits.output_mb * 1024 * 1024}",
        "--core=0",
        f"--cpu={cpu_total}",
    ]
    if limits.memory_mb:
        out.append(f"--as={limits.memory_mb * 1024 * 1024}")
    return [*out, "--"]


@functools.lru_cache(maxsize=1)
def seccomp_program() -> bytes:
    """The BPF program of the sandbox's seccomp filter (built once per process)."""
    import pyseccomp as sc  # type: ignore[import-untyped]

    rules = sc.SyscallFilter(defaction=sc.ALLOW)
    # A binary tree over the call numbers: each of the worker's system calls passes a few
    # comparisons instead of one per rule.
    with contextlib.suppress(Exception):  # libseccomp < 2.5 has no such attribute
        rules.set_attr(sc.Attr.CTL_OPTIMIZE, 2)
    for name in _DENIED:
        with contextlib.suppress(RuntimeError, ValueError):  # a call this kernel lacks
            rules.add_rule(sc.ERRNO(errno.EPERM), name)
    # glibc falls back to clone(2) when clone3 is missing; clone3's flags are in memory,
    # where a filter cannot look, so it is refused as absent.
    rules.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for flag in _CLONE_NS:
        rules.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    for request in (_TIOCSTI, _TIOCLINUX):
        rules.add_rule(sc.ERRNO(errno.EPERM), "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
    # Raw and packet sockets need capabilities the process lacks; refuse them outright too.
    for family in (17,):  # AF_PACKET
        rules.add_rule(sc.ERRNO(errno.EPERM), "socket", sc.Arg(0, sc.EQ, family))
    with tempfile.TemporaryFile() as sink:
        rules.export_bpf(sink)
        sink.seek(0)
        return sink.read()


def _seccomp_fd() -> int:
    """A memfd holding the filter, positioned at its start (bwrap reads it to the end)."""
    fd = os.memfd_create("matterhub-seccomp", 0)
    program = seccomp_program()
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


if __name__ == "__main__":  # `python -m matterhub.sandbox`: does a sandbox work here?
    box = Sandbox()
    print(box.describe())
    sys.exit(0 if box.problem() is None else 1)
