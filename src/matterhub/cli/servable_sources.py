"""`matterhub servable publish <git or URL source>`: the hub fetches the files (issue #15).

A target is a source rather than a bundle when it names a scheme: `git+https://…`,
`git+ssh://…`, `git+file://…`, `git://…`, `https://…`, `zenodo:<id>`, `figshare:<id>`, an fsspec
URL, or `user@host:path` (scp-like git). A local path stays a bundle folder or zip.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from matterhub.client import Client

__all__ = ["is_source", "source_body"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!//)")


def is_source(target: str) -> bool:
    """Whether `target` names a remote or git source rather than a local bundle."""
    return bool(
        _SCHEME.match(target)
        or _SCP_LIKE.match(target)
        or target.startswith(("zenodo:", "figshare:"))
        or "::" in target
    )


def source_body(
    target: str, *, document: Path | None, paths: list[str], ref: str | None
) -> dict[str, Any]:
    """The JSON body of the publish request; the document is read from `document` if given.

    Raises:
        ValueError: the document file is missing or not a JSON object.
    """
    source: dict[str, Any] = {"url": target}
    if ref:
        source["ref"] = ref
    if paths:
        source["paths"] = list(paths)
    body: dict[str, Any] = {"source": source}
    if document is not None:
        if not document.is_file():
            raise ValueError(f"{document} is not a file")
        try:
            loaded = json.loads(document.read_text())
        except ValueError as exc:
            raise ValueError(f"{document} is not JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{document} does not hold a JSON object")
        body["document"] = loaded
    return body


def publish(client: Client, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Send the source form; (the build, whether it is new rather than published before)."""
    response = client._request("POST", "/api/servables", json=body)
    build: dict[str, Any] = response.json()
    return build, response.status_code == 202
