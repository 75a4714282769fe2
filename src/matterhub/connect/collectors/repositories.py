"""Records in public data repositories: Zenodo and Figshare (by id, URL or DOI), and git."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx

from matterhub.connect.collectors.base import Collector, CollectorContext, stage_path
from matterhub.core.errors import InvalidInput, StorageError

__all__ = ["FigshareCollector", "GitCollector", "ZenodoCollector"]

_ZENODO = re.compile(
    r"^(?:zenodo:|https?://(?:www\.)?zenodo\.org/(?:records?|record)/|10\.5281/zenodo\.|"
    r"https?://doi\.org/10\.5281/zenodo\.)(\d+)/?$"
)
_FIGSHARE = re.compile(
    r"^(?:figshare:|https?://(?:www\.)?figshare\.com/articles/(?:[^/]+/)*|10\.6084/m9\.figshare\.|"
    r"https?://doi\.org/10\.6084/m9\.figshare\.)(\d+)(?:\.v\d+|/\d+)?/?$"
)


def _get_json(url: str, context: CollectorContext) -> Any:
    try:
        response = httpx.get(url, timeout=context.timeout_s, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise StorageError(f"cannot reach {url}: {exc}") from exc
    if response.status_code == 404:
        raise InvalidInput(f"{url} does not exist", field="data_sources")
    if response.status_code >= 400:
        raise StorageError(f"{url} answered {response.status_code}")
    return response.json()


def _download(url: str, target: Path, context: CollectorContext, *, md5: str | None) -> int:
    """Stream one file, checking its size limit and, when the repository gives one, its MD5."""
    digest = hashlib.md5(usedforsecurity=False)
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with httpx.stream("GET", url, timeout=context.timeout_s, follow_redirects=True) as response:
            if response.status_code >= 400:
                raise StorageError(f"{url} answered {response.status_code}")
            with target.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    written += len(chunk)
                    if written > context.max_bytes:
                        raise InvalidInput(
                            f"{url} is larger than the size limit", field="data_sources"
                        )
                    digest.update(chunk)
                    out.write(chunk)
    except httpx.HTTPError as exc:
        raise StorageError(f"cannot download {url}: {exc}") from exc
    if md5 and digest.hexdigest() != md5:
        target.unlink()
        raise StorageError(f"{url} arrived corrupted (MD5 mismatch)")
    return written


class ZenodoCollector(Collector):
    """`zenodo:<id>`, a zenodo.org record URL or a 10.5281/zenodo.<id> DOI: every file."""

    name = "zenodo"

    def accepts(self, source: str) -> bool:
        return bool(_ZENODO.match(source))

    def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
        found = _ZENODO.match(source)
        assert found is not None
        api = str(context.options.get("zenodo_url", "https://zenodo.org")).rstrip("/")
        record = _get_json(f"{api}/api/records/{found.group(1)}", context)
        total = 0
        for item in record.get("files", []):
            checksum = str(item.get("checksum", ""))
            md5 = checksum.removeprefix("md5:") if checksum.startswith("md5:") else None
            url = item.get("links", {}).get("self") or item.get("links", {}).get("download")
            if not url:
                raise StorageError(f"Zenodo record {found.group(1)} lists a file without a link")
            total += _download(url, stage_path(dest, str(item["key"])), context, md5=md5)
        return total


class FigshareCollector(Collector):
    """`figshare:<id>`, a figshare.com article URL or a 10.6084/m9.figshare.<id> DOI."""

    name = "figshare"

    def accepts(self, source: str) -> bool:
        return bool(_FIGSHARE.match(source))

    def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
        found = _FIGSHARE.match(source)
        assert found is not None
        api = str(context.options.get("figshare_url", "https://api.figshare.com")).rstrip("/")
        article = _get_json(f"{api}/v2/articles/{found.group(1)}", context)
        total = 0
        for item in article.get("files", []):
            md5 = item.get("computed_md5") or item.get("supplied_md5") or None
            total += _download(
                item["download_url"], stage_path(dest, str(item["name"])), context, md5=md5
            )
        return total


class GitCollector(Collector):
    """`git+https://…` (or any URL ending in `.git`): a shallow clone, without `.git` itself."""

    name = "git"

    def accepts(self, source: str) -> bool:
        return source.startswith("git+") or source.rstrip("/").endswith(".git")

    def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
        url = source.removeprefix("git+")
        if url.startswith(("file://", "/")) and not any(
            Path(url.removeprefix("file://")).resolve().is_relative_to(root.resolve())
            for root in context.allowed_roots
        ):
            raise InvalidInput(f"{source} is not under an allowed folder", field="data_sources")
        with tempfile.TemporaryDirectory() as scratch:
            clone = Path(scratch) / "repo"
            try:
                subprocess.run(
                    ["git", "clone", "--depth", "1", "--quiet", url, str(clone)],
                    check=True, capture_output=True, text=True, timeout=context.timeout_s * 5,
                    env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin"},
                )  # fmt: skip
            except subprocess.CalledProcessError as exc:
                raise InvalidInput(
                    f"cannot clone {url}: {exc.stderr.strip()[:300]}", field="data_sources"
                ) from None
            except (subprocess.TimeoutExpired, FileNotFoundError) as exc:
                raise StorageError(f"cannot clone {url}: {exc}") from exc
            shutil.rmtree(clone / ".git", ignore_errors=True)
            total = 0
            for item in sorted(clone.rglob("*")):
                if item.is_file() and not item.is_symlink():
                    total += item.stat().st_size
                    if total > context.max_bytes:
                        raise InvalidInput(
                            f"{source} is larger than the size limit", field="data_sources"
                        )
                    target = stage_path(dest, item.relative_to(clone).as_posix())
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(item, target)
            return total
