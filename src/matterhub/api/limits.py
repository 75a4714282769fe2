"""Request body limits as pure ASGI middleware: size (413) for every body, depth (400) for JSON.

One middleware for both, so a request pays for one wrapper. Depth is checked here, before any
route parses the body, because the parsers behind the routes (the stdlib's, orjson, pydantic) and
the code that walks parsed bodies recurse per level: a body nested thousands deep was a 500.
"""

from __future__ import annotations

import json
import re
from functools import cache

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimits", "json_too_deep"]

_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})
# Anything between brackets that is not a bracket: a run of plain characters or a whole string
# (whose brackets are text). Possessive quantifiers keep the match linear: no backtracking.
_FILLER = rb'(?:[^\[\]{}"]++|"(?:[^"\\]++|\\.)*+")'


@cache
def _within(limit: int) -> re.Pattern[bytes]:
    """A pattern matching exactly the JSON texts nested at most `limit` deep."""
    group = rb"[\[{]" + _FILLER + rb"*+[\]}]"
    for _ in range(limit - 1):
        group = rb"[\[{](?:" + _FILLER + rb"|" + group + rb")*+[\]}]"
    return re.compile(rb"(?:" + _FILLER + rb"|" + group + rb")*+", re.S)


def json_too_deep(body: bytes, limit: int) -> bool:
    """Whether a JSON text nests arrays and objects deeper than `limit`.

    Invalid JSON that is not too deep passes: the route's parser reports it as it always has.
    """
    # Fewer brackets than the limit cannot nest past it: nearly every body stops here, at the
    # cost of two C scans (a run request pays ~1 µs).
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    # One linear regex pass (~10-40 ns a byte, about what parsing the JSON costs).
    if _within(limit).fullmatch(body) is not None:
        return False
    # No match: too deep, or not JSON at all (unbalanced, an open string). Only a parser knows.
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return "depth limit" in str(exc)  # past orjson's own cap (1024): deeper still
    return True


def _is_json(scope: Scope) -> bool:
    """Requests whose body a route may parse as JSON (FastAPI does when no type is given)."""
    if scope.get("method") in _NO_BODY:
        return False
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json") or not media
    return True


class BodyLimits:
    """Bodies over `max_bytes` get 413; JSON bodies nested past `max_json_depth` get 400.

    A JSON body is read whole before the route runs (every route reads it whole anyway) and
    replayed to it; other bodies stream through, counted as they go.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_json_depth: int = 64) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse_size(send)
            return
        if _is_json(scope):
            await self._json(scope, receive, send)
        else:
            await self._streamed(scope, receive, send)

    async def _json(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] == "http.request" and message.get("more_body", False):
            chunks = [message.get("body", b"")]
            seen = len(chunks[0])
            while message.get("more_body", False):
                message = await receive()
                if message["type"] != "http.request":
                    break  # the client left; the route will hear it
                chunks.append(message.get("body", b""))
                seen += len(chunks[-1])
                if seen > self.max_bytes:
                    await self._refuse_size(send)
                    return
            message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        if message["type"] == "http.request":
            body = message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._refuse_size(send)
                return
            if json_too_deep(body, self.max_json_depth):
                await self._refuse(send, 400, self._depth_body())
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return message

        await self.app(scope, replay, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send) -> None:
        seen = 0
        started = refused = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # we answered 413 already; drop whatever the app says next
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def counting_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer here: frameworks turn errors raised while reading a body into 400.
                    if not started:
                        await self._refuse_size(send)
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counting_receive, guarded_send)

    def _detail(self) -> str:
        return f"request body is larger than the limit of {self.max_bytes} bytes"

    def _depth_body(self) -> dict[str, str]:
        limit = self.max_json_depth
        return {
            "error": "json_too_deep",
            "detail": (
                f"the JSON body nests arrays and objects deeper than {limit}; the limit is "
                f"{limit}, set by MATTERHUB_MAX_JSON_DEPTH"
            ),
            "field": "body",
        }

    async def _refuse_size(self, send: Send) -> None:
        body = {"error": "payload_too_large", "detail": self._detail(), "field": "body"}
        await self._refuse(send, 413, body)

    @staticmethod
    async def _refuse(send: Send, status: int, content: dict[str, str]) -> None:
        body = json.dumps(content).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
