"""Servable files fetched from where they live: a git repository or URLs (issue #15).

A source is a git repository (`git+https://…`, `git+ssh://…`, `git://…`, `git+file://…` where
the operator allows local paths, or a forge URL `https://github.com/owner/repo@<ref>`) at a
branch, tag or commit, or a URL that Connect can collect (`https://…` file or archive, an allowed
fsspec URL, `zenodo:<id>`, `figshare:<id>`). It is fetched through Connect's collectors, so the
one outbound guard applies (protocol allow-lists, private addresses, allowed folders), into a
`StagedBundle` under the hub's bundle limit, a file-count limit and a time limit.

What was fetched is recorded in the version's document as `dlhub.source`:

```
{"type": "git", "url": "https://host/owner/repo", "ref": "v1", "commit": "<40 hex>",
 "paths": ["model.py"], "fetched_at": "2026-12-07T08:00:00Z",
 "files": [{"path": "model.py", "sha256": "…", "size": 123}], "fingerprint": "<sha256>"}
```
`fingerprint` digests the document, the repository, the commit and the files: publishing the
same again finds the version it made instead of adding a duplicate.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from matterhub.connect.collectors import Collector, CollectorContext
from matterhub.connect.collectors.base import OverBudget
from matterhub.connect.collectors.repositories import GitCollector, split_ref, tree_files
from matterhub.core.errors import BackendError, InvalidInput, PayloadTooLarge
from matterhub.hub.bundle import DOCUMENT_NAMES, StagedBundle, safe_path

__all__ = ["SourceFetcher", "SourceSpec", "fingerprint"]

_MAX_URL = 2000
_MAX_PATHS = 1000
_FORGES = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org")
_GIT_SCHEMES = ("git+", "git://", "ssh://")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!//)")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceSpec:
    """A source as asked for: where, which ref (git), which paths (empty: everything)."""

    url: str
    kind: str  # "git" or "url"
    ref: str | None = None
    paths: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: Any, *, field: str = "source") -> SourceSpec:
        """A source from `"<url>[@ref]"` or `{"url", "ref"?, "paths"?, "type"?}`.

        Raises:
            InvalidInput: malformed (the field names the key).
        """
        if isinstance(raw, str):
            raw = {"url": raw}
        if not isinstance(raw, dict):
            raise InvalidInput("a source is a URL or an object with 'url'", field=field)
        unknown = set(raw) - {"url", "ref", "paths", "type"}
        if unknown:
            raise InvalidInput(f"unknown key {sorted(unknown)[0]!r} in the source", field=field)
        url = raw.get("url")
        if not isinstance(url, str) or not url.strip():
            raise InvalidInput("the source needs a 'url'", field=f"{field}.url")
        url = url.strip()
        if len(url) > _MAX_URL or any(ord(c) < 32 or c.isspace() for c in url):
            raise InvalidInput(f"{url[:80]!r} is not an acceptable URL", field=f"{field}.url")
        kind = raw.get("type")
        if kind not in (None, "git", "url"):
            raise InvalidInput("the source type is 'git' or 'url'", field=f"{field}.type")
        ref = raw.get("ref")
        if ref is not None and (not isinstance(ref, str) or not ref.strip() or len(ref) > 200):
            raise InvalidInput("ref is a branch, tag or commit name", field=f"{field}.ref")
        bare, inline = split_ref(url.removeprefix("git+")) if kind != "url" else (url, None)
        if inline is not None and kind is None and not _looks_like_git(url, bare):
            # `https://host/files/model@2x.pkl` is a file, not a ref: only git URLs take `@ref`.
            bare, inline = url, None
        if inline is not None and ref is not None and inline != ref:
            raise InvalidInput(
                f"the URL names ref {inline!r} and the source ref {ref!r}", field=f"{field}.ref"
            )
        ref = ref or inline
        if kind is None:
            kind = "git" if ref is not None or _looks_like_git(url, bare) else "url"
        if kind == "url" and ref is not None:
            raise InvalidInput("only a git source has a ref", field=f"{field}.ref")
        if kind == "git":
            url = bare.removeprefix("git+") if inline is not None else url.removeprefix("git+")
        paths = raw.get("paths") or []
        if not isinstance(paths, list) or len(paths) > _MAX_PATHS:
            raise InvalidInput(
                f"paths is a list of at most {_MAX_PATHS} relative paths", field=f"{field}.paths"
            )
        clean = []
        for i, path in enumerate(paths):
            if not isinstance(path, str):
                raise InvalidInput("a path is a string", field=f"{field}.paths[{i}]")
            clean.append(safe_path(path.rstrip("/"), field=f"{field}.paths[{i}]"))
        return cls(url=url, kind=kind, ref=ref, paths=tuple(dict.fromkeys(clean)))

    @property
    def label(self) -> str:
        """How errors and the provenance name it: the URL without a password, `@ref` if any."""
        return redact(self.url) + (f"@{self.ref}" if self.ref else "")


def _looks_like_git(url: str, bare: str) -> bool:
    """`git+…`, `git://`, `ssh://`, `user@host:path`, `….git`, or a forge's `owner/repo`."""
    if url.startswith(_GIT_SCHEMES) or _SCP_LIKE.match(url):
        return True
    if bare.rstrip("/").endswith(".git"):
        return True
    parts = urlsplit(bare)
    segments = [s for s in parts.path.split("/") if s]
    return parts.scheme in ("http", "https") and parts.hostname in _FORGES and len(segments) == 2


