"""Server-side folders and files, only under the roots an administrator allowed."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

from matterhub.connect.collectors.base import (
    Collector,
    CollectorContext,
    is_archive,
    over_budget,
    safe_unpack,
)
from matterhub.core.errors import InvalidInput, StorageError
from matterhub.netguard import OutboundRefused

__all__ = ["LocalCollector"]


class LocalCollector(Collector):
    """`file:///path` or `/path`: copies a file or a folder tree (archives are unpacked)."""

    name = "local"
    priority = 10

    def accepts(self, source: str) -> bool:
        return source.startswith(("file://", "/"))

    def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
        path = Path(unquote(urlparse(source).path) if source.startswith("file://") else source)
        try:
            path = context.net.check_path(path, source=source)
        except OutboundRefused as exc:
            raise InvalidInput(exc.detail, field="data_sources") from None
        if not path.exists():
            raise InvalidInput(f"{source} does not exist", field="data_sources")
        dest.mkdir(parents=True, exist_ok=True)
        total = 0
        try:
            if path.is_file():
                if is_archive(path.name):
                    return safe_unpack(path, dest, max_bytes=context.max_bytes, context=context)
                if path.stat().st_size > context.max_bytes:
                    raise over_budget(source, context)
                shutil.copy2(path, dest / path.name)
                return path.stat().st_size
            for item in sorted(path.rglob("*")):
                if item.is_symlink() or not item.is_file():
                    continue
                total += item.stat().st_size
                if total > context.max_bytes:
                    raise over_budget(source, context)
                target = dest / item.relative_to(path)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(item, target)
        except OSError as exc:
            raise StorageError(f"cannot read {source}: {exc}") from exc
        return total
