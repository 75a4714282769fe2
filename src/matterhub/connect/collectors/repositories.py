"""Records in public data repositories: Zenodo and Figshare (by id, URL or DOI), and git."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx

from matterhub.connect.collectors.base import Collector, CollectorContext, over_budget, stage_path
from matterhub.connect.collectors.http import download
from matterhub.core.errors import InvalidInput, StorageError
from matterhub.netguard import NetGuard, OutboundRefused, UnresolvableHost

__all__ = ["FigshareCollector", "GitCollector", "ZenodoCollector"]

_ZENODO = re.compile(
    r"^(?:zenodo:|https?://(?:www\.)?zenodo\.org/(?:records?|record)/|10\.5281/zenodo\.|"
    r"https?://doi\.org/10\.5281/zenodo\.)(\d+)/?$"
)
_FIGSHARE = re.compile(
    r"^(?:figshare:|https?://(?:www\.)?figshare\.com/articles/(?:[^/]+/)*|10\.6084/m9\.figshare\.|"
    r"https?://doi\.org/10\.6084/m9\.figshare\.)(\d+)(?:\.v\d+|/\d+)?/?$"
)


def _get_json(url: str, context: CollectorContext, guard: NetGuard) -> Any:
    """A repository API's JSON answer, through the guard (the API's own origin is trusted)."""
    try:
        with guard.client(timeout=context.timeout_s) as client:
            response = client.get(url)
    except OutboundRefused as exc:
        raise InvalidInput(f"{url}: {exc.detail}", field="data_sources") from None
    except (httpx.HTTPError, UnresolvableHost) as exc:
        raise StorageError(f"cannot reach {url}: {exc}") from exc
    if response.status_code == 404:
        raise InvalidInput(f"{url} does not exist", field="data_sources")
    if response.status_code >= 400:
        raise StorageError(f"{url} answered {response.status_code}")
    try:
        return response.json()
    except ValueError as exc:
        raise StorageError(f"{url} did not answer JSON: {exc}") from exc


def _files(
    pairs: list[tuple[str, str, str | None]], dest: Path, context: CollectorContext, guard: NetGuard
) -> int:
    """Download (url, relpath, md5) triples; together they stay within the byte budget."""
    total = 0
    for url, relpath, md5 in pairs:
        target = stage_path(dest, relpath)
        _path, written = download(
            url,
            target.parent,
            context,
            name=target.name,
            md5=md5,
            guard=guard,
            budget=context.max_bytes - total,
        )
        total += written
    return total


class ZenodoCollector(Collector):
    """`zenodo:<id>`, a zenodo.org record URL or a 10.5281/zenodo.<id> DOI: every file."""

    name = "zenodo"

    def accepts(self, source: str) -> bool:
        return bool(_ZENODO.match(source))

    def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
        found = _ZENODO.match(source)
        assert found is not None
        api = str(context.options.get("zenodo_url", "https://zenodo.org")).rstrip("/")
        # The configured API is the operator's; links it hands out to other hosts are checked.
        guard = context.net.trusting(api)
        record = _get_json(f"{api}/api/records/{found.group(1)}", context, guard)
        pairs = []
        for item in record.get("files", []):
            checksum = str(item.get("checksum", ""))
            md5 = checksum.removeprefix("md5:") if checksum.startswith("md5:") else None
            url = item.get("links", {}).get("self") or item.get("links", {}).get("download")
            if not url:
                raise StorageError(f"Zenodo record {found.group(1)} lists a file without a link")
            pairs.append((str(url), str(item["key"]), md5))
        return _files(pairs, dest, context, guard)


class FigshareCollector(Collector):
    """`figshare:<id>`, a figshare.com article URL or a 10.6084/m9.figshare.<id> DOI."""

    name = "figshare"

    def accepts(self, source: str) -> bool:
        return bool(_FIGSHARE.match(source))

    def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
        found = _FIGSHARE.match(source)
        assert found is not None
        api = str(context.options.get("figshare_url", "https://api.figshare.com")).rstrip("/")
        guard = context.net.trusting(api)
        article = _get_json(f"{api}/v2/articles/{found.group(1)}", context, guard)
        pairs = [
            (
                str(item["download_url"]),
                str(item["name"]),
                item.get("computed_md5") or item.get("supplied_md5") or None,
            )
            for item in article.get("files", [])
        ]
        return _files(pairs, dest, context, guard)


class GitCollector(Collector):
    """`git+https://…` (or any URL ending in `.git`): a shallow clone, without `.git` itself."""

    name = "git"

    def accepts(self, source: str) -> bool:
        return source.startswith("git+") or source.rstrip("/").endswith(".git")

    def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
        url = source.removeprefix("git+")
        with tempfile.TemporaryDirectory() as scratch:
            clone = Path(scratch) / "repo"
            try:
                context.net.git_clone(url, clone, timeout_s=context.timeout_s * 5)
            except OutboundRefused as exc:
                raise InvalidInput(exc.detail, field="data_sources") from None
            except UnresolvableHost as exc:
                raise StorageError(f"cannot clone {url}: {exc}") from exc
            except subprocess.CalledProcessError as exc:
                raise InvalidInput(
                    f"cannot clone {url}: {_git_reason(exc.stderr)}", field="data_sources"
                ) from None
            except (subprocess.TimeoutExpired, FileNotFoundError) as exc:
                raise StorageError(f"cannot clone {url}: {exc}") from exc
            shutil.rmtree(clone / ".git", ignore_errors=True)
            total = 0
            for item in sorted(clone.rglob("*")):
                if item.is_file() and not item.is_symlink():
                    total += item.stat().st_size
                    if total > context.max_bytes:
                        raise over_budget(source, context)
                    target = stage_path(dest, item.relative_to(clone).as_posix())
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(item, target)
            return total


def _git_reason(stderr: str) -> str:
    """git's own one-line reason (`fatal: …`), never what the remote sent back."""
    lines = [line for line in (stderr or "").splitlines() if line.startswith("fatal:")]
    reason = lines[-1] if lines else "git failed"
    return reason[:200]
