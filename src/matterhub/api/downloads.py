"""HTTP file responses: ETag, If-None-Match, single and multiple Range, streamed archives.

Local blobs are read with `os.pread` in large blocks in a worker thread (no Python-level
buffering, no copy through a file object); remote ones stream from the blob store.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import anyio
from starlette.background import BackgroundTask
from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from matterhub.blobs import BlobStore
from matterhub.publish import FileHandle

__all__ = [
    "BLOCK",
    "FileDownload",
    "archive_chunks",
    "etag_matches",
    "file_response",
    "parse_ranges",
]

BLOCK = 4 << 20
"""Bytes per read and per ASGI message: large enough that per-message overhead vanishes."""
_MAX_RANGES = 64


def parse_ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """`[(start, stop)]` (stop exclusive) for a `Range` header; None means "send it all".

    Returns [] for a syntactically valid but unsatisfiable set (→ 416). Malformed headers
    are ignored, as RFC 9110 allows.
    """
    if not header or not header.startswith("bytes="):
        return None
    out: list[tuple[int, int]] = []
    specs = [s.strip() for s in header[6:].split(",") if s.strip()]
    if not specs or len(specs) > _MAX_RANGES:
        return None
    for spec in specs:
        first, sep, last = spec.partition("-")
        if not sep:
            return None
        try:
            if first == "":
                n = int(last)
                if n <= 0:
                    continue
                out.append((max(0, size - n), size))
                continue
            start = int(first)
            stop = int(last) + 1 if last else size
        except ValueError:
            return None
        if start < 0 or stop <= start:
            return None
        if start >= size:
            continue
        out.append((start, min(stop, size)))
    return out


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an If-None-Match / If-Range header names `etag` (weak comparison, `*` too)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


class FileDownload(Response):
    """A stored file, answered with the right status, headers and ranges for the request."""

    def __init__(
        self,
        handle: FileHandle,
        blobs: BlobStore,
        *,
        method: str,
        range_header: str | None,
        if_none_match: str | None,
        if_range: str | None,
        filename: str,
    ) -> None:
        self.handle = handle
        self.blobs = blobs
        self.background: BackgroundTask | None = None
        self.etag = f'"{handle.sha512}"'
        size = handle.size
        headers = {
            "etag": self.etag,
            "accept-ranges": "bytes",
            "cache-control": "public, max-age=31536000, immutable",
            "content-disposition": f"attachment; filename*=UTF-8''{_quote(filename)}",
            "repr-digest": f"sha-512=:{_b64(handle.sha512)}:",
        }
        self.send_body = method != "HEAD"
        self.ranges: list[tuple[int, int]] = [(0, size)]
        self.boundary: str | None = None
        if etag_matches(if_none_match, self.etag):
            self.status_code = 304
            self.ranges = []
            self._init(headers, None, 0)
            return
        ranges = parse_ranges(range_header, size)
        if ranges is not None and if_range and not etag_matches(if_range, self.etag):
            ranges = None  # the client's copy is stale: send the whole file
        if ranges == []:
            self.status_code = 416
            headers["content-range"] = f"bytes */{size}"
            self.ranges = []
            self._init(headers, None, 0)
            return
        if ranges is None:
            self.status_code = 200
            self._init(headers, handle.mime_type, size)
        elif len(ranges) == 1:
            start, stop = ranges[0]
            self.status_code = 206
            self.ranges = ranges
            headers["content-range"] = f"bytes {start}-{stop - 1}/{size}"
            self._init(headers, handle.mime_type, stop - start)
        else:
            self.status_code = 206
            self.ranges = ranges
            self.boundary = secrets.token_hex(16)
            self.parts = [
                (
                    f"\r\n--{self.boundary}\r\ncontent-type: {handle.mime_type}\r\n"
                    f"content-range: bytes {a}-{b - 1}/{size}\r\n\r\n"
                ).encode()
                for a, b in ranges
            ]
            self.tail = f"\r\n--{self.boundary}--\r\n".encode()
            length = sum(len(p) for p in self.parts) + sum(b - a for a, b in ranges)
            self._init(
                headers,
                f"multipart/byteranges; boundary={self.boundary}",
                length + len(self.tail),
            )

    def _init(self, headers: dict[str, str], media_type: str | None, length: int) -> None:
        if media_type is not None:
            headers["content-type"] = media_type
        if self.status_code != 304:
            headers["content-length"] = str(length)
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        if not self.send_body or not self.ranges:
            await send({"type": "http.response.body", "body": b""})
            return
        if self.boundary is None:
            async for chunk in self._read(*self.ranges[0]):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        else:
            for part, (start, stop) in zip(self.parts, self.ranges, strict=True):
                await send({"type": "http.response.body", "body": part, "more_body": True})
                async for chunk in self._read(start, stop):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": self.tail, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _read(self, start: int, stop: int) -> AsyncIterator[bytes]:
        path = self.handle.local_path
        if path is None:
            chunks = self.blobs.stream(self.handle.key, start=start, end=stop, chunk_size=BLOCK)
            async for chunk in iterate_in_threadpool(chunks):
                yield chunk
            return
        fd = await anyio.to_thread.run_sync(os.open, path, os.O_RDONLY)
        try:
            offset = start
            while offset < stop:
                n = min(BLOCK, stop - offset)
                chunk = await anyio.to_thread.run_sync(os.pread, fd, n, offset)
                if not chunk:
                    raise OSError(f"{path} shrank while being sent")
                offset += len(chunk)
                yield chunk
        finally:
            os.close(fd)


def file_response(handle: FileHandle, blobs: BlobStore, request: Request) -> FileDownload:
    """A file of a version answering the request's method, `Range`, `If-None-Match`, `If-Range`."""
    return FileDownload(
        handle,
        blobs,
        method=request.method,
        range_header=request.headers.get("range"),
        if_none_match=request.headers.get("if-none-match"),
        if_range=request.headers.get("if-range"),
        filename=handle.path.rsplit("/", 1)[-1],
    )


def archive_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Run a blocking archive generator in the thread pool, chunk by chunk."""
    return iterate_in_threadpool(chunks)


def _quote(name: str) -> str:
    return quote(name, safe="")


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()