def redact(url: str) -> str:
    """The URL without its password (a token in `https://user:token@host/…` is never kept)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def fingerprint(document: dict[str, Any], provenance: dict[str, Any]) -> str:
    """What makes two publications from a source the same: document, URL, commit, files."""
    doc = json.loads(json.dumps(document))
    doc.get("dlhub", {}).pop("source", None)
    what = {
        "document": doc,
        "url": provenance.get("url"),
        "commit": provenance.get("commit"),
        "files": provenance.get("files"),
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


class SourceFetcher:
    """Fetches a source into a staged bundle through Connect's collectors and the one guard."""

    def __init__(
        self,
        collectors: Sequence[Collector],
        context: CollectorContext,
        *,
        max_files: int = 10_000,
    ) -> None:
        self._git = next((c for c in collectors if isinstance(c, GitCollector)), GitCollector())
        # Uploads are Connect's own staging, and git sources go to the git collector above.
        self._others = [c for c in collectors if c.name not in ("upload", "git")]
        self._context = context
        self.max_files = max_files

    def fetch(self, spec: SourceSpec, bundle: StagedBundle) -> dict[str, Any]:
        """Fetch `spec` into `bundle` (its files, and its document if it has none yet from a
        root `dlhub.json`/`document.json`); returns the provenance (`dlhub.source`).

        Raises:
            InvalidInput: bad, refused, unreachable or unknown source, ref or path (field
                `source`, `source.ref` or `source.paths[i]`).
            PayloadTooLarge: more bytes than the bundle limit or more files than `max_files`.
        """
        context = replace(self._context, max_bytes=bundle.max_bytes, budget_bytes=bundle.max_bytes)
        scratch = bundle.root / "source"
        scratch.mkdir()
        commit: str | None = None
        try:
            try:
                if spec.kind == "git":
                    root = scratch / "repo"
                    commit = self._git.clone(spec.url, spec.ref, root, context, field="source")
                    found = tree_files(root)
                else:
                    root = scratch / "files"
                    self._collector(spec).collect(spec.url, root, context)
                    found = [p for p in sorted(root.rglob("*")) if p.is_file()]
            except OverBudget:
                raise self._too_large(spec, bundle) from None
            except PayloadTooLarge:
                raise
            except InvalidInput as exc:
                raise InvalidInput(self._say(spec, exc.detail), field="source") from None
            except BackendError as exc:
                raise InvalidInput(
                    f"cannot fetch {spec.label}: {self._clean(spec, exc.detail)}", field="source"
                ) from None
            files = self._select(spec, root, found)
            if bundle.document is None:
                for name in DOCUMENT_NAMES:
                    if (root / name).is_file() and not (root / name).is_symlink():
                        bundle.set_document((root / name).read_bytes(), field=f"source:{name}")
                        files = [f for f in files if f != name]
                        break
            if len(files) > self.max_files:
                raise PayloadTooLarge(
                    f"{spec.label} has {len(files)} files; a servable may have at most "
                    f"{self.max_files} (setting MATTERHUB_HUB_SOURCE_MAX_FILES)",
                    field="source",
                )
            records = [self._stage(spec, bundle, root, rel) for rel in files]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return {
            "type": spec.kind,
            "url": redact(spec.url),
            **({"ref": spec.ref, "commit": commit} if spec.kind == "git" else {}),
            "paths": list(spec.paths),
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": records,
        }

    def _collector(self, spec: SourceSpec) -> Collector:
        for collector in self._others:
            if collector.accepts(spec.url):
                return collector
        raise InvalidInput(
            f"{spec.label} is not a source this hub can fetch: give a git URL (git+https://…, "
            "git+ssh://…, …@<ref>), an http(s) URL, an allowed fsspec URL, zenodo:<id> or "
            "figshare:<id>",
            field="source",
        )

    def _select(self, spec: SourceSpec, root: Path, found: list[Path]) -> list[str]:
        """The relative paths to keep: every file, or those under the paths asked for."""
        every = [p.relative_to(root).as_posix() for p in found]
        if not spec.paths:
            return every
        keep: dict[str, None] = {}
        for i, path in enumerate(spec.paths):
            under = [f for f in every if f == path or f.startswith(f"{path}/")]
            if not under:
                raise InvalidInput(
                    f"{spec.label} has no file or folder {path!r}", field=f"source.paths[{i}]"
                )
            keep.update(dict.fromkeys(under))
        return list(keep)

    def _stage(
        self, spec: SourceSpec, bundle: StagedBundle, root: Path, rel: str
    ) -> dict[str, Any]:
        digest = hashlib.sha256()
        local = root / rel
        try:
            with local.open("rb") as handle:
                bundle.add_file(rel, _Hashing(handle, digest))
        except PayloadTooLarge:
            raise self._too_large(spec, bundle) from None
        return {"path": rel, "sha256": digest.hexdigest(), "size": bundle.files[rel]}

    @staticmethod
    def _too_large(spec: SourceSpec, bundle: StagedBundle) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"{spec.label} is larger than this hub's servable limit of {bundle.max_bytes} bytes "
            "(setting MATTERHUB_HUB_MAX_BUNDLE_BYTES); name the files it needs with paths",
            field="source",
        )

    @staticmethod
    def _clean(spec: SourceSpec, detail: str) -> str:
        return (
            detail.replace(spec.url, redact(spec.url)) if spec.url != redact(spec.url) else detail
        )

    def _say(self, spec: SourceSpec, detail: str) -> str:
        detail = self._clean(spec, detail)
        return detail if redact(spec.url) in detail else f"{spec.label}: {detail}"


class _Hashing:
    """A read-through file handle that feeds a digest."""

    def __init__(self, handle: Any, digest: Any) -> None:
        self._handle, self._digest = handle, digest

    def read(self, size: int = -1) -> bytes:
        chunk: bytes = self._handle.read(size if size and size > 0 else _CHUNK)
        self._digest.update(chunk)
        return chunk
