"""The fsspec blob store: a local folder (`file://`, the default) or S3 (`s3://bucket/prefix`)."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib
import io
import logging
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import fsspec
from fsspec.implementations.local import LocalFileSystem

from matterhub.blobs.base import (
    CHUNK_SIZE,
    TEMP_PREFIX,
    BlobInfo,
    BlobStore,
    BlobWriter,
    check_key,
    check_prefix,
    check_range,
    normalize_sha512,
)
from matterhub.core.errors import Conflict, InvalidInput, MatterHubError, NotFound, StorageError

__all__ = ["DEFAULT_PART_SIZE", "FsspecBlobStore", "open_blobs"]

log = logging.getLogger(__name__)

DEFAULT_PART_SIZE = 16 << 20
"""Bytes per S3 multipart part: bounds memory per upload; 10,000 parts allow objects to ~156 GiB."""

_S3_MIN_PART = 5 << 20  # S3 refuses smaller parts (except the last one)
# What the OS or s3fs raise when a key names nothing (or a folder, or goes through a file).
_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


class _LocalWriter(BlobWriter):
    """Stage in a hidden temp file next to the target, then `os.replace` it into place."""

    def __init__(self, store: FsspecBlobStore, key: str, expected: str | None) -> None:
        super().__init__(key, expected)
        self._store = store
        self._target = Path(store._path(key))
        # The temp file lives in the target's own folder: a rename is only atomic within one
        # filesystem, which is why fsspec's LocalFileOpener (staging in /tmp) is not used.
        self._temp = self._target.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            with store._errors("write", key, parent_is_object=True):
                self._target.parent.mkdir(parents=True, exist_ok=True)
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
                self._file = os.fdopen(os.open(self._temp, flags, 0o666), "wb")
        except BaseException:
            self._closed = True  # nothing was staged, so `__del__` has nothing to clean up
            raise

    def _write(self, data: memoryview) -> None:
        with self._store._errors("write", self.key):
            self._file.write(data)

    def _commit(self) -> None:
        with self._store._errors("write", self.key):
            self._file.flush()
            os.fsync(self._file.fileno())  # the data must be on disk before the name points at it
            self._file.close()
            if self._target.is_dir():
                raise Conflict(f"blob key {self.key!r} is a folder of other keys", field="key")
            os.replace(self._temp, self._target)
        # Best effort: some filesystems cannot fsync a folder, and the object is already in place.
        with contextlib.suppress(OSError):
            _fsync_dir(self._target.parent)

    def _discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._temp.unlink()

    def __del__(self) -> None:
        # A writer dropped without commit or discard must not leave its temp file behind.
        # (Only here: the S3 writer's cleanup would need network calls during collection.)
        if not self._closed:
            self._closed = True
            self._discard_quietly()


class _RemoteWriter(BlobWriter):
    """Stage a small object in memory (one PUT), a large one as an uncommitted multipart upload."""

    def __init__(self, store: FsspecBlobStore, key: str, expected: str | None) -> None:
        super().__init__(key, expected)
        self._store = store
        self._path = store._path(key)
        self._buffer: io.BytesIO | None = io.BytesIO()
        self._file: Any = None

    def _write(self, data: memoryview) -> None:
        with self._store._errors("write", self.key):
            if self._buffer is None:
                self._file.write(data)
                return
            self._buffer.write(data)
            if self._buffer.tell() >= self._store.part_size:
                # Too big for one PUT: switch to a multipart upload. With autocommit=False only
                # our `commit` completes it: an abandoned writer, whose file s3fs closes on
                # garbage collection, must not publish a partial or unverified object.
                self._file = self._store.fs.open(
                    self._path, "wb", autocommit=False, block_size=self._store.part_size
                )
                self._file.write(self._buffer.getbuffer())
                self._buffer = None

    def _commit(self) -> None:
        with self._store._errors("write", self.key):
            if self._buffer is not None:
                self._store.fs.pipe_file(self._path, self._buffer.getvalue())
                self._buffer = None
            else:
                self._file.flush(force=True)
                self._file.commit()
                self._file.close()

    def _discard(self) -> None:
        self._buffer = None
        if self._file is not None:
            with self._store._errors("abort the upload of", self.key):
                self._file.discard()
            # close() would flush the discarded buffer (and `__del__` calls close): mark it done.
            self._file.closed = True


def _sha512_of(path: Path) -> str:
    digest = hashlib.sha512()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _syncfs(folder: Path) -> None:
    """Flush the whole filesystem holding `folder` (Linux `syncfs`; elsewhere `sync`)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = getattr(libc, "syncfs", None)
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Persist a rename: on POSIX the new directory entry is durable only once its folder is."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FsspecBlobStore(BlobStore):
    """A `BlobStore` over an fsspec filesystem rooted at one folder or bucket prefix."""

    def __init__(
        self,
        fs: fsspec.AbstractFileSystem,
        root: str,
        *,
        url: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url or root
        self.part_size = part_size
        self.is_local = isinstance(fs, LocalFileSystem)
        errors: list[type[BaseException]] = [OSError]
        if not self.is_local:
            # s3fs turns most S3 errors into OSError, but lets some botocore ones through.
            # (looked up by name: botocore ships no type information.)
            with contextlib.suppress(ImportError):
                botocore = importlib.import_module("botocore.exceptions")
                errors += [botocore.BotoCoreError, botocore.ClientError]
        self._backend_errors = tuple(errors)

    def __repr__(self) -> str:
        return f"FsspecBlobStore({self.url!r})"

    def _path(self, key: str) -> str:
        return f"{self.root}/{check_key(key)}"

    @contextlib.contextmanager
    def _errors(
        self, action: str, key: str, *, missing: bool = False, parent_is_object: bool = False
    ) -> Iterator[None]:
        """Translate backend exceptions into our tree, naming the action and the key."""
        try:
            yield
        except MatterHubError:
            raise
        except self._backend_errors as exc:
            if missing and isinstance(exc, _MISSING):
                raise NotFound(f"no blob {key!r} in {self.url}", field="key") from exc
            if parent_is_object and isinstance(exc, FileExistsError | NotADirectoryError):
                raise Conflict(
                    f"a parent of blob key {key!r} is itself a blob", field="key"
                ) from exc
            raise StorageError(f"cannot {action} blob {key!r} in {self.url}: {exc}") from exc

    def open_write(self, key: str, *, expected_sha512: str | None = None) -> BlobWriter:
        """Start an atomic write of `key`; use as a context manager, read `.info` afterwards."""
        check_key(key)
        expected = normalize_sha512(expected_sha512)
        if self.is_local:
            return _LocalWriter(self, key, expected)
        return _RemoteWriter(self, key, expected)

    def get(self, key: str) -> bytes:
        """Return the whole content of `key` in one request."""
        path = self._path(key)
        with self._errors("read", key, missing=True):
            data: bytes = self.fs.cat_file(path)
        return data

    def stream(
        self, key: str, *, start: int = 0, end: int | None = None, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Yield bytes `[start, end)` of `key` in chunks; raise before the first one if invalid."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        path = self._path(key)
        # Checked here, not in the generator, so a caller (the API) can answer 404/416 before
        # it starts sending a response body.
        first, stop = check_range(start, end, self.size(key))
        return self._chunks(key, path, first, stop, chunk_size)

    def _chunks(
        self, key: str, path: str, first: int, stop: int, chunk_size: int
    ) -> Iterator[bytes]:
        if first == stop:
            return
        with (
            self._errors("read", key, missing=True),
            # cache_type "none": each read is one ranged GET of exactly what we asked for.
            self.fs.open(path, "rb", block_size=chunk_size, cache_type="none") as file,
        ):
            file.seek(first)
            remaining = stop - first
            while remaining > 0:
                chunk = file.read(min(chunk_size, remaining))
                if not chunk:
                    raise StorageError(f"blob {key!r} in {self.url} shrank while being read")
                remaining -= len(chunk)
                yield chunk

    def _stat(self, key: str, path: str) -> int | None:
        """Return the size of the object at `path`, or None if there is none (a folder is none)."""
        # Not fs.isfile/fs.exists: they answer False for *any* error, so an unreachable S3
        # would look like a missing key.
        with self._errors("stat", key):
            try:
                info = self.fs.info(path)
            except _MISSING:
                return None
        return int(info["size"]) if info.get("type") == "file" else None

    def size(self, key: str) -> int:
        """Return the size of `key` in bytes."""
        size = self._stat(key, self._path(key))
        if size is None:
            raise NotFound(f"no blob {key!r} in {self.url}", field="key")
        return size

    def exists(self, key: str) -> bool:
        """Tell whether an object is stored under `key`."""
        return self._stat(key, self._path(key)) is not None

    def delete(self, key: str) -> None:
        """Remove `key`; raise `NotFound` if it is not there."""
        path = self._path(key)
        # S3 deletes are idempotent and would not tell us that the key was missing.
        if self._stat(key, path) is None:
            raise NotFound(f"no blob {key!r} in {self.url}", field="key")
        with self._errors("delete", key, missing=True):
            self.fs.rm_file(path)
        if self.is_local:
            self._prune(Path(path).parent)

    def _prune(self, folder: Path) -> None:
        """Remove folders emptied by a delete, so a later key may take their name."""
        root = Path(self.root)
        while folder != root and root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return  # not empty (or already gone): nothing more to prune
            folder = folder.parent

    def local_path(self, key: str) -> Path | None:
        """Return the real file behind `key` for a local folder (for sendfile), None on S3."""
        path = self._path(key)
        if not self.is_local:
            return None
        if not self.exists(key):
            raise NotFound(f"no blob {key!r} in {self.url}", field="key")
        return Path(path)

    def put_files(self, pairs: Iterable[tuple[str, Path]]) -> list[BlobInfo]:
        """Locally: hard-link (else copy) each file into place, then sync the filesystem once.

        Per-file fsyncs cost milliseconds each; for a 10,000-file submission one `syncfs` of
        the store's filesystem makes every object durable at a fraction of the cost.
        """
        if not self.is_local:
            return super().put_files(pairs)
        out = []
        for key, source in pairs:
            check_key(key)
            target = Path(self._path(key))
            temp = target.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
            with self._errors("write", key, parent_is_object=True):
                digest = _sha512_of(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source, temp)
                except OSError:  # another filesystem, or links not allowed: copy
                    shutil.copyfile(source, temp)
                if target.is_dir():
                    temp.unlink()
                    raise Conflict(f"blob key {key!r} is a folder of other keys", field="key")
                os.replace(temp, target)
                out.append(BlobInfo(key, target.stat().st_size, digest))
        if out:
            with self._errors("sync", out[0].key):
                _syncfs(Path(self._path(out[0].key)).parent)
        return out

    def copy(self, src: str, dst: str) -> BlobInfo:
        """Copy `src` to `dst` atomically; on S3 server-side, so `sha512` is None."""
        if self.is_local:
            # shutil-style copies write in place; go through the atomic writer instead.
            return super().copy(src, dst)
        src_path, dst_path = self._path(src), self._path(dst)
        size = self.size(src)
        with self._errors("copy", src, missing=True):
            self.fs.copy(src_path, dst_path)  # CopyObject: the new key appears whole
        return BlobInfo(dst, size, None)

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every key that starts with `prefix`, sorted, recursively (never temp files)."""
        check_prefix(prefix)
        folder = prefix.rpartition("/")[0]
        top = f"{self.root}/{folder}" if folder else self.root
        with self._errors("list", prefix):
            paths = self.fs.find(top)
        start = len(self.root) + 1
        keys = (str(path)[start:] for path in paths)
        return iter(
            sorted(
                key
                for key in keys
                if key.startswith(prefix)
                and not any(part.startswith(TEMP_PREFIX) for part in key.split("/"))
            )
        )


def open_blobs(url: str, options: Mapping[str, Any] | None = None) -> BlobStore:
    """Open the blob store named by `url`: a bare path, `file:///abs/path` or `s3://bucket/prefix`.

    `options` go to s3fs for `s3://` (e.g. `endpoint_url`, `key`, `secret`, `default_block_size`)
    and are ignored for local folders.
    """
    if not url:
        raise InvalidInput("the storage URL is empty", field="storage_url")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "":
        return _open_local(Path(url))
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise InvalidInput(
                f"{url!r}: a file:// URL needs an absolute local path (file:///abs/path)",
                field="storage_url",
            )
        return _open_local(Path(unquote(parts.path)))
    if scheme == "s3":
        return _open_s3(url, parts.netloc, parts.path.strip("/"), dict(options or {}))
    raise InvalidInput(
        f"unsupported storage URL scheme {parts.scheme!r} in {url!r}; use file:// or s3://",
        field="storage_url",
    )


def _open_local(folder: Path) -> FsspecBlobStore:
    """Open (creating if needed) a local folder store."""
    root = folder.expanduser().resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the blob folder {root}: {exc}") from exc
    return FsspecBlobStore(LocalFileSystem(), root.as_posix(), url=root.as_uri())


def _open_s3(url: str, bucket: str, prefix: str, options: dict[str, Any]) -> FsspecBlobStore:
    """Open an S3 bucket (and optional key prefix) through s3fs."""
    if not bucket:
        raise InvalidInput(f"{url!r}: an s3:// URL needs a bucket name", field="storage_url")
    if prefix:
        try:
            check_key(prefix)
        except InvalidInput as exc:
            raise InvalidInput(
                f"{url!r}: bad key prefix: {exc.detail}", field="storage_url"
            ) from None
    try:
        import s3fs
    except ImportError as exc:
        raise StorageError("s3:// storage needs s3fs: install matterhub[s3]") from exc
    # Other processes (API, workers) write the same bucket: a listing cache would hide their keys.
    options.setdefault("use_listings_cache", False)
    options.setdefault("default_block_size", DEFAULT_PART_SIZE)
    part_size = int(options["default_block_size"])
    if part_size < _S3_MIN_PART:
        raise InvalidInput(
            f"default_block_size must be at least {_S3_MIN_PART} bytes (the S3 minimum part size)",
            field="storage_options.default_block_size",
        )
    try:
        fs = s3fs.S3FileSystem(**options)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"bad s3 storage options: {exc}", field="storage_options") from exc
    root = f"{bucket}/{prefix}" if prefix else bucket
    return FsspecBlobStore(fs, root, url=f"s3://{root}", part_size=part_size)
