"""The outbound guard (SSRF): every request the server makes goes where it was checked to go.

Real parts only: loopback HTTP servers stand for the internal targets (each records what reached
it), a real git (`git http-backend` behind a small HTTP server, `git daemon`), real fsspec. A
second loopback address (127.0.0.2) plays the part of a public host the guard is told it may
reach; 127.0.0.1 is the private target an attacker aims at.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from matterhub.bootstrap import Services, build_services
from matterhub.connect.collectors import CollectorContext
from matterhub.connect.collectors.http import HttpCollector
from matterhub.connect.collectors.repositories import GitCollector
from matterhub.core.connect import SubmissionRequest
from matterhub.core.errors import InvalidInput
from matterhub.core.identity import SYSTEM_IDENTITY, Identity
from matterhub.hub.inputs import InputFiles
from matterhub.netguard import NetGuard, OutboundRefused
from matterhub.settings import Settings

SECRET = b"internal-only: the metadata service's credentials"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@x",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@x",
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


# -- loopback servers --------------------------------------------------------------------------


class Target:
    """A loopback HTTP server that records every request and answers from a table."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Host header)
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        target = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                target.requests.append((self.command, self.path, self.headers.get("Host", "")))
                status, headers, body = target.routes.get(self.path, (200, {}, SECRET))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_port
        self.url = f"http://{host}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class GitHttp:
    """A smart-HTTP git server: `git http-backend` as CGI behind a loopback HTTP server."""

    def __init__(self, root: Path, host: str, port: int = 0) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _cgi(self) -> None:
                server.requests.append(self.path)
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                env = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "GIT_PROJECT_ROOT": str(root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "REQUEST_METHOD": self.command,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                }
                out = subprocess.run(
                    ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
                ).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                status, headers = 200, []
                for line in head.decode().split("\r\n"):
                    key, _, value = line.partition(":")
                    if key.lower() == "status":
                        status = int(value.split()[0])
                    elif key:
                        headers.append((key, value.strip()))
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _cgi

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pair(make_public: Callable[[int], Any], make_private: Callable[[int], Any]) -> tuple[Any, Any]:
    """Two servers on one port: one on 127.0.0.2 (the 'public' host), one on 127.0.0.1."""
    for _ in range(20):
        public = make_public(0)
        try:
            return public, make_private(public.port)
        except OSError:
            public.close()
    raise RuntimeError("no port free on both loopback addresses")


