"""`http(s)://` files (archives unpacked), with a guard against private addresses."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import httpx

from matterhub.connect.collectors.base import (
    Collector,
    CollectorContext,
    is_archive,
    safe_unpack,
    stage_path,
)
from matterhub.core.errors import InvalidInput, StorageError
from matterhub.netguard import UnresolvableHost, private_address

__all__ = ["HttpCollector"]

_DISPOSITION = re.compile(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', re.I)


def _check_host(url: str, *, allow_private: bool) -> None:
    """Refuse loopback, private and link-local targets unless the operator allowed them."""
    host = urlparse(url).hostname
    if not host:
        raise InvalidInput(f"{url} has no host", field="data_sources")
    if allow_private:
        return
    try:
        bad = private_address(host)
    except UnresolvableHost as exc:
        raise StorageError(str(exc)) from exc
    if bad is not None:
        raise InvalidInput(
            f"{url} points at a private address; an administrator can allow it "
            "(setting MATTERHUB_CONNECT_ALLOW_PRIVATE_URLS)",
            field="data_sources",
        )


class HttpCollector(Collector):
    """Downloads one file over HTTP(S), streaming, within the size limit."""

    name = "http"
    priority = 10

    def accepts(self, source: str) -> bool:
        return source.startswith(("http://", "https://"))

    def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
        _check_host(source, allow_private=context.allow_private_addresses)
        dest.mkdir(parents=True, exist_ok=True)
        try:
            with httpx.stream(
                "GET", source, timeout=context.timeout_s, follow_redirects=False
            ) as response:
                if response.status_code >= 400:
                    kind = (
                        InvalidInput
                        if response.status_code in (401, 403, 404, 410)
                        else StorageError
                    )
                    raise kind(f"{source} answered {response.status_code}", field="data_sources")
                name = self._filename(source, response.headers.get("content-disposition", ""))
                target = stage_path(dest, name)
                written = 0
                with target.open("wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        written += len(chunk)
                        if written > context.max_bytes:
                            raise InvalidInput(
                                f"{source} is larger than the size limit", field="data_sources"
                            )
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise StorageError(f"cannot download {source}: {exc}") from exc
        if is_archive(target.name):
            unpacked = safe_unpack(target, dest, max_bytes=context.max_bytes)
            target.unlink()
            return unpacked
        return written

    @staticmethod
    def _filename(url: str, disposition: str) -> str:
        found = _DISPOSITION.search(disposition)
        name = unquote(found.group(1)) if found else PurePosixPath(unquote(urlparse(url).path)).name
        name = PurePosixPath(name.replace("\\", "/")).name
        return name or "download"
