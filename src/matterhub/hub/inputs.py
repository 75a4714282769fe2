"""File inputs: uploads and URLs staged content-addressed, handed to a worker inside its scratch.

Where a method's declared input has a `file` (the sole argument, a list's item or a tuple
element), the caller gives `{"upload": "<multipart part name>"}` or `{"url": "https://…"}`.
`InputFiles.resolve` walks the inputs along the declared type, stores each file once under
`<root>/<sha256>/<name>` (so the same file hashes, and memoizes, the same) and puts the marker
`{"$file": "<sha256>/<name>"}` in its place. Right before a call, the executor copies each
marked file into the worker's scratch folder (`localize`) and the servable receives that path
as a string; the copies go when the call ends. URLs are fetched by the server through the
outbound guard (`matterhub.netguard`): http(s) only, each host resolved once and the connection
made to the checked address, loopback, private, link-local and reserved addresses refused (each
redirect hop too) unless the operator allows them; a file larger than `max_bytes` is refused (413).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urljoin, urlparse

import httpx

from matterhub.core.errors import InvalidInput, PayloadTooLarge, StorageError
from matterhub.core.types import types_used
from matterhub.netguard import NetGuard, OutboundRefused, UnresolvableHost

__all__ = ["MARKER", "InputFiles", "has_files", "localize"]

MARKER = "$file"
_STAGED = re.compile(r"^[0-9a-f]{64}/[A-Za-z0-9._-]{1,128}$")
_MAX_REDIRECTS = 3


def has_files(spec: Mapping[str, Any]) -> bool:
    """Whether a declared input type contains a `file` anywhere."""
    return "file" in types_used(spec)


def _safe_name(name: str) -> str:
    base = PurePosixPath(unquote(name).replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[:128]
    return cleaned or "input"


class InputFiles:
    """The store of staged input files, and the guarded URL fetcher that fills it."""

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int,
        allow_private: bool = False,
        timeout_s: float = 30.0,
        guard: NetGuard | None = None,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.guard = guard or NetGuard()
        self.allow_private = allow_private or self.guard.allow_private
        self.timeout_s = timeout_s

    @property
    def allow_private(self) -> bool:
        """Whether private addresses may be fetched (the guard's setting)."""
        return self.guard.allow_private

    @allow_private.setter
    def allow_private(self, value: bool) -> None:
        self.guard = dataclasses.replace(self.guard, allow_private=value)

    # staging ---------------------------------------------------------------------------------

    def stage(self, source: Path, name: str, field: str) -> dict[str, str]:
        """Store a local file (an upload's spool file) by content; its marker."""
        if source.stat().st_size > self.max_bytes:
            raise PayloadTooLarge(f"the file is larger than {self.max_bytes} bytes", field=field)
        sha = hashlib.sha256()
        with source.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                sha.update(chunk)
        return self._keep(source, sha.hexdigest(), _safe_name(name), move=False)

    def _keep(self, source: Path, sha: str, name: str, *, move: bool) -> dict[str, str]:
        target = self.root / sha / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(f".{uuid.uuid4().hex}.part")
            if move:
                os.replace(source, part)
            else:
                shutil.copyfile(source, part)
            os.replace(part, target)
        elif move:
            source.unlink(missing_ok=True)
        os.utime(target)  # purge keeps what is in use
        return {MARKER: f"{sha}/{name}"}

    def fetch(self, url: str, field: str) -> dict[str, str]:
        """Download a URL (guarded, limited, redirects re-checked) into the store; its marker."""
        self.root.mkdir(parents=True, exist_ok=True)
        spool = self.root / f".{uuid.uuid4().hex}.download"
        try:
            # Redirects are followed here, one hop at a time: each hop connects through the guard.
            with self.guard.client(timeout=self.timeout_s, follow_redirects=False) as client:
                for _ in range(_MAX_REDIRECTS + 1):
                    self._check_url(url, field)
                    with client.stream("GET", url) as response:
                        if response.is_redirect and "location" in response.headers:
                            url = urljoin(url, response.headers["location"])
                            continue
                        if response.status_code >= 400:
                            raise InvalidInput(
                                f"{url} answered {response.status_code}", field=field
                            )
                        sha, written = hashlib.sha256(), 0
                        with spool.open("wb") as out:
                            for chunk in response.iter_bytes(1 << 20):
                                written += len(chunk)
                                if written > self.max_bytes:
                                    raise PayloadTooLarge(
                                        f"{url} is larger than {self.max_bytes} bytes", field=field
                                    )
                                sha.update(chunk)
                                out.write(chunk)
                        name = _safe_name(urlparse(url).path) if urlparse(url).path else "input"
                        return self._keep(spool, sha.hexdigest(), name, move=True)
                raise InvalidInput(f"{url} redirects more than {_MAX_REDIRECTS} times", field=field)
        except OutboundRefused as exc:
            raise InvalidInput(f"{url}: {exc.detail}", field=field) from None
        except UnresolvableHost as exc:
            raise InvalidInput(str(exc), field=field) from None
        except httpx.UnsupportedProtocol as exc:
            raise InvalidInput(f"{url}: {exc}", field=field) from None
        except httpx.HTTPError as exc:
            raise StorageError(f"cannot download {url}: {exc}", field=field) from exc
        finally:
            spool.unlink(missing_ok=True)

    def _check_url(self, url: str, field: str) -> None:
        try:
            self.guard.check_http_url(url)
        except OutboundRefused as exc:
            raise InvalidInput(exc.detail, field=field) from None

    def purge(self, older_than_s: float) -> int:
        """Remove staged files not used for `older_than_s`; returns how many."""
        if not self.root.is_dir():
            return 0
        cutoff, removed = time.time() - older_than_s, 0
        for path in self.root.glob("*/*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
                    path.parent.rmdir()
            except OSError:
                continue
        return removed

    # the walk --------------------------------------------------------------------------------

    def resolve(
        self, value: Any, spec: Mapping[str, Any], uploads: Mapping[str, Path], path: str
    ) -> Any:
        """`value` with every file given by upload or URL replaced by its staged marker."""
        kind = spec.get("type")
        if kind == "file":
            if isinstance(value, Mapping) and "upload" in value:
                part = value["upload"]
                if part not in uploads:
                    raise InvalidInput(f"no uploaded part named {part!r}", field=path)
                return self.stage(uploads[part], str(value.get("name") or uploads[part].name), path)
            if isinstance(value, Mapping) and isinstance(value.get("url"), str):
                return self.fetch(value["url"], path)
            if isinstance(value, Mapping) and MARKER in value:
                raise InvalidInput("give a file as an upload or a URL", field=path)
            return value
        if kind == "list" and isinstance(value, list):
            item = spec["item_type"]
            return [self.resolve(v, item, uploads, f"{path}[{i}]") for i, v in enumerate(value)]
        if kind == "tuple" and isinstance(value, (list, tuple)):
            elements = spec.get("element_types") or []
            return [
                self.resolve(v, e, uploads, f"{path}[{i}]")
                for i, (v, e) in enumerate(zip(value, elements, strict=False))
            ]
        return value


def localize(value: Any, inbox: Path, root: Path) -> Any:
    """Copy each staged file a value marks into `inbox` (a worker's scratch); paths instead."""
    if isinstance(value, dict):
        if len(value) == 1 and MARKER in value:
            rel = value[MARKER]
            if not isinstance(rel, str) or not _STAGED.match(rel):
                return value
            sha, name = rel.split("/")
            target = inbox / sha[:16] / name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / rel, target)  # a copy: the servable may change its own
            return str(target)
        return {k: localize(v, inbox, root) for k, v in value.items()}
    if isinstance(value, list):
        return [localize(v, inbox, root) for v in value]
    return value
