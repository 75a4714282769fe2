"""Files uploaded with the submission: `upload://<id>`, staged by ConnectService.stage_upload."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from matterhub.connect.collectors.base import (
    Collector,
    CollectorContext,
    is_archive,
    over_budget,
    safe_unpack,
)
from matterhub.core.errors import InvalidInput, StorageError

__all__ = ["SCHEME", "UploadCollector", "upload_dir", "upload_root"]

SCHEME = "upload://"


def upload_root(context: CollectorContext, source: str) -> Path | None:
    """The folder of an `upload://<id>` source (`<uploads_dir>/<id>`: `owner`, `files/`), or
    None when the source is not an upload or its id is malformed.

    Raises:
        InvalidInput: the hub has no uploads folder configured.
    """
    upload_id = source.removeprefix(SCHEME)
    if not source.startswith(SCHEME) or not upload_id.isalnum():
        return None
    root = context.options.get("uploads_dir")
    if not isinstance(root, (str, Path)):
        raise InvalidInput("this hub does not take uploaded files", field="data_sources")
    return Path(root) / upload_id


def upload_dir(context: CollectorContext, upload_id: str) -> Path:
    """Where an upload's files wait: `<uploads_dir>/<id>/files`."""
    root = upload_root(context, f"{SCHEME}{upload_id}")
    if root is None:
        raise InvalidInput(f"{SCHEME}{upload_id} is not an upload id", field="data_sources")
    return root / "files"


class UploadCollector(Collector):
    """Moves (hard-links when it can) the uploaded files into staging; archives are unpacked."""

    name = "upload"
    priority = 5

    def accepts(self, source: str) -> bool:
        return source.startswith(SCHEME)

    def collect(self, source: str, dest: Path, context: CollectorContext) -> int:
        root = upload_dir(context, source.removeprefix(SCHEME))
        if not root.is_dir():
            raise InvalidInput(f"{source}: no such upload (expired?)", field="data_sources")
        dest.mkdir(parents=True, exist_ok=True)
        total = 0
        try:
            for item in sorted(root.rglob("*")):
                if item.is_symlink() or not item.is_file():
                    continue
                target = dest / item.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                if is_archive(item.name) and context.options.get("unpack_uploads", True):
                    total += safe_unpack(
                        item, target.parent, max_bytes=context.max_bytes - total, context=context
                    )
                    continue
                total += item.stat().st_size
                if total > context.max_bytes:
                    raise over_budget(source, context)
                _link_or_copy(item, target)
        except OSError as exc:
            raise StorageError(f"cannot read {source}: {exc}") from exc
        return total


def _link_or_copy(source: Path, target: Path) -> None:
    # Same file system in the usual layout: a hard link costs nothing and the upload stays intact
    # for a retry.
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
