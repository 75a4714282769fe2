"""A version's manifest.json written as a stream of bytes, one file entry at a time.

The bytes are exactly `json.dumps(manifest, indent=2, sort_keys=True)` of the whole document —
what `verify` re-hashes and what clients have always read — but the `files` list is never held:
publishing a version of 361,804 files holds one page of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["manifest_chunks"]

_PLACEHOLDER = "\x00files\x00"
_ENTRIES_PER_CHUNK = 500


def manifest_chunks(head: dict[str, Any], files: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """The manifest of `head` (every key but `files`) with `files` streamed in, as bytes."""
    if "files" in head:
        raise ValueError("the files come as their own iterable")
    text = json.dumps({**head, "files": _PLACEHOLDER}, indent=2, sort_keys=True)
    before, after = text.split(json.dumps(_PLACEHOLDER), 1)
    yield before.encode()
    pending: list[str] = []
    first = True
    for entry in files:
        body = json.dumps(entry, indent=2, sort_keys=True).replace("\n", "\n    ")
        pending.append(("[\n    " if first else ",\n    ") + body)
        first = False
        if len(pending) == _ENTRIES_PER_CHUNK:
            yield "".join(pending).encode()
            pending = []
    pending.append("[]" if first else "\n  ]")
    yield "".join(pending).encode()
    yield after.encode()
