"""fsspec URLs (`s3://`, `gs://`, `az://`, archives such as `zip://x::<url>`), through the guard.

Only the protocols the operator allows (`connect_fsspec_protocols`) are opened. A chained URL
`zip://inner::tar://mid.zip::https://host/a.tar` is checked link by link (`NetGuard.fsspec_links`):
the innermost target is fetched through the same guard as any other source (an http(s) URL by the
pinned client, a `file://` path only inside the allowed roots), and each archive link opens what
the link inside it produced. fsspec itself never opens a network connection for a chained link.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from matterhub.connect.collectors.base import (
    Collector,
    CollectorContext,
    is_archive,
    over_budget,
    safe_unpack,
    stage_path,
)
from matterhub.connect.collectors.http import download
from matterhub.core.errors import InvalidInput, StorageError
from matterhub.netguard import FsspecLink, OutboundRefused

__all__ = ["FsspecCollector"]

# Other collectors own these schemes when they stand alone (and their safety rules).
_ELSEWHERE = ("file", "local", "http", "https", "upload", "git", "ftp", "sftp", "ssh")
_CHUNK = 1 << 20


class FsspecCollector(Collector):
    """Copies one object or every object under a prefix; options per protocol from settings."""

    name = "fsspec"
    priority = 90  # generic: after every specific collector

    def accepts(self, source: str) -> bool:
        if "::" in source:  # a chain: the guard decides whether each link may be opened
            return True
        scheme, sep, _rest = source.partition("://")
        if not sep or scheme.lower() in _ELSEWHERE:
            return False
        try:
            from fsspec.registry import known_implementations
        except ImportError:
            return False
        return scheme.lower() in known_implementations

    def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
        try:
            links = context.net.fsspec_links(source)
        except OutboundRefused as exc:
            raise InvalidInput(exc.detail, field="data_sources") from None
        dest.mkdir(parents=True, exist_ok=True)
        with (
            tempfile.TemporaryDirectory(dir=dest.parent, prefix=".chain-") as scratch,
            contextlib.ExitStack() as handles,
        ):
            fs, path = _open_chain(links, Path(scratch), source, context, handles)
            try:
                return _copy_tree(fs, path, dest, source, context)
            except (InvalidInput, StorageError):
                raise
            except (OSError, RuntimeError, ValueError) as exc:  # backends raise their own
                raise StorageError(f"cannot read {source}: {exc}") from exc


def _open_chain(
    links: list[FsspecLink],
    scratch: Path,
    source: str,
    context: CollectorContext,
    handles: contextlib.ExitStack,
) -> tuple[Any, str]:
    """The file system and path the outermost link names, each inner link opened first."""
    import fsspec

    *outer, target = links
    try:
        if target.protocol in ("http", "https"):
            local, _size = download(target.url, scratch, context, name="target")
            fs, path = fsspec.filesystem("file"), str(local)
        elif target.protocol in ("file", "local"):
            fs = fsspec.filesystem("file")
            path = str(context.net.check_path(unquote(target.path), source=source))
        else:
            options = _options(context, target.protocol)
            fs, path = fsspec.core.url_to_fs(target.url, **options)
        for link in reversed(outer):
            if not fs.isfile(path):
                raise InvalidInput(f"{source}: {path} is not an archive file", field="data_sources")
            handle = handles.enter_context(fs.open(path, "rb"))
            fs = fsspec.filesystem(link.protocol, fo=handle)
            path = link.path
    except (InvalidInput, StorageError):
        raise
    except ImportError as exc:
        raise InvalidInput(
            f"{source}: this hub cannot open it ({exc}); install the extra for that protocol",
            field="data_sources",
        ) from None
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{source}: {exc}", field="data_sources") from None
    except (OSError, RuntimeError) as exc:
        raise StorageError(f"cannot read {source}: {exc}") from exc
    return fs, path


def _copy_tree(fs: Any, path: str, dest: Path, source: str, context: CollectorContext) -> int:
    if not fs.exists(path):
        raise InvalidInput(f"{source} does not exist", field="data_sources")
    if fs.isdir(path):
        base = path.rstrip("/")
        objects = [p for p in sorted(fs.find(base)) if not fs.isdir(p)]
        pairs = [(p, p[len(base) :].lstrip("/")) for p in objects]
    else:
        pairs = [(path, path.rstrip("/").rsplit("/", 1)[-1])]
    total = 0
    for remote, relpath in pairs:
        target = stage_path(dest, relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        total += _copy(
            fs, remote, target, budget=context.max_bytes - total, url=source, ctx=context
        )
        if is_archive(target.name):
            size = target.stat().st_size
            total += safe_unpack(
                target, target.parent, max_bytes=context.max_bytes - total + size, context=context
            )
            total -= size
            target.unlink()
    return total


def _options(context: CollectorContext, scheme: str) -> dict[str, Any]:
    by_protocol = context.options.get("fsspec_options") or {}
    if not isinstance(by_protocol, dict):
        return {}
    chosen = by_protocol.get(scheme) or {}
    return dict(chosen) if isinstance(chosen, dict) else {}


def _copy(fs: Any, remote: str, target: Path, *, budget: int, url: str, ctx: Any) -> int:
    written = 0
    with fs.open(remote, "rb") as source, target.open("wb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > budget:
                raise over_budget(url, ctx)
            out.write(chunk)
    return written
