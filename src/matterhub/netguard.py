"""The outbound-request guard shared by Connect's collectors and the hub's URL inputs (SSRF)."""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["UnresolvableHost", "private_address"]


class UnresolvableHost(OSError):
    """The host name does not resolve."""


def private_address(host: str, port: int | None = None) -> str | None:
    """The first loopback, private, link-local, reserved, multicast or unspecified address the
    host resolves to, or None when every address is public.

    Raises:
        UnresolvableHost: the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port)
    except socket.gaierror as exc:
        raise UnresolvableHost(f"cannot resolve {host}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        ):
            return str(address)
    return None
