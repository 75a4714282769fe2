"""Real git on loopback for source tests: a repository to commit to and `git daemon` serving it."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.org",
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


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
