"""What the examples' workflows share: a hub of their own, git on loopback, waiting for the hub.

- `local_hub(folder, user=…)`: a MatterHub served on loopback from a local folder, for running a
  workflow without a hub. It builds the services from `Settings` (so every `MATTERHUB_*` variable
  still applies, except the data folder and the base URL, which are this folder and this server's
  loopback address), creates one user and a token, serves the API with uvicorn on a free loopback
  port in a thread, and yields `(url, token)`; the hub stops when the block ends. It is the same
  embedded hub `matterhub serve` runs (SQLite, tantivy, a local folder, sandboxed servables).
  Servable environments are built into a package cache shared across runs —
  `$MATTERHUB_HUB_CACHE_DIR`, else `~/.cache/matterhub/builds` — so a second run does not download
  torch again; the folders of `$PIP_FIND_LINKS` (local wheels, e.g. a CPU build of torch) are
  offered to the builds unless `$MATTERHUB_HUB_FIND_LINKS` says otherwise.
- `GitRepo`, `GitDaemon`: a git repository to commit to and `git daemon` serving it on 127.0.0.1,
  so that a servable can be published "from its git location" without leaving the machine.
- `hub_arguments`, `run_on_a_hub`: a workflow's command line (`--url`, `--token`, `--out`,
  `--hub-dir`) and its run against the hub given or one of its own.
- `submit_and_wait`, `wait_for_dataset`, `publish_built`: a Connect submission until it is
  processed (a new version if the dataset exists), a servable
  until it is built (raising with the hub's log otherwise).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "GIT_ENV",
    "GitDaemon",
    "GitRepo",
    "free_port",
    "hub_arguments",
    "local_hub",
    "publish_built",
    "run_on_a_hub",
    "submit_and_wait",
    "wait_for_dataset",
]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a hub of one's own -------------------------------------------------------------------------


def _defaults(folder: Path, port: int) -> dict[str, object]:
    # base_url: identifiers, citations and file URLs point at this server.
    kwargs: dict[str, object] = {"data_dir": folder, "base_url": f"http://127.0.0.1:{port}"}
    if not os.environ.get("MATTERHUB_HUB_CACHE_DIR"):
        kwargs["hub_cache_dir"] = Path.home() / ".cache" / "matterhub" / "builds"
    links = [p for p in os.environ.get("PIP_FIND_LINKS", "").split() if Path(p).is_dir()]
    if links and not os.environ.get("MATTERHUB_HUB_FIND_LINKS"):
        kwargs["hub_find_links"] = links
    return kwargs


@contextmanager
def local_hub(
    folder: Path, *, user: str, full_name: str = "", **settings: Any
) -> Iterator[tuple[str, str]]:
    """Serve a hub from `folder` on loopback; yield `(url, token of user)`.

    `settings` are more `Settings` fields (e.g. `outbound_allowed_networks`)."""
    import uvicorn

    from matterhub.api import create_app
    from matterhub.bootstrap import build_services, open_sandbox
    from matterhub.core.identity import SYSTEM_IDENTITY
    from matterhub.settings import Settings

    port = free_port()
    settings = {**_defaults(folder, port), **settings}
    config_ = Settings(**settings)  # type: ignore[arg-type]
    problem = open_sandbox(config_).problem()
    if problem is not None:
        raise SystemExit(
            f"no working sandbox on this machine ({problem}): the hub would refuse to run the "
            "servables. See docs/security.md."
        )
    services = build_services(config_)
    try:
        services.accounts.create_user(SYSTEM_IDENTITY, user, full_name=full_name or user)
        token = services.accounts.create_token(SYSTEM_IDENTITY, user, name="workflow").token
        app = create_app(config_, services=services)
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise SystemExit("the local hub did not start")
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{config.port}", token
        finally:
            server.should_exit = True
            thread.join(timeout=30)
    finally:
        services.close()


def hub_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`--url`, `--token` (default `$MATTERHUB_URL`, `$MATTERHUB_TOKEN`), `--out`, `--hub-dir`."""
    parser.add_argument("--url", default=os.environ.get("MATTERHUB_URL"), help="an existing hub")
    parser.add_argument("--token", default=os.environ.get("MATTERHUB_TOKEN"), help="its token")
    parser.add_argument("--out", help="work files (default: a temporary folder)")
    parser.add_argument("--hub-dir", help="own hub's folder, kept (default: temporary)")
    return parser