def _git_repo(base: Path) -> Path:
    """A bare repository `<base>/repo.git` with two files."""
    work = base / "work"
    (work / "docs").mkdir(parents=True)
    (work / "data.txt").write_text("lattice 2.87\n")
    (work / "docs" / "about.txt").write_text("a git dataset\n")
    for command in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-qm", "data"]):
        subprocess.run(command, cwd=work, check=True, env={**GIT_ENV, "HOME": str(base)})
    bare = base / "repo.git"
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(work), str(bare)],
        check=True,
        env={**GIT_ENV, "HOME": str(base)},
    )
    return bare


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Resolver:
    """A name table for tests (no public DNS here): the answers for each call, in order."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        queue = self.answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def target() -> Iterator[Target]:
    server = Target()
    yield server
    server.close()


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    root = tmp_path / "allowed"
    (root / "set").mkdir(parents=True)
    (root / "set" / "notes.txt").write_text("measured on a Tuesday\n")
    with zipfile.ZipFile(root / "data.zip", "w") as zf:
        zf.writestr("inner/notes.txt", "zipped notes\n")
    return root


@pytest.fixture
def strict_hub(tmp_path: Path, allowed: Path) -> Iterator[Services]:
    """A hub with the default guard: no private addresses, only `allowed` on disk."""
    services = build_services(Settings(data_dir=tmp_path / "hub", connect_allowed_roots=[allowed]))
    services.start()
    yield services
    services.close()


def _user(services: Services, name: str) -> Identity:
    services.accounts.create_user(SYSTEM_IDENTITY, name)
    return services.accounts.authenticate(
        services.accounts.create_token(SYSTEM_IDENTITY, name).token
    )


def _run(hub: Services, sources: list[str], **extra: Any) -> dict[str, Any]:
    who = _user(hub, f"u{len(hub.connect.submissions(SYSTEM_IDENTITY, []))}")
    dc = {"titles": [{"title": f"Outbound guard {time.monotonic_ns()}"}], "creators": []}
    dc["creators"] = [{"creatorName": "Guard, Gil"}]
    request = SubmissionRequest.model_validate({"dc": dc, "data_sources": sources, **extra})
    source_id = hub.connect.submit(who, request)["source_id"]
    return hub.connect.wait(source_id, timeout=60)


def _step(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in status["status"]["status_list"] if s["step"] == name)


# -- git ---------------------------------------------------------------------------------------


def test_git_remotes_on_private_addresses_are_refused_before_git_runs(
    strict_hub: Services, target: Target
) -> None:
    for source in (f"git+{target.url}/secret.git", f"git+http://127.0.0.1:{target.port}/x"):
        status = _run(strict_hub, [source])
        assert status["status"]["state"] == "failed", status["display_status"]
        assert _step(status, "data_download")["code"] == "F"
        assert "private address" in status["display_status"]
        assert SECRET.decode() not in str(status)
    assert target.requests == []  # git never reached the internal server


def test_git_uses_its_own_protocol_allow_list(tmp_path: Path, allowed: Path) -> None:
    guard = NetGuard.build(allowed_roots=[allowed], git_protocols=["https", "file"])
    context = CollectorContext(guard=guard)
    marker = tmp_path / "pwned"
    refused = {
        f"git+ext::sh -c touch% {marker}": "remote helpers",
        "git+fd::3,4": "remote helpers",
        "git+git://example.org/repo.git": "git over git is not allowed",
        "git+ssh://git@example.org/repo.git": "git over ssh is not allowed",
        "git@example.org:group/repo.git": "git over ssh is not allowed",
        f"git+file://{tmp_path}/elsewhere/repo.git": "MATTERHUB_CONNECT_ALLOWED_ROOTS",
    }
    for source, reason in refused.items():
        with pytest.raises(InvalidInput) as caught:
            GitCollector().collect(source, tmp_path / "dest", context)
        assert reason in caught.value.detail, (source, caught.value.detail)
    ssh = CollectorContext(guard=NetGuard.build(allow_private=True, git_protocols=["ssh"]))
    for source, reason in {
        "git+ssh://-oProxyCommand=touch@127.0.0.1/r.git": "unsafe user",
        "git+ssh://evil;touch/r.git": "no usable host",
    }.items():
        with pytest.raises(InvalidInput, match=reason):
            GitCollector().collect(source, tmp_path / "dest", ssh)
    assert not marker.exists()


def test_git_over_http_connects_to_the_checked_address(tmp_path: Path) -> None:
    repos = tmp_path / "repos"
    repos.mkdir()
    _git_repo(repos)
    git, internal = _pair(
        lambda port: GitHttp(repos, "127.0.0.2", port), lambda port: Target("127.0.0.1", port)
    )
    try:
        # The name answers the allowed address first, then the internal one (a rebinding DNS).
        names = _Resolver({"repo.test": [["127.0.0.2"], ["127.0.0.1"]]})
        guard = NetGuard.build(allowed_networks=["127.0.0.2/32"], resolver=names)
        dest = tmp_path / "dest"
        GitCollector().collect(
            f"git+http://repo.test:{git.port}/repo.git", dest, CollectorContext(guard=guard)
        )
        assert (dest / "data.txt").read_text() == "lattice 2.87\n"
        assert (dest / "docs" / "about.txt").is_file() and not (dest / ".git").exists()
        assert names.calls == ["repo.test"]  # resolved once; git was pinned to that answer
        assert git.requests and internal.requests == []
    finally:
        git.close()
        internal.close()


def test_git_follows_no_redirect(tmp_path: Path) -> None:
    repos = tmp_path / "repos"
    repos.mkdir()
    _git_repo(repos)
    inside = GitHttp(repos, "127.0.0.1")
    hop = Target("127.0.0.2")
    try:
        location = f"http://127.0.0.1:{inside.port}/repo.git/info/refs?service=git-upload-pack"
        hop.routes["/repo.git/info/refs?service=git-upload-pack"] = (
            302,
            {"Location": location},
            b"",
        )
        guard = NetGuard.build(allowed_networks=["127.0.0.2/32"])
        with pytest.raises(InvalidInput) as caught:
            GitCollector().collect(
                f"git+{hop.url}/repo.git", tmp_path / "dest", CollectorContext(guard=guard)
            )
        assert "cannot clone" in caught.value.detail
        assert hop.requests and inside.requests == []
    finally:
        inside.close()
        hop.close()


def test_git_daemon_transport_is_guarded_and_works_when_allowed(tmp_path: Path) -> None:
    repos = tmp_path / "repos"
    repos.mkdir()
    _git_repo(repos)
    port = _free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={repos}",
         "--listen=127.0.0.1", f"--port={port}", str(repos)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        source = f"git+git://127.0.0.1:{port}/repo.git"
        with pytest.raises(InvalidInput, match="private address"):
            GitCollector().collect(source, tmp_path / "no", CollectorContext())
        assert not (tmp_path / "no").exists()
        allowed = CollectorContext(guard=NetGuard.build(allowed_networks=["127.0.0.1/32"]))
        GitCollector().collect(source, tmp_path / "yes", allowed)
        assert (tmp_path / "yes" / "data.txt").read_text() == "lattice 2.87\n"
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


# -- fsspec ------------------------------------------------------------------------------------


def _tar_with(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_every_link_of_a_chained_fsspec_url_is_guarded(
    strict_hub: Services, target: Target, tmp_path: Path
) -> None:
    target.routes["/a.tar"] = (200, {}, _tar_with("x", SECRET))
    outside = tmp_path / "outside"
    outside.mkdir()
    with zipfile.ZipFile(outside / "roots.zip", "w") as zf:
        zf.writestr("x", SECRET)
    refusals = {
        f"tar://x::{target.url}/a.tar": "private address",
        "tar://x::http://169.254.169.254/latest/meta-data/": "private address",
        f"zip://x::file://{outside}/roots.zip": "MATTERHUB_CONNECT_ALLOWED_ROOTS",
        f"zip://x::tar://y::{target.url}/a.tar": "private address",
        f"simplecache::{target.url}/a.tar": "cannot wrap another URL",
    }
    for source, reason in refusals.items():
        status = _run(strict_hub, [source])
        assert status["status"]["state"] == "failed", (source, status["display_status"])
        assert reason in status["display_status"], (source, status["display_status"])
        assert SECRET.decode() not in str(status)
    assert target.requests == []


def test_chained_archives_open_what_the_guard_fetched(
    tmp_path: Path, allowed: Path, target: Target
) -> None:
    target.routes["/a.tar"] = (200, {}, _tar_with("deep/tarred.txt", b"tarred notes\n"))
    settings = Settings(
        data_dir=tmp_path / "hub2",
        connect_allowed_roots=[allowed],
        outbound_allowed_networks=["127.0.0.1/32"],
    )
    services = build_services(settings)
    services.start()
    try:
        status = _run(
            services,
            [f"zip://inner::file://{allowed}/data.zip", f"tar://deep::{target.url}/a.tar"],
        )
        assert status["status"]["state"] == "succeeded", status["display_status"]
        source_id = status["status"]["source_id"]
        paths = {e.path for e in services.datasets.manifest(SYSTEM_IDENTITY, source_id)}
        assert {"notes.txt", "tarred.txt"} <= paths
        assert [r[1] for r in target.requests] == ["/a.tar"]
    finally:
        services.close()


def test_unknown_and_broken_protocols_fail_the_submission(strict_hub: Services) -> None:
    for source in ("reference://x", "zip://x::nosuch://y", "memory://anything"):
        status = _run(strict_hub, [source])
        assert status["status"]["state"] == "failed", (source, status["display_status"])
        assert _step(status, "data_download")["code"] == "F"
        assert source.split("::")[0][:6] in status["display_status"]


def test_a_crashing_collector_fails_the_submission_with_its_reason(strict_hub: Services) -> None:
    from matterhub.connect.collectors.base import Collector

    class Crashing(Collector):
        name = "crashing"

        def accepts(self, source: str) -> bool:
            return source.startswith("crash:")

        def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
            raise KeyError("a plugin bug")

    strict_hub.connect._collectors.insert(0, Crashing())
    status = _run(strict_hub, ["crash:now"])
    assert status["status"]["state"] == "failed"
    detail = _step(status, "data_download")["detail"]
    assert "crashing" in detail and "KeyError" in detail and "a plugin bug" in detail


# -- HTTP: pinned connections, redirects -------------------------------------------------------


def test_a_name_is_resolved_once_and_the_checked_address_is_the_one_connected_to(
    tmp_path: Path,
) -> None:
    public, internal = _pair(
        lambda port: Target("127.0.0.2", port), lambda port: Target("127.0.0.1", port)
    )
    public.routes["/data.txt"] = (200, {}, b"public data\n")
    try:
        names = _Resolver({"rebind.test": [["127.0.0.2"], ["127.0.0.1"]]})
        guard = NetGuard.build(allowed_networks=["127.0.0.2/32"], resolver=names)
        dest = tmp_path / "dest"
        url = f"http://rebind.test:{public.port}/data.txt"
        HttpCollector().collect(url, dest, CollectorContext(guard=guard))
        assert (dest / "data.txt").read_bytes() == b"public data\n"
        assert names.calls == ["rebind.test"]
        assert public.requests == [("GET", "/data.txt", f"rebind.test:{public.port}")]
        assert internal.requests == []
        # the next connection asks again, gets the internal answer, and is refused
        with pytest.raises(InvalidInput, match="private address"):
            HttpCollector().collect(url, tmp_path / "again", CollectorContext(guard=guard))
        assert internal.requests == []
        # the hub's URL inputs use the same guard
        names.answers["rebind.test"] = [["127.0.0.2"], ["127.0.0.1"]]
        files = InputFiles(tmp_path / "inputs", max_bytes=1000, guard=guard)
        marker = files.fetch(url, "inputs")
        assert (tmp_path / "inputs" / marker["$file"]).read_bytes() == b"public data\n"
        with pytest.raises(InvalidInput, match="private address"):
            files.fetch(url, "inputs")
        assert internal.requests == []
    finally:
        public.close()
        internal.close()


def test_every_redirect_hop_is_checked(tmp_path: Path, target: Target) -> None:
    hop = Target("127.0.0.2")
    hop.routes["/hop"] = (302, {"Location": f"{target.url}/secret"}, b"")
    hop.routes["/meta"] = (302, {"Location": "http://169.254.169.254/latest/"}, b"")
    hop.routes["/file"] = (302, {"Location": "file:///etc/passwd"}, b"")
    try:
        guard = NetGuard.build(allowed_networks=["127.0.0.2/32"])
        context = CollectorContext(guard=guard)
        for path in ("/hop", "/meta"):
            with pytest.raises(InvalidInput, match="private address"):
                HttpCollector().collect(f"{hop.url}{path}", tmp_path / "d", context)
        with pytest.raises(InvalidInput):
            HttpCollector().collect(f"{hop.url}/file", tmp_path / "d", context)
        files = InputFiles(tmp_path / "inputs", max_bytes=1000, guard=guard)
        with pytest.raises(InvalidInput, match="private address"):
            files.fetch(f"{hop.url}/hop", "inputs")
        assert target.requests == []
        assert not list((tmp_path / "d").glob("*"))
    finally:
        hop.close()


def test_addresses_the_guard_refuses() -> None:
    def table(answers: list[str]) -> NetGuard:
        return NetGuard(resolver=lambda host, port: answers)

    for address in (
        "127.0.0.1",
        "10.1.2.3",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "fd00::1",
        "fe80::1",
        "2002:7f00:1::",
    ):
        with pytest.raises(OutboundRefused):
            table([address]).resolve("name.test", 80)
        with pytest.raises(OutboundRefused):
            NetGuard().resolve(address, 80)  # literal addresses skip the resolver, not the check
    with pytest.raises(OutboundRefused):  # one private answer among public ones is enough
        table(["93.184.216.34", "127.0.0.1"]).resolve("mixed.test", 80)
    assert table(["93.184.216.34"]).resolve("public.test", 443) == "93.184.216.34"
    assert NetGuard(allow_private=True).resolve("127.0.0.1", 80) == "127.0.0.1"
    lan = NetGuard.build(allowed_networks=["10.0.5.0/24"])
    assert lan.resolve("10.0.5.7", 80) == "10.0.5.7"
    with pytest.raises(OutboundRefused):
        lan.resolve("10.0.6.7", 80)
    with pytest.raises(InvalidInput):
        NetGuard.build(allowed_networks=["not-a-network"])


# -- webhooks, notifications and peer hubs -----------------------------------------------------


def test_webhooks_and_peers_cannot_reach_private_addresses(
    strict_hub: Services, target: Target, allowed: Path
) -> None:
    services = {
        "webhook": {"url": f"{target.url}/hook"},
        "peer": {"url": target.url, "token": "t"},
    }
    status = _run(strict_hub, [str(allowed / "set")], services=services)
    assert status["status"]["state"] == "succeeded", status["display_status"]
    backup = _step(status, "ingest_backup")
    assert backup["code"] == "R" and backup["detail"].count("private address") == 2
    # a failing submission notifies its own webhook: refused too
    failed = _run(strict_hub, ["gopher://x/y"], services={"webhook": {"url": target.url}})
    assert failed["status"]["state"] == "failed"
    time.sleep(0.2)
    assert target.requests == []
