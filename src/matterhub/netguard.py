"""The one guard for every outbound request the server makes (SSRF).

Connect's collectors (http, Zenodo, Figshare, git, fsspec), the hub's URL inputs, webhooks and
peer hubs all reach the network through a `NetGuard`:

- only allow-listed protocols (http/https for HTTP; git's own `protocol.allow` list for git;
  the operator's list for fsspec, where every link of a chained URL `a::b::c` is checked);
- a host name is resolved **once**; every address it resolves to must be public (or in a network
  the operator allowed), and the connection is made to that checked address, with the original
  name kept for the Host header, TLS SNI and certificate checks (no DNS-rebinding window);
- redirects are followed by the client hop by hop, each hop connecting through the same check;
  git follows none;
- `file://` paths only inside the folders the operator allowed.

Hosts the operator configured (a Zenodo mirror, the notification webhook) can be trusted by
origin with `trusting(url)`: they are still resolved once and pinned, but may be private.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import re
import shlex
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import certifi
import httpcore
import httpx

from matterhub.core.errors import InvalidInput

__all__ = [
    "DEFAULT_FSSPEC_PROTOCOLS",
    "DEFAULT_GIT_PROTOCOLS",
    "FsspecLink",
    "GuardedTransport",
    "NetGuard",
    "OutboundRefused",
    "UnresolvableHost",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

# fsspec protocols a data source may name by default: cloud object stores reach only the endpoint
# the operator configured (connect_fsspec_options), and archives open what another link fetched.
DEFAULT_FSSPEC_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "zip", "tar")
# fsspec protocols that wrap the file the next link of a chained URL names.
CONTAINER_PROTOCOLS = frozenset({"zip", "tar"})
DEFAULT_GIT_PROTOCOLS = ("https", "http", "git", "file")
_GIT_PORTS = {"https": 443, "http": 80, "git": 9418, "ssh": 22}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_BARE_PROTOCOL = re.compile(r"^([A-Za-z][A-Za-z0-9+._-]*)$")  # `simplecache::…` names no path
_SCP_LIKE = re.compile(r"^(?:([A-Za-z0-9._-]+)@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?!//)(.+)$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$|^[0-9A-Fa-f:.]+$")
# Branch and tag names git accepts, less anything an option or a revision expression could hide.
_GIT_REF = re.compile(r"^(?!-)(?!.*\.\.)(?!.*@\{)[A-Za-z0-9._/+-]{1,200}(?<![./])$")
_SSH_USER = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]*$")


class UnresolvableHost(OSError):
    """The host name does not resolve."""


class OutboundRefused(InvalidInput):
    """The guard refused a request: protocol not allowed, private address, path outside roots."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the system's resolver).

    Raises:
        UnresolvableHost: the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded(address: IPAddress) -> list[IPAddress]:
    """The address and the IPv4 addresses an IPv6 one carries (mapped, 6to4, Teredo)."""
    out: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            out.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            out.append(address.sixtofour)
        if address.teredo is not None:
            out.extend(address.teredo)
    return out


def _is_public(address: IPAddress) -> bool:
    return all(a.is_global and not a.is_multicast for a in _embedded(address))


@dataclass(frozen=True)
class FsspecLink:
    """One link of a (possibly chained) fsspec URL: its protocol and the URL of the link."""

    protocol: str
    url: str

    @property
    def path(self) -> str:
        """The part after `<protocol>://`."""
        return self.url.split("://", 1)[1] if "://" in self.url else self.url


