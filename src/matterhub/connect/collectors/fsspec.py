"""Any fsspec URL (`s3://`, `gs://`, `az://`, `memory://`, …), credentials from settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matterhub.connect.collectors.base import (
    Collector,
    CollectorContext,
    is_archive,
    safe_unpack,
    stage_path,
)
from matterhub.core.errors import InvalidInput, StorageError

__all__ = ["FsspecCollector"]

# Other collectors own these schemes (and their safety rules: allowed roots, the SSRF guard).
_ELSEWHERE = ("file", "local", "http", "https", "upload", "git", "ftp", "sftp", "ssh")
_CHUNK = 1 << 20


class FsspecCollector(Collector):
    """Copies one object or every object under a prefix; options per protocol from settings."""

    name = "fsspec"
    priority = 90  # generic: after every specific collector

    def accepts(self, source: str) -> bool:
        scheme, sep, _rest = source.partition("://")
        if not sep or scheme.lower() in _ELSEWHERE:
            return False
        try:
            from fsspec.registry import known_implementations
        except ImportError:
            return False
        return scheme.lower() in known_implementations

    def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
        import fsspec

        scheme = source.partition("://")[0].lower()
        options = _options(context, scheme)
        try:
            fs, path = fsspec.core.url_to_fs(source, **options)
        except (ImportError, ValueError) as exc:
            raise InvalidInput(f"{source}: {exc}", field="data_sources") from exc
        try:
            if not fs.exists(path):
                raise InvalidInput(f"{source} does not exist", field="data_sources")
            if fs.isdir(path):
                base = path.rstrip("/")
                objects = [p for p in sorted(fs.find(base)) if not fs.isdir(p)]
                pairs = [(p, p[len(base) :].lstrip("/")) for p in objects]
            else:
                pairs = [(path, path.rstrip("/").rsplit("/", 1)[-1])]
            dest.mkdir(parents=True, exist_ok=True)
            total = 0
            for remote, relpath in pairs:
                target = stage_path(dest, relpath)
                target.parent.mkdir(parents=True, exist_ok=True)
                total += _copy(fs, remote, target, budget=context.max_bytes - total, url=source)
                if is_archive(target.name):
                    safe_unpack(target, target.parent, max_bytes=context.max_bytes)
                    target.unlink()
            return total
        except (InvalidInput, StorageError):
            raise
        except (OSError, RuntimeError) as exc:  # backends raise their own OSError subclasses
            raise StorageError(f"cannot read {source}: {exc}") from exc


def _options(context: CollectorContext, scheme: str) -> dict[str, Any]:
    by_protocol = context.options.get("fsspec_options") or {}
    if not isinstance(by_protocol, dict):
        return {}
    chosen = by_protocol.get(scheme) or {}
    return dict(chosen) if isinstance(chosen, dict) else {}


def _copy(fs: Any, remote: str, target: Path, *, budget: int, url: str) -> int:
    written = 0
    with fs.open(remote, "rb") as source, target.open("wb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > budget:
                raise InvalidInput(f"{url} is larger than the size limit", field="data_sources")
            out.write(chunk)
    return written
