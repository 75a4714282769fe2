"""Blob store contract: one suite, run on a local folder always and on S3 (moto) when present."""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import io
import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from matterhub.blobs import BlobInfo, BlobStore, open_blobs
from matterhub.core.errors import Conflict, InvalidInput, NotFound, StorageError

MiB = 1 << 20
BUCKET = "matterhub-contract"
HAVE_S3 = all(importlib.util.find_spec(name) for name in ("s3fs", "moto", "boto3"))
CREDENTIALS = {"key": "testing", "secret": "testing"}


def sha(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


def pattern(size: int, seed: int = 0) -> bytes:
    """Bytes that differ at every offset, so a shifted or truncated range cannot pass."""
    block = b"".join(hashlib.sha512(f"{seed}:{i}".encode()).digest() for i in range(1024))
    return (block * (size // len(block) + 1))[:size]


# ---- backends -------------------------------------------------------------------------------


@dataclass
class Backend:
    """A store under test plus a raw view of everything it physically holds."""

    name: str
    store: BlobStore
    leftovers: Callable[[], list[str]]  # every stored name, temp files and pending uploads included
    s3: Any = None  # a boto3 client on the moto server, for S3-only checks
    prefix: str = ""  # the store's key prefix inside BUCKET


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def s3_options(endpoint: str, **extra: Any) -> dict[str, Any]:
    # 5 MiB parts (the S3 minimum) so that the 12 MiB test really goes multipart.
    return {
        "endpoint_url": endpoint,
        "client_kwargs": {"region_name": "us-east-1"},
        "default_block_size": 5 * MiB,
        **CREDENTIALS,
        **extra,
    }


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A real S3 API (moto in server mode) on a free loopback port, for this module only."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3_client(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def local_backend(root: Path) -> Backend:
    def leftovers() -> list[str]:
        return sorted(
            os.path.relpath(os.path.join(folder, name), root)
            for folder, _, files in os.walk(root)
            for name in files
        )

    return Backend("local", open_blobs(str(root)), leftovers)


def s3_backend(endpoint: str) -> Backend:
    prefix = uuid.uuid4().hex  # one fresh prefix per test keeps tests apart in one bucket
    client = s3_client(endpoint)

    def leftovers() -> list[str]:
        objects = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("Contents", [])
        uploads = client.list_multipart_uploads(Bucket=BUCKET, Prefix=f"{prefix}/")
        pending = [f"upload:{u['Key']}" for u in uploads.get("Uploads", [])]
        return sorted([o["Key"].removeprefix(f"{prefix}/") for o in objects] + pending)

    store = open_blobs(f"s3://{BUCKET}/{prefix}", s3_options(endpoint))
    return Backend("s3", store, leftovers, s3=client, prefix=prefix)


@pytest.fixture(
    params=[
        "local",
        pytest.param(
            "s3",
            marks=[pytest.mark.s3, pytest.mark.skipif(not HAVE_S3, reason="needs matterhub[s3]")],
        ),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return local_backend(tmp_path / "blobs")
    return s3_backend(request.getfixturevalue("moto_endpoint"))


@pytest.fixture
def store(backend: Backend) -> BlobStore:
    return backend.store


# ---- writing --------------------------------------------------------------------------------


def test_put_bytes_round_trips(store: BlobStore) -> None:
    info = store.put("a.txt", b"hello")
    assert info == BlobInfo("a.txt", 5, sha(b"hello"))
    assert store.get("a.txt") == b"hello"
    assert store.size("a.txt") == 5
    assert store.exists("a.txt")


def test_put_file_like_round_trips(store: BlobStore) -> None:
    data = pattern(2 * MiB + 123)
    info = store.put("dir/file.bin", io.BytesIO(data))
    assert (info.size, info.sha512) == (len(data), sha(data))
    assert store.get("dir/file.bin") == data


def test_put_iterable_round_trips(store: BlobStore) -> None:
    chunks = [b"a", b"", b"bc" * 1000, pattern(70_000)]
    info = store.put("it", iter(chunks))
    assert store.get("it") == b"".join(chunks)
    assert info.sha512 == sha(b"".join(chunks))


def test_empty_object(store: BlobStore) -> None:
    assert store.put("empty", b"") == BlobInfo("empty", 0, sha(b""))
    assert store.get("empty") == b""
    assert list(store.stream("empty")) == []
    assert list(store.list()) == ["empty"]


def test_put_rejects_text(store: BlobStore) -> None:
    with pytest.raises(TypeError):
        store.put("t", "text")  # type: ignore[arg-type]
    assert not store.exists("t")


def test_sha512_matches_hashlib(store: BlobStore) -> None:
    data = pattern(3 * MiB + 7, seed=1)
    store.put("h", data)
    assert store.sha512("h") == sha(data)


def test_expected_sha512_accepted_in_any_case(store: BlobStore) -> None:
    info = store.put("ok", b"data", expected_sha512=sha(b"data").upper())
    assert info.sha512 == sha(b"data")
    assert store.get("ok") == b"data"


@pytest.mark.parametrize("size", [10, 6 * MiB], ids=["small", "multipart"])
def test_expected_sha512_mismatch_keeps_nothing(backend: Backend, size: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        backend.store.put("bad", pattern(size), expected_sha512=sha(b"other"))
    assert caught.value.field == "sha512"
    assert not backend.store.exists("bad")
    assert list(backend.store.list()) == []
    assert backend.leftovers() == []


def test_malformed_expected_sha512_is_rejected(store: BlobStore) -> None:
    with pytest.raises(InvalidInput) as caught:
        store.put("x", b"data", expected_sha512="abc")
    assert caught.value.field == "sha512"
    assert not store.exists("x")


def test_open_write_commits_on_clean_exit(store: BlobStore) -> None:
    with store.open_write("w") as writer:
        writer.write(b"ab")
        writer.write(bytearray(b"cd"))
        with pytest.raises(RuntimeError):
            _ = writer.info  # not committed yet
        assert not store.exists("w")  # readers never see a write in progress
    assert writer.info == BlobInfo("w", 4, sha(b"abcd"))
    assert store.get("w") == b"abcd"
    with pytest.raises(ValueError, match="finished"):
        writer.write(b"more")


@pytest.mark.parametrize("size", [10, 6 * MiB], ids=["small", "multipart"])
def test_exception_inside_open_write_keeps_nothing(backend: Backend, size: int) -> None:
    def write_then_fail() -> None:
        with backend.store.open_write("gone") as writer:
            writer.write(pattern(size))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert not backend.store.exists("gone")
    assert backend.leftovers() == []


@pytest.mark.parametrize("size", [10, 6 * MiB], ids=["small", "multipart"])
def test_abandoned_writer_publishes_nothing(backend: Backend, size: int) -> None:
    writer = backend.store.open_write("abandoned")
    writer.write(pattern(size))
    del writer  # never committed nor discarded
    gc.collect()
    assert not backend.store.exists("abandoned")
    assert list(backend.store.list()) == []
    if backend.name == "local":
        assert backend.leftovers() == []  # (on S3 a lifecycle rule reaps stale uploads)


def test_overwrite_replaces_atomically(store: BlobStore) -> None:
    store.put("k", b"version one")
    with store.open_write("k") as writer:
        writer.write(b"version two")
        assert store.get("k") == b"version one"  # the old object stays readable until commit
    assert store.get("k") == b"version two"
    with pytest.raises(InvalidInput):
        store.put("k", b"version three", expected_sha512=sha(b"nope"))
    assert store.get("k") == b"version two"  # a failed overwrite leaves the old object intact
    assert list(store.list()) == ["k"]


def test_large_streamed_object(backend: Backend) -> None:
    size = 12 * MiB
    data = pattern(size, seed=2)

    def chunks() -> Iterator[bytes]:
        for offset in range(0, size, MiB):
            yield data[offset : offset + MiB]

    info = backend.store.put("big/object.bin", chunks(), expected_sha512=sha(data))
    assert info == BlobInfo("big/object.bin", size, sha(data))
    assert backend.store.size("big/object.bin") == size
    assert backend.store.sha512("big/object.bin") == sha(data)
    boundary = 5 * MiB  # an S3 part boundary
    assert (
        backend.store.read_range("big/object.bin", boundary - 9, boundary + 9)
        == (data[boundary - 9 : boundary + 9])
    )
    assert backend.leftovers() == ["big/object.bin"]
    if backend.name == "s3":
        head = backend.s3.head_object(Bucket=BUCKET, Key=f"{backend.prefix}/big/object.bin")
        assert head["ETag"].strip('"').endswith("-3")  # really uploaded as 3 parts


# ---- reading --------------------------------------------------------------------------------

DATA = pattern(1000, seed=3)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, DATA),
        (10, 20, DATA[10:20]),
        (0, 0, b""),
        (999, None, DATA[999:]),
        (1000, None, b""),
        (1000, 1000, b""),
        (995, 5000, DATA[995:]),  # a long end is clamped, as with HTTP ranges
    ],
)
def test_stream_ranges(store: BlobStore, start: int, end: int | None, expected: bytes) -> None:
    store.put("r", DATA)
    assert b"".join(store.stream("r", start=start, end=end)) == expected
    if end is not None:
        assert store.read_range("r", start, end) == expected


def test_stream_chunks_are_bounded(store: BlobStore) -> None:
    store.put("r", DATA)
    chunks = list(store.stream("r", start=3, end=40, chunk_size=7))
    assert [len(c) for c in chunks] == [7, 7, 7, 7, 7, 2]
    assert b"".join(chunks) == DATA[3:40]


@pytest.mark.parametrize(("start", "end"), [(1001, None), (-1, 10), (0, -5), (20, 10)])
def test_bad_ranges_are_rejected(store: BlobStore, start: int, end: int | None) -> None:
    store.put("r", DATA)
    with pytest.raises(InvalidInput) as caught:
        store.stream("r", start=start, end=end)  # raised before iterating
    assert caught.value.field == "range"


MISSING_OPERATIONS: dict[str, Callable[[BlobStore], object]] = {
    "get": lambda s: s.get("missing"),
    "stream": lambda s: s.stream("missing"),
    "read_range": lambda s: s.read_range("missing", 0, 1),
    "size": lambda s: s.size("missing"),
    "sha512": lambda s: s.sha512("missing"),
    "delete": lambda s: s.delete("missing"),
    "copy": lambda s: s.copy("missing", "other"),
}


@pytest.mark.parametrize("operation", MISSING_OPERATIONS)
def test_missing_key_is_not_found(store: BlobStore, operation: str) -> None:
    store.put("missing/child", b"a folder of that name must not count as an object")
    with pytest.raises(NotFound) as caught:
        MISSING_OPERATIONS[operation](store)
    assert caught.value.field == "key"
    assert not store.exists("missing")
    assert not store.exists("other")


# ---- listing, deleting, copying -------------------------------------------------------------


def test_list_with_prefix_and_nesting(store: BlobStore) -> None:
    keys = ["a/b/c.txt", "a/b/d.txt", "a/e.txt", "ab.txt", "z"]
    for key in reversed(keys):
        store.put(key, key.encode())
    assert list(store.list()) == keys
    assert list(store.list("a/")) == ["a/b/c.txt", "a/b/d.txt", "a/e.txt"]
    assert list(store.list("a")) == ["a/b/c.txt", "a/b/d.txt", "a/e.txt", "ab.txt"]
    assert list(store.list("a/b/d")) == ["a/b/d.txt"]
    assert list(store.list("nothing/")) == []
    with pytest.raises(InvalidInput) as caught:
        store.list("../")
    assert caught.value.field == "prefix"


def test_delete_then_not_found(store: BlobStore) -> None:
    store.put("x/y/z", b"1")
    store.put("x/keep", b"2")
    store.delete("x/y/z")
    assert not store.exists("x/y/z")
    assert list(store.list()) == ["x/keep"]
    with pytest.raises(NotFound):
        store.get("x/y/z")
    with pytest.raises(NotFound):
        store.delete("x/y/z")


def test_deleted_folder_name_can_become_a_key(store: BlobStore) -> None:
    store.put("p/q/r", b"1")
    store.delete("p/q/r")
    store.put("p", b"now a file")  # the emptied folders are gone (local) or never existed (S3)
    assert store.get("p") == b"now a file"


def test_copy(store: BlobStore) -> None:
    data = pattern(4000)
    store.put("src", data)
    info = store.copy("src", "sub/dst")
    assert (info.key, info.size) == ("sub/dst", len(data))
    assert info.sha512 in (None, sha(data))  # None when copied server-side
    assert store.get("sub/dst") == data
    assert store.get("src") == data


def test_local_path(backend: Backend) -> None:
    backend.store.put("f/g.bin", b"bytes on disk")
    path = backend.store.local_path("f/g.bin")
    if backend.name == "local":
        assert path is not None
        assert path.is_file()
        assert path.read_bytes() == b"bytes on disk"
        with pytest.raises(NotFound):
            backend.store.local_path("f/missing")
    else:
        assert path is None


# ---- bad keys -------------------------------------------------------------------------------

BAD_KEYS = [
    "../x",
    "/abs",
    "a//b",
    "",
    "a/./b",
    "a/..",
    "a/",
    "a\\b",
    "a\x00b",
    ".tmp-x",
    "d/.tmp-1",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_rejected(store: BlobStore, key: str) -> None:
    for operation in (
        lambda: store.put(key, b"x"),
        lambda: store.get(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.local_path(key),
    ):
        with pytest.raises(InvalidInput) as caught:
            operation()
        assert caught.value.field == "key"
    assert list(store.list()) == []


def test_local_key_cannot_be_object_and_folder(tmp_path: Path) -> None:
    store = open_blobs(str(tmp_path))
    store.put("a", b"object")
    with pytest.raises(Conflict) as caught:
        store.put("a/b", b"under an object")
    assert caught.value.field == "key"
    store.put("c/d", b"x")
    with pytest.raises(Conflict):
        store.put("c", b"over a folder")
    assert list(store.list()) == ["a", "c/d"]


# ---- open_blobs -----------------------------------------------------------------------------


def test_open_blobs_bare_path_creates_folder(tmp_path: Path) -> None:
    root = tmp_path / "new" / "root"
    store = open_blobs(str(root))
    assert root.is_dir()
    store.put("k", b"v")
    assert store.local_path("k") == root / "k"


def test_open_blobs_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_blobs("rel/blobs")
    store.put("k", b"v")
    assert (tmp_path / "rel" / "blobs" / "k").read_bytes() == b"v"


def test_open_blobs_file_url(tmp_path: Path) -> None:
    root = tmp_path / "with space"
    store = open_blobs(root.as_uri())  # file:///…/with%20space
    store.put("k", b"v")
    assert (root / "k").read_bytes() == b"v"
    assert store.url == root.as_uri()


@pytest.mark.parametrize(
    "url", ["", "ftp://host/x", "gs://bucket", "file://otherhost/x", "file:relative", "s3://"]
)
def test_open_blobs_rejects_bad_urls(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        open_blobs(url)
    assert caught.value.field == "storage_url"


def test_open_blobs_on_a_file_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError, match="cannot create"):
        open_blobs(str(tmp_path / "file"))


def test_local_backend_failure_is_a_storage_error(tmp_path: Path) -> None:
    store = open_blobs(str(tmp_path))
    with pytest.raises(StorageError, match="cannot write"):
        store.put("n" * 300, b"v")  # longer than a file name may be (ENAMETOOLONG)
    assert list(store.list()) == []


def test_s3_without_s3fs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # makes `import s3fs` fail
    with pytest.raises(StorageError, match=r"install matterhub\[s3\]"):
        open_blobs("s3://bucket/prefix")


@pytest.mark.s3
@pytest.mark.skipif(not HAVE_S3, reason="needs matterhub[s3]")
def test_s3_part_size_below_minimum_is_rejected() -> None:
    with pytest.raises(InvalidInput) as caught:
        open_blobs("s3://bucket", {"default_block_size": MiB})
    assert caught.value.field == "storage_options.default_block_size"


@pytest.mark.s3
@pytest.mark.skipif(not HAVE_S3, reason="needs matterhub[s3]")
def test_s3_bad_prefix_is_rejected() -> None:
    with pytest.raises(InvalidInput) as caught:
        open_blobs("s3://bucket/a/../b", {})
    assert caught.value.field == "storage_url"


@pytest.mark.s3
@pytest.mark.skipif(not HAVE_S3, reason="needs matterhub[s3]")
def test_s3_unreachable_is_a_storage_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = s3_options(f"http://127.0.0.1:{port}", config_kwargs={"retries": {"max_attempts": 1}})
    store = open_blobs(f"s3://{BUCKET}", options)
    # Each operation must fail loudly: an unreachable store is not an empty one.
    for operation in (lambda: store.put("k", b"v"), lambda: store.exists("k"), store.list):
        with pytest.raises(StorageError, match=f"s3://{BUCKET}"):
            operation()


def test_put_files_stores_many_local_files(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    sources = []
    for n in range(5):
        path = tmp_path / "src" / f"f{n}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pattern(1000 + n, seed=n))
        sources.append((f"batch/f{n}.bin", path))
    infos = store.put_files(sources)
    assert [i.key for i in infos] == [k for k, _ in sources]
    for info, (key, path) in zip(infos, sources, strict=True):
        data = path.read_bytes()
        assert (info.size, info.sha512) == (len(data), sha(data))
        path.unlink()  # the source going away never takes the stored object with it
        assert store.get(key) == data
    assert not [name for name in backend.leftovers() if ".tmp-" in name]
