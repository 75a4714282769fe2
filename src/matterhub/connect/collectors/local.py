"""Server-side folders and files, only under the roots an administrator allowed."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

from matterhub.connect.collectors.base import Collector, CollectorContext, is_archive, safe_unpack
from matterhub.core.errors import InvalidInput, StorageError

__all__ = ["LocalCollector"]


class LocalCollector(Collector):
    """`file:///path` or `/path`: copies a file or a folder tree (archives are unpacked)."""

    name = "local"
    priority = 10

    def accepts(self, source: str) -> bool:
        return source.startswith(("file://", "/"))

    def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
        path = Path(unquote(urlparse(source).path) if source.startswith("file://") else source)
        path = path.resolve()
        if not any(path.is_relative_to(root.resolve()) for root in context.allowed_roots):
            raise InvalidInput(
                f"{source} is not under a folder this hub accepts submissions from "
                "(setting MATTERHUB_CONNECT_ALLOWED_ROOTS)",
                field="data_sources",
            )
        if not path.exists():
            raise InvalidInput(f"{source} does not exist", field="data_sources")
        dest.mkdir(parents=True, exist_ok=True)
        total = 0
        try:
            if path.is_file():
                if is_archive(path.name):
                    return safe_unpack(path, dest, max_bytes=context.max_bytes)
                shutil.copy2(path, dest / path.name)
                return path.stat().st_size
            for item in sorted(path.rglob("*")):
                if item.is_symlink() or not item.is_file():
                    continue
                total += item.stat().st_size
                if total > context.max_bytes:
                    raise InvalidInput(
                        f"{source} is larger than the size limit", field="data_sources"
                    )
                target = dest / item.relative_to(path)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(item, target)
        except OSError as exc:
            raise StorageError(f"cannot read {source}: {exc}") from exc
        return total