@dataclass(frozen=True)
class NetGuard:
    """What the server may reach, and the means to reach it only that way."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_roots: tuple[Path, ...] = ()
    fsspec_protocols: frozenset[str] = frozenset(DEFAULT_FSSPEC_PROTOCOLS)
    git_protocols: frozenset[str] = frozenset(DEFAULT_GIT_PROTOCOLS)
    # (host, port) origins the operator configured: pinned like any other, but may be private.
    trusted_origins: frozenset[tuple[str, int]] = frozenset()
    resolver: Resolver = field(default=system_resolver, compare=False)
    max_redirects: int = 5
    # The setting an operator changes to allow private addresses, named in refusals.
    private_setting: str = "MATTERHUB_CONNECT_ALLOW_PRIVATE_URLS"

    @classmethod
    def build(
        cls,
        *,
        allow_private: bool = False,
        allowed_networks: Iterable[str] = (),
        allowed_roots: Iterable[Path] = (),
        fsspec_protocols: Iterable[str] = DEFAULT_FSSPEC_PROTOCOLS,
        git_protocols: Iterable[str] = DEFAULT_GIT_PROTOCOLS,
        resolver: Resolver = system_resolver,
    ) -> NetGuard:
        """A guard from settings' plain values (CIDR strings, protocol names).

        Raises:
            InvalidInput: a network is not CIDR notation (field `outbound_allowed_networks`).
        """
        networks = []
        for text in allowed_networks:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError as exc:
                raise InvalidInput(str(exc), field="outbound_allowed_networks") from None
        return cls(
            allow_private=allow_private,
            allowed_networks=tuple(networks),
            allowed_roots=tuple(Path(p) for p in allowed_roots),
            fsspec_protocols=frozenset(p.lower() for p in fsspec_protocols),
            git_protocols=frozenset(p.lower() for p in git_protocols),
            resolver=resolver,
        )

    def trusting(self, url: str | None) -> NetGuard:
        """This guard, also letting the origin of `url` (operator-configured) be private."""
        if not url:
            return self
        parts = urlsplit(url)
        if not parts.hostname:
            return self
        port = parts.port or (443 if parts.scheme == "https" else 80)
        origins = self.trusted_origins | {(parts.hostname.lower(), port)}
        return dataclasses.replace(self, trusted_origins=origins)

    # addresses ---------------------------------------------------------------------------------

    def address_allowed(self, address: str, *, host: str = "", port: int = 0) -> bool:
        """Whether the server may connect to `address` (public, or allowed by the operator)."""
        ip = ipaddress.ip_address(address)
        if self.allow_private or _is_public(ip):
            return True
        if (host.lower().strip("[]"), port) in self.trusted_origins:
            return True
        return any(ip in network for network in self.allowed_networks)

    def resolve(self, host: str, port: int) -> str:
        """Resolve `host` once and return the address to connect to.

        Every address the name resolves to must be allowed: a name that mixes a public and a
        private address is refused rather than gambled on.

        Raises:
            UnresolvableHost: the name does not resolve.
            OutboundRefused: an address is loopback, private, link-local, reserved or multicast.
        """
        host = host.strip("[]")
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = self.resolver(host, port)
        if not addresses:
            raise UnresolvableHost(f"cannot resolve {host}")
        for address in addresses:
            if not self.address_allowed(address, host=host, port=port):
                raise OutboundRefused(
                    f"{host} points at a private address ({address}); an administrator can allow "
                    f"it ({self.private_setting} or MATTERHUB_OUTBOUND_ALLOWED_NETWORKS)"
                )
        return addresses[0]

    def check_http_url(self, url: str) -> None:
        """Refuse a URL that is not http(s) with a host (the address is checked on connect)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OutboundRefused(f"{url!r} is not an http(s) URL")

    # HTTP --------------------------------------------------------------------------------------

    def transport(self) -> GuardedTransport:
        """An httpx transport whose every connection goes through this guard."""
        return GuardedTransport(self)

    def client(self, *, timeout: float = 30.0, follow_redirects: bool = True) -> httpx.Client:
        """An httpx client that connects only where this guard allows, re-checking each redirect.

        Proxies from the environment are ignored: the address checked is the one connected to.
        """
        return httpx.Client(
            transport=self.transport(),
            timeout=timeout,
            follow_redirects=follow_redirects,
            max_redirects=self.max_redirects,
            trust_env=False,
        )

    # local paths -------------------------------------------------------------------------------

    def check_path(self, path: str | Path, *, source: str | None = None) -> Path:
        """The resolved path, if it lies inside a folder the operator allowed.

        Raises:
            OutboundRefused: it does not (links are resolved first).
        """
        resolved = Path(path).resolve()
        if not any(resolved.is_relative_to(root.resolve()) for root in self.allowed_roots):
            raise OutboundRefused(
                f"{source or path} is not under a folder this hub accepts submissions from "
                "(setting MATTERHUB_CONNECT_ALLOWED_ROOTS)"
            )
        return resolved

    # fsspec ------------------------------------------------------------------------------------

    def fsspec_links(self, url: str) -> list[FsspecLink]:
        """The links of an fsspec URL, outermost first, each one checked.

        Every link but the last must be an allowed container (`zip`, `tar`); the last is an
        http(s) URL (fetched through this guard), a `file://` path inside the allowed roots, or
        another allowed protocol.

        Raises:
            OutboundRefused: a link's protocol is not allowed, or is in the wrong place.
        """
        links = []
        for part in url.split("::"):
            found = _SCHEME.match(part) or _BARE_PROTOCOL.match(part)
            if not found:
                raise OutboundRefused(f"{url}: the link {part!r} names no protocol")
            links.append(FsspecLink(found.group(1).lower(), part))
        *outer, target = links
        for link in outer:
            if (
                link.protocol not in CONTAINER_PROTOCOLS
                or link.protocol not in self.fsspec_protocols
            ):
                raise OutboundRefused(
                    f"{url}: {link.protocol}:// cannot wrap another URL here "
                    "(allowed: archives in MATTERHUB_CONNECT_FSSPEC_PROTOCOLS)"
                )
        if target.protocol in ("http", "https"):
            if not outer:
                raise OutboundRefused(f"{url}: plain http(s) URLs are not fsspec sources")
            self.check_http_url(target.url)
        elif target.protocol in ("file", "local"):
            self.check_path(unquote(target.path), source=url)
        elif target.protocol in CONTAINER_PROTOCOLS or target.protocol not in self.fsspec_protocols:
            raise OutboundRefused(
                f"{url}: the protocol {target.protocol}:// is not allowed on this hub "
                "(setting MATTERHUB_CONNECT_FSSPEC_PROTOCOLS)"
            )
        return links

    # git ---------------------------------------------------------------------------------------

    def git_clone(
        self, url: str, dest: Path, *, timeout_s: float, depth: int = 1, branch: str | None = None
    ) -> None:
        """Clone `url` into `dest` with git restricted to the checked address and protocol.

        `branch` checks out that branch or tag (`git clone --branch`); depth 0 clones everything.

        git's own allow-list (`GIT_ALLOW_PROTOCOL`, `protocol.<name>.allow`) admits only the one
        protocol in use; no remote helpers (`ext::`), no redirects, no user or system git config,
        no proxies; http(s) is pinned with `http.curloptResolve`, git:// and ssh connect to the
        checked address directly.

        Raises:
            OutboundRefused: the protocol, host or path is not allowed.
            UnresolvableHost: the host does not resolve.
            subprocess.CalledProcessError / TimeoutExpired / FileNotFoundError: git failed.
        """
        protocol, target, config, env_extra = self._git_target(url)
        options = [
            "-c", "protocol.allow=never",
            "-c", f"protocol.{protocol}.allow=always",
            "-c", "http.followRedirects=false",
            "-c", "http.proxy=",
            "-c", "http.lowSpeedLimit=1000",
            "-c", "http.lowSpeedTime=60",
            "-c", "submodule.recurse=false",
            "-c", "transfer.bundleURI=false",
            "-c", "core.symlinks=false",
            *config,
        ]  # fmt: skip
        home = dest.parent / ".git-home"
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin:/usr/local/bin"),
            "HOME": str(home),
            "GIT_ALLOW_PROTOCOL": protocol,
            "GIT_PROTOCOL_FROM_USER": "0",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_ASKPASS": "true",
            "SSH_ASKPASS": "true",
            "GIT_LFS_SKIP_SMUDGE": "1",
            **env_extra,
        }
        shallow = ["--depth", str(depth)] if depth and protocol != "file" else []
        if branch is not None:
            if not _GIT_REF.fullmatch(branch):
                raise OutboundRefused(f"{branch!r} is not a git branch or tag name")
            shallow += ["--branch", branch]
        subprocess.run(
            ["git", *options, "clone", *shallow, "--no-recurse-submodules", "--quiet", "--",
             target, str(dest)],
            check=True, capture_output=True, text=True, timeout=timeout_s, env=env,
        )  # fmt: skip

    def _git_target(self, url: str) -> tuple[str, str, list[str], dict[str, str]]:
        """(protocol, URL to hand git, extra `-c` options, extra environment) for a remote."""
        if "::" in url:
            raise OutboundRefused(f"{url}: git remote helpers (`<transport>::`) are not allowed")
        if url.startswith("/"):
            url = f"file://{url}"
        found = _SCHEME.match(url)
        if found:
            protocol = found.group(1).lower()
            parts = urlsplit(url)
            user, host = parts.username, parts.hostname
            port, path = parts.port, parts.path
        else:
            scp = _SCP_LIKE.match(url)
            if not scp:
                raise OutboundRefused(f"{url} is not a git URL this hub understands")
            protocol, user, host, port = "ssh", scp.group(1), scp.group(2).strip("[]"), None
            path = "/" + scp.group(3).lstrip("/") if not scp.group(3).startswith("~") else ""
            if not path:
                raise OutboundRefused(f"{url}: home-relative git paths are not allowed")
        if protocol not in _GIT_PORTS and protocol != "file":
            raise OutboundRefused(f"{url}: git over {protocol} is not allowed")
        if protocol not in self.git_protocols:
            raise OutboundRefused(
                f"{url}: git over {protocol} is not allowed on this hub "
                "(setting MATTERHUB_CONNECT_GIT_PROTOCOLS)"
            )
        if protocol == "file":
            if host not in (None, "", "localhost"):
                raise OutboundRefused(f"{url}: file:// URLs name no host")
            local = self.check_path(unquote(path), source=url)
            return "file", local.as_uri(), [], {}
        if not host or not _HOSTNAME.match(host):
            raise OutboundRefused(f"{url} has no usable host")
        port = port or _GIT_PORTS[protocol]
        address = self.resolve(host, port)
        literal = f"[{address}]" if ":" in address else address
        if protocol in ("http", "https"):
            if _git_version() < (2, 37):  # older gits ignore http.curloptResolve: no pin, no clone
                raise OutboundRefused(f"{url}: git 2.37 or newer is needed to clone over http(s)")
            # curl connects to the checked address; Host, SNI and the certificate keep the name.
            pin = f"{host}:{port}:{literal}"
            return protocol, url, ["-c", f"http.curloptResolve={pin}"], {}
        if user is not None and not _SSH_USER.match(user):
            raise OutboundRefused(f"{url}: unsafe user name in a git URL")
        netloc = f"{user}@{literal}" if user else literal
        rewritten = f"{protocol}://{netloc}:{port}{path}"
        if protocol == "git":
            return "git", rewritten, [], {}
        ssh = (
            f"ssh -o BatchMode=yes -o HostKeyAlias={shlex.quote(host)} -o ProxyCommand=none "
            "-o ProxyJump=none -o PermitLocalCommand=no"
        )
        return "ssh", rewritten, [], {"GIT_SSH_COMMAND": ssh, "GIT_SSH_VARIANT": "ssh"}


@functools.cache
def _git_version() -> tuple[int, int]:
    """(major, minor) of the git on PATH; (0, 0) when it cannot be told."""
    try:
        out = subprocess.run(["git", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return (0, 0)
    found = re.search(r"(\d+)\.(\d+)", out.stdout)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


class _GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend, connecting only to an address the guard checked."""

    def __init__(self, guard: NetGuard) -> None:
        self._guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        # Resolved once, here; the name is never looked up again for this connection. TLS
        # (start_tls) still uses the origin's name for SNI and certificate checks.
        address = self._guard.resolve(host, port)
        return super().connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with every TCP connection made through `NetGuard.resolve`."""

    def __init__(self, guard: NetGuard, *, verify: bool | ssl.SSLContext = True) -> None:
        super().__init__(verify=verify, trust_env=False)
        if isinstance(verify, ssl.SSLContext):
            context = verify
        elif verify:
            context = ssl.create_default_context(cafile=certifi.where())
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        # httpx exposes no parameter for httpcore's network backend: its pool is replaced by
        # one whose backend connects through the guard (no proxy, ever).
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(guard),
        )
