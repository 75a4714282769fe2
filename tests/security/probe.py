"""The probe servable: tries every escape the audit of issue #14 found, and the usual others.

`PROBE_SOURCE` is a stdlib-only module whose function `probe(x)` returns (and, at build time,
prints to stderr) a JSON report: for each attempt, `refused:<ERRNO or exception>` or
`allowed:<what happened>`. `TARGETS` (the hub's pid, port, data folder, source tree) is filled
in by the test before publishing. Linux x86_64 system-call numbers for the calls libc lacks.
"""

from __future__ import annotations

PROBE_SOURCE = r'''
import ctypes
import errno
import json
import os
import resource
import signal
import socket
import stat
import sys
import time

TARGETS = json.loads(__TARGETS__)
libc = ctypes.CDLL(None, use_errno=True)
NR = {"clone": 56, "keyctl": 250, "perf_event_open": 298, "bpf": 321, "clone3": 435,
      "pivot_root": 155, "init_module": 175, "userfaultfd": 323, "open_by_handle_at": 304,
      "kexec_load": 246, "process_vm_readv": 310}


def _try(action):
    try:
        value = action()
    except OSError as exc:
        return "refused:" + errno.errorcode.get(exc.errno or 0, str(exc.errno))
    except Exception as exc:
        return "refused:" + type(exc).__name__
    return ("allowed:" + repr(value))[:300]


def _checked(result):
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def _libc(name, *args):
    return lambda: _checked(getattr(libc, name)(*args))


def _syscall(name, *args):
    def call():
        result = libc.syscall(NR[name], *[ctypes.c_long(a) for a in args])
        if result == 0 and name == "clone":
            os._exit(0)  # the child of a clone that was not refused
        return _checked(result)
    return call


def _read(path):
    def read():
        if os.path.isdir(path):
            return sorted(os.listdir(path))[:10]
        with open(path, "rb") as handle:
            return handle.read(64)
    return read


def _write(path):
    def write():
        with open(path, "w") as handle:
            handle.write("escaped")
        return path
    return write


def _connect(host, port):
    def connect():
        with socket.create_connection((host, port), timeout=2):
            return "connected"
    return connect


def _setns():
    fd = os.open("/proc/1/ns/net", os.O_RDONLY)
    try:
        return _checked(libc.setns(fd, 0))
    finally:
        os.close(fd)


def _fork_bomb():
    children = []
    try:
        for _ in range(500):
            pid = os.fork()
            if pid == 0:
                time.sleep(3)
                os._exit(0)
            children.append(pid)
    except OSError as exc:
        return "stopped:%d:%s" % (len(children), errno.errorcode.get(exc.errno, exc.errno))
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return "allowed:%d" % len(children)


def _hog():
    blocks = [bytearray(64 * 1024 * 1024) for _ in range(64)]  # 4 GiB
    return len(blocks)


def _environments():
    """Every environment this process can read: its own and its visible parents'."""
    found = dict(os.environ)
    for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            with open("/proc/%s/environ" % pid, "rb") as handle:
                for item in handle.read().split(b"\0"):
                    key, _, value = item.decode(errors="replace").partition("=")
                    found[key] = value
        except OSError:
            pass
    return found


def report():
    t = TARGETS
    status = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    limits = {}
    with open("/proc/self/limits") as handle:
        for line in handle.readlines()[1:]:
            limits[line[:26].strip()] = line[26:47].strip()
    env = _environments()
    secret_names = sorted(k for k in env if k.startswith("MATTERHUB"))
    me = os.path.abspath(__file__)
    out = {
        "uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(), "groups": os.getgroups(),
        "cap_eff": status.get("CapEff"), "cap_prm": status.get("CapPrm"),
        "cap_bnd": status.get("CapBnd"), "no_new_privs": status.get("NoNewPrivs"),
        "seccomp": status.get("Seccomp"),
        "limit_as": limits.get("Max address space"), "limit_nproc": limits.get("Max processes"),
        "limit_nofile": limits.get("Max open files"), "limit_fsize": limits.get("Max file size"),
        "limit_cpu": limits.get("Max cpu time"),
        # the audit's escape: detach mounts, remount / rw, join the hub's network namespace
        "umount_tmp": _try(_libc("umount2", b"/tmp", 2)),
        "umount_proc": _try(_libc("umount2", b"/proc", 2)),
        "remount_root_rw": _try(_libc("mount", None, b"/", None, 32 | 4096 | 16384, None)),
        "mount_tmpfs": _try(_libc("mount", b"none", b"/tmp", b"tmpfs", 0, None)),
        "unshare_user": _try(_libc("unshare", 0x10000000)),
        "unshare_mount": _try(_libc("unshare", 0x00020000)),
        "unshare_net": _try(_libc("unshare", 0x40000000)),
        "clone_newuser": _try(_syscall("clone", 0x10000000 | 17, 0, 0, 0, 0)),
        "clone3": _try(_syscall("clone3", 0, 0)),
        "setns_pid1_net": _try(_setns),
        "pivot_root": _try(_syscall("pivot_root", 0, 0)),
        "ptrace_attach_1": _try(_libc("ptrace", 16, 1, None, None)),
        "keyctl": _try(_syscall("keyctl", 0, 0, 0, 0, 0)),
        "bpf": _try(_syscall("bpf", 0, 0, 0)),
        "perf_event_open": _try(_syscall("perf_event_open", 0, 0, -1, -1, 0)),
        "userfaultfd": _try(_syscall("userfaultfd", 0)),
        "open_by_handle_at": _try(_syscall("open_by_handle_at", 0, 0, 0)),
        "init_module": _try(_syscall("init_module", 0, 0, 0)),
        "process_vm_readv": _try(_syscall("process_vm_readv", 1, 0, 0, 0, 0, 0)),
        # what it can see
        "root_listing": sorted(os.listdir("/")),
        "etc_listing": sorted(os.listdir("/etc")),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "read_shadow": _try(_read("/etc/shadow")),
        "read_passwd": _try(_read("/etc/passwd")),
        "read_root_home": _try(_read("/root/.bashrc")),
        "list_home": _try(_read("/home")),
        "read_catalog": _try(_read(os.path.join(t["data_dir"], "catalog.db"))),
        "read_secret": _try(_read(os.path.join(t["data_dir"], "secret"))),
        "list_data_dir": _try(_read(t["data_dir"])),
        "list_blobs": _try(_read(os.path.join(t["data_dir"], "blobs"))),
        "read_source_tree": _try(_read(t["source"])),
        "read_hub_environ": _try(_read("/proc/%d/environ" % t["hub_pid"])),
        "hub_environment_names": secret_names,
        "sees_secret": t["secret_marker"] in json.dumps(env),
        # what it can change
        "write_usr": _try(_write("/usr/escaped.txt")),
        "write_etc": _try(_write("/etc/escaped.txt")),
        "write_root_dir": _try(_write("/escaped.txt")),
        "write_own_code": _try(_write(me)),
        "write_own_environment": _try(_write(os.path.join(sys.prefix, "escaped.txt"))),
        "write_data_dir": _try(_write(os.path.join(t["data_dir"], "escaped.txt"))),
        "write_proc_sys": _try(_write("/proc/sys/kernel/hostname")),
        "write_scratch": _try(_write("/tmp/fine.txt")),
        "chmod_own_code": _try(lambda: os.chmod(me, 0o777)),
        "symlink_out": _try(lambda: os.symlink(t["data_dir"], "/tmp/link") or _read("/tmp/link/secret")()),
        # devices and the network
        "mknod_mem": _try(lambda: os.mknod("/tmp/mem", stat.S_IFCHR | 0o600, os.makedev(1, 1))),
        "open_dev_mem": _try(_read("/dev/mem")),
        "open_dev_sda": _try(_read("/dev/sda")),
        "dev_listing": sorted(os.listdir("/dev")),
        "raw_socket": _try(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)),
        "packet_socket": _try(lambda: socket.socket(17, socket.SOCK_RAW, 0)),
        "connect_hub": _try(_connect("127.0.0.1", t["hub_port"])),
        "connect_internet": _try(_connect("1.1.1.1", 80)),
        # signals to the hub (signal 0 only checks that it could be sent)
        "signal_hub": _try(lambda: os.kill(t["hub_pid"], 0)),
        "signal_pid1": _try(lambda: os.kill(1, 0) or "reachable"),
        # limits
        "raise_as_limit": _try(lambda: resource.setrlimit(resource.RLIMIT_AS, (-1, -1))),
        "raise_nproc_limit": _try(lambda: resource.setrlimit(resource.RLIMIT_NPROC, (-1, -1))),
        "raise_cpu_hard": _try(lambda: resource.setrlimit(resource.RLIMIT_CPU, (-1, -1))),
        "fork_bomb": _fork_bomb(),
        "memory_hog": _try(_hog),
        "big_file": _try(lambda: open("/tmp/big", "wb").write(b"x" * (200 * 1024 * 1024))),
    }
    return out


def probe(x: str) -> str:
    """Try every escape; the report as JSON (also on stderr, where a build's log keeps it)."""
    text = json.dumps(report(), sort_keys=True)
    print("PROBE-REPORT " + text, file=sys.stderr, flush=True)
    return text
'''
