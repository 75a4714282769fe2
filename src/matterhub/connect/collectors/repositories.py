"""Records in public data repositories: Zenodo and Figshare (by id, URL or DOI), and git."""

from __future__ import annotations

import os
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

__all__ = ["FigshareCollector", "GitCollector", "ZenodoCollector", "split_ref", "tree_files"]

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
    """`git+https://…` (or any URL ending in `.git`), optionally `…@<branch|tag|commit>`: a
    clone of that ref, without `.git` itself."""

    name = "git"

    def accepts(self, source: str) -> bool:
        return source.startswith("git+") or split_ref(source)[0].rstrip("/").endswith(".git")

    def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
        url, ref = split_ref(source.removeprefix("git+"))
        with tempfile.TemporaryDirectory() as scratch:
            clone = Path(scratch) / "repo"
            self.clone(url, ref, clone, context)
            total = 0
            for item in tree_files(clone):
                total += item.stat().st_size
                if total > context.max_bytes:
                    raise over_budget(source, context)
                target = stage_path(dest, item.relative_to(clone).as_posix())
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(item, target)
            return total

    def clone(
        self,
        url: str,
        ref: str | None,
        clone: Path,
        context: CollectorContext,
        *,
        field: str = "data_sources",
    ) -> str:
        """Clone `url` at `ref` (default branch when None) into `clone`; the commit checked out.

        A branch or tag is fetched shallow; a (short or full) commit id needs the history, so
        that clone is full. Everything is bounded by the context's time limit.

        Raises:
            InvalidInput: refused by the guard, no such repository or ref (naming `field`).
            StorageError: the host cannot be reached or git timed out.
        """
        timeout = context.timeout_s * 5
        commitish = ref is not None and bool(_COMMIT.fullmatch(ref))
        try:
            if commitish:
                context.net.git_clone(url, clone, timeout_s=timeout, depth=0)
            else:
                context.net.git_clone(url, clone, timeout_s=timeout, branch=ref)
        except OutboundRefused as exc:
            raise InvalidInput(exc.detail, field=field) from None
        except UnresolvableHost as exc:
            raise StorageError(f"cannot clone {url}: {exc}", field=field) from exc
        except subprocess.CalledProcessError as exc:
            reason = _git_reason(exc.stderr)
            if ref is not None and "not found in upstream" in reason:
                reason = f"the repository has no branch or tag {ref!r}"
            raise InvalidInput(f"cannot clone {url}: {reason}", field=field) from None
        except (subprocess.TimeoutExpired, FileNotFoundError) as exc:
            raise StorageError(f"cannot clone {url}: {exc}", field=field) from exc
        if commitish:
            assert ref is not None
            for candidate in (f"{ref}^{{commit}}", f"refs/remotes/origin/{ref}^{{commit}}",
                              f"refs/tags/{ref}^{{commit}}"):  # fmt: skip
                found = _local_git(clone, "rev-parse", "--verify", "--quiet", candidate)
                if found:
                    _local_git(clone, "checkout", "--quiet", "--detach", found, check=True)
                    break
            else:
                raise InvalidInput(
                    f"{url} has no branch, tag or commit {ref!r}", field=field
                ) from None
        return _local_git(clone, "rev-parse", "HEAD", check=True)


# A commit id (7 to 40 hex digits); anything else is a branch or tag name.
_COMMIT = re.compile(r"^[0-9a-fA-F]{7,40}$")


def split_ref(url: str) -> tuple[str, str | None]:
    """`url@ref` → (url, ref); an `@` before the repository's path (`git@host:…`) is no ref."""
    head, sep, ref = url.rpartition("@")
    if not sep or "/" in ref or ":" in ref or not ref or "/" not in head.split("://", 1)[-1]:
        return url, None
    return head, ref


def tree_files(clone: Path) -> list[Path]:
    """The regular files of a checkout, `.git` and links left out, in a stable order."""
    return [
        item
        for item in sorted(clone.rglob("*"))
        if item.is_file() and not item.is_symlink() and item.relative_to(clone).parts[0] != ".git"
    ]


def _local_git(clone: Path, *args: str, check: bool = False) -> str:
    """A git command on the local clone only: no network, no user or system config."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin:/usr/local/bin"),
        "HOME": str(clone.parent),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": "",
    }
    done = subprocess.run(
        ["git", "-c", "protocol.allow=never", "-c", "core.symlinks=false", "-C", str(clone),
         *args],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    if check and done.returncode != 0:
        raise StorageError(f"git {args[0]} failed: {_git_reason(done.stderr)}")
    return done.stdout.strip() if done.returncode == 0 else ""


def _git_reason(stderr: str) -> str:
    """git's own one-line reason (`fatal: …`), never what the remote sent back."""
    lines = [line for line in (stderr or "").splitlines() if line.startswith("fatal:")]
    reason = lines[-1] if lines else "git failed"
    return reason[:200]
