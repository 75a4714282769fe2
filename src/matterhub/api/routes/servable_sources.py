"""`POST /api/servables` with a JSON body: publish a servable whose files the hub fetches from a
git repository or URLs (issue #15). The multipart form (a bundle) stays in `servables.py`."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from matterhub.core.errors import InvalidInput, Unauthenticated
from matterhub.core.identity import Identity
from matterhub.hub import ServableService

__all__ = ["SOURCE_BODY", "is_json", "publish_from_source"]

# The JSON form of the request, for the OpenAPI description of `POST /api/servables`.
SOURCE_BODY: dict[str, Any] = {
    "schema": {
        "type": "object",
        "properties": {
            "document": {
                "type": "object",
                "description": (
                    "The servable document; absent: the source's root dlhub.json or "
                    "document.json. Files it names are paths in the source."
                ),
            },
            "source": {
                "oneOf": [
                    {"type": "string", "description": "A URL, git URLs optionally `…@<ref>`."},
                    {
                        "type": "object",
                        "required": ["url"],
                        "properties": {
                            "url": {
                                "type": "string",
                                "description": (
                                    "git+https://…, git+ssh://…, git://…, git+file://… "
                                    "(allowed folders only), https://github.com/owner/repo, "
                                    "an http(s) file or archive, an allowed fsspec URL, "
                                    "zenodo:<id>, figshare:<id>."
                                ),
                            },
                            "ref": {
                                "type": "string",
                                "description": "git: a branch, tag or (short) commit.",
                            },
                            "paths": {
                                "type": "array",
                                "items": {"type": "string"},
                                "description": "Files or folders to take (default: all).",
                            },
                            "type": {"enum": ["git", "url"]},
                        },
                    },
                ],
                "description": (
                    "Where the files are. Or give it as document.dlhub.source. The hub records "
                    "what it fetched (commit, checksums) as dlhub.source."
                ),
            },
        },
    },
    "example": {
        "source": {"url": "git+https://example.org/lab/models.git", "ref": "v1.0"},
        "document": {"dlhub": {"name": "band-gap"}, "datacite": {}, "servable": {}},
    },
}


def is_json(request: Request) -> bool:
    """Whether the request body is JSON (the source form) rather than multipart."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


async def publish_from_source(
    request: Request, identity: Identity, service: ServableService
) -> JSONResponse:
    """Fetch and publish (off the event loop): 202 with a new build, 200 with the build of the
    version the same document and commit made before."""
    if identity.user_id is None:  # before reading the body: strangers learn nothing of the form
        raise Unauthenticated("publishing a servable needs a token")
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise InvalidInput(f"the body is not JSON: {exc}", field="body") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body is a JSON object with 'source'", field="body")
    unknown = set(body) - {"document", "source"}
    if unknown:
        raise InvalidInput(f"unexpected key {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    document = body.get("document")
    source = body.get("source")
    if source is None and isinstance(document, dict):
        source = (document.get("dlhub") or {}).get("source")
    if source is None:
        raise InvalidInput(
            "a JSON publish names a 'source' (or document.dlhub.source); upload files as "
            "multipart/form-data",
            field="source",
        )
    build, created = await run_in_threadpool(service.publish_source, identity, document, source)
    return JSONResponse(build.model_dump(mode="json"), status_code=202 if created else 200)
