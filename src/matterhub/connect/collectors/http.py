"""`http(s)://` files (archives unpacked), fetched through the outbound guard."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import httpx

from matterhub.connect.collectors.base import (
    Collector,
    CollectorContext,
    is_archive,
    over_budget,
    safe_unpack,
    stage_path,
)
from matterhub.core.errors import InvalidInput, StorageError
from matterhub.netguard import NetGuard, OutboundRefused, UnresolvableHost

__all__ = ["HttpCollector", "download"]

_DISPOSITION = re.compile(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', re.I)


def download(
    url: str,
    dest: Path,
    context: CollectorContext,
    *,
    name: str | None = None,
    md5: str | None = None,
    guard: NetGuard | None = None,
    budget: int | None = None,
) -> tuple[Path, int]:
    """Stream `url` into `dest` through the guard (redirects re-checked at every hop), within
    `budget` bytes (default: what is left of the submission's); the file and its size.

    Raises:
        InvalidInput: refused by the guard, answered 401/403/404/410, or over the budget.
        StorageError: unreachable, another error status, or an MD5 mismatch (retried).
    """
    guard = guard or context.net
    limit = context.max_bytes if budget is None else budget
    digest = hashlib.md5(usedforsecurity=False)
    guard.check_http_url(url)
    try:
        with (
            guard.client(timeout=context.timeout_s) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 300:
                kind = (
                    InvalidInput if response.status_code in (401, 403, 404, 410) else StorageError
                )
                raise kind(f"{url} answered {response.status_code}", field="data_sources")
            final = str(response.url)
            filename = name or _filename(final, response.headers.get("content-disposition", ""))
            target = stage_path(dest, filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with target.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    written += len(chunk)
                    if written > limit:
                        raise over_budget(url, context)
                    digest.update(chunk)
                    out.write(chunk)
    except OutboundRefused as exc:
        raise InvalidInput(f"{url}: {exc.detail}", field="data_sources") from None
    except UnresolvableHost as exc:
        raise StorageError(f"cannot download {url}: {exc}", field="data_sources") from exc
    except (httpx.TooManyRedirects, httpx.UnsupportedProtocol) as exc:
        raise InvalidInput(f"{url}: {exc}", field="data_sources") from None
    except httpx.HTTPError as exc:
        raise StorageError(f"cannot download {url}: {exc}", field="data_sources") from exc
    if md5 and digest.hexdigest() != md5:
        target.unlink()
        raise StorageError(f"{url} arrived corrupted (MD5 mismatch)")
    return target, written


def _filename(url: str, disposition: str) -> str:
    found = _DISPOSITION.search(disposition)
    name = unquote(found.group(1)) if found else PurePosixPath(unquote(urlparse(url).path)).name
    name = PurePosixPath(name.replace("\\", "/")).name
    return name or "download"


class HttpCollector(Collector):
    """Downloads one file over HTTP(S), streaming, within the submission's byte budget."""

    name = "http"
    priority = 10

    def accepts(self, source: str) -> bool:
        return source.startswith(("http://", "https://"))

    def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
        dest.mkdir(parents=True, exist_ok=True)
        target, written = download(source, dest, context)
        if is_archive(target.name):
            unpacked = safe_unpack(target, dest, max_bytes=context.max_bytes, context=context)
            target.unlink()
            return unpacked
        return written