def run_on_a_hub(
    args: argparse.Namespace,
    run: Callable[[str, str, argparse.Namespace], Any],
    *,
    prefix: str,
    user: str,
    **settings: Any,
) -> int:
    """`run(url, token, args)` against `args.url`, else against a hub of its own (`local_hub`
    with `user` and `settings`) in `args.hub_dir` or a temporary folder; `args.out` defaults to
    a temporary folder named `prefix…`."""
    with ExitStack() as stack:
        if args.out is None:
            args.out = stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix))
        if args.url:
            run(args.url, args.token, args)
            return 0
        folder = args.hub_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="hub-"))
        url, token = stack.enter_context(local_hub(Path(folder), user=user, **settings))
        print(f"own hub at {url} (folder {folder})")
        run(url, token, args)
        if not args.hub_dir:
            print("stopping the hub; removing its folder (with the built environments) …")
    return 0


# -- git on loopback -----------------------------------------------------------------------------

GIT_ENV = {
    "GIT_AUTHOR_NAME": "MatterHub example",
    "GIT_AUTHOR_EMAIL": "example@example.org",
    "GIT_COMMITTER_NAME": "MatterHub example",
    "GIT_COMMITTER_EMAIL": "example@example.org",
    "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
}


class GitRepo:
    """A work tree whose commits are pushed to a bare repository `<base>/repos/<name>.git`."""

    def __init__(self, base: Path, name: str = "models") -> None:
        self.base = base
        self.work = base / "work" / name
        self.work.mkdir(parents=True)
        self.repos = base / "repos"
        self.bare = self.repos / f"{name}.git"
        self.git("init", "-q", "-b", "main")
        subprocess.run(
            ["git", "init", "-q", "--bare", "-b", "main", str(self.bare)],
            check=True,
            env=self._env(),
        )
        self.git("remote", "add", "origin", str(self.bare))

    def _env(self) -> dict[str, str]:
        return {**GIT_ENV, "HOME": str(self.base)}

    def git(self, *args: str) -> str:
        """Run git in the work tree; its output."""
        done = subprocess.run(
            ["git", *args], cwd=self.work, check=True, capture_output=True, text=True,
            env=self._env(),
        )  # fmt: skip
        return done.stdout.strip()

    def commit(self, files: dict[str, str | bytes], message: str = "change") -> str:
        """Write files, commit and push the branch; the commit id."""
        for rel, content in files.items():
            path = self.work / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        self.git("add", "-A")
        self.git("commit", "-qm", message)
        branch = self.git("rev-parse", "--abbrev-ref", "HEAD")
        self.git("push", "-q", "origin", branch)
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str) -> None:
        """Tag HEAD and push the tag."""
        self.git("tag", name)
        self.git("push", "-q", "origin", name)


class GitDaemon:
    """`git daemon` exporting every repository under a folder, on 127.0.0.1."""

    def __init__(self, repos: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={repos}",
             "--listen=127.0.0.1", f"--port={self.port}", str(repos)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.close()
        raise RuntimeError("git daemon did not start")

    def url(self, name: str = "models") -> str:
        """The git:// URL of a repository."""
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def close(self) -> None:
        """Stop the daemon."""
        self.process.terminate()
        self.process.wait(timeout=10)

    def __enter__(self) -> GitDaemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- waiting for the hub -------------------------------------------------------------------------


def wait_for_dataset(client: Any, source_id: str, timeout: float) -> dict[str, Any]:
    """A submission's status once it is no longer processing; raises if a step failed."""
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = client.status(source_id)
        if not status.get("active", True):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{source_id} still processing after {timeout:.0f} s")
        time.sleep(0.5)
    failed = [s for s in status.get("status_list", []) if s.get("code") == "F"]
    if failed:
        raise RuntimeError(f"{source_id} failed: {failed[0]}")
    return status


def submit_and_wait(client: Any, connect: Any, timeout: float) -> dict[str, Any]:
    """Submit `connect`'s dataset (a new version of an earlier run's if it exists), wait until it
    is published; the dataset version, with its processing `status`."""
    answer = connect.submit_dataset()
    if not answer["success"] and answer.get("status_code") == 409:
        answer = connect.submit_dataset(update=True)
    if not answer["success"]:
        raise RuntimeError(f"the submission was refused: {answer['error']}")
    source_id = str(answer["source_id"])
    status = wait_for_dataset(client, source_id, timeout)
    version: dict[str, Any] = client.dataset(source_id)
    version["status"] = status
    return version


def publish_built(client: Any, description: Any, timeout: float = 1800) -> dict[str, Any]:
    """Publish a servable description and wait for its build; raises with the log on failure."""
    build: dict[str, Any] = client.publish_servable(description, wait=True, timeout=timeout)
    if build["status"] != "succeeded":
        raise RuntimeError(f"{description.document['dlhub']['name']}: {build['log']}")
    return build
