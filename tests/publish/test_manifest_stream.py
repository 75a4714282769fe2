"""The streamed manifest is byte for byte the document `json.dumps` would make of it whole."""

from __future__ import annotations

import json

import pytest

from matterhub.publish.manifest import manifest_chunks

HEAD = {
    "source_id": "films_v1.1",
    "pid": "10.5072/abc",
    "published_at": "2026-12-07T21:00:00+00:00",
    "documents": {"dataset.json": {"size": 10, "sha512": "ab"}, "records.jsonl": {"size": 0}},
}


@pytest.mark.parametrize("count", [0, 1, 2, 499, 500, 501, 1203])
def test_streamed_manifest_matches_the_whole_document(count: int) -> None:
    files = [
        {
            "path": f"b{i // 100:04d}/s{i:06d}/é.png",  # non-ASCII is escaped as json.dumps does
            "size": i,
            "sha512": f"{i:0128x}",
            "mime_type": "image/png",
            **({"restricted": True} if i % 3 == 0 else {}),
        }
        for i in range(count)
    ]
    chunks = list(manifest_chunks(HEAD, iter(files)))
    whole = json.dumps({**HEAD, "files": files}, indent=2, sort_keys=True).encode()
    assert b"".join(chunks) == whole
    assert json.loads(b"".join(chunks))["files"] == files
    assert max(len(c) for c in chunks) < 1_000_000  # a page of entries a chunk, never the list


def test_the_files_come_only_as_their_own_iterable() -> None:
    with pytest.raises(ValueError, match="own iterable"):
        list(manifest_chunks({**HEAD, "files": []}, []))
