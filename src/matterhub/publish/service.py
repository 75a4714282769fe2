"""The dataset repository: drafts, uploads, publish, withdraw, downloads and citations.

A version's bytes live under `datasets/<source_name>/v<major>.<minor>/` in the blob store:
`files/<path>…`, then at publish `dataset.json`, `records.jsonl` and `manifest.json`. Once
published, nothing under that folder is written again; a later version that keeps a file points
at the same blob (the `dataset_files.blob_key`), so a metadata-only update copies no bytes.
"""

from __future__ import annotations

from matterhub.publish.drafts import DatasetDrafts
from matterhub.publish.files import PendingWrite
from matterhub.publish.reads import FileHandle
from matterhub.publish.uploads import DatasetUploads

__all__ = ["DatasetService", "FileHandle", "PendingWrite"]


# Each part is a mixin over one shared state (`base.ServiceBase`); a part that calls another
# inherits it (drafts -> lifecycle -> reads, uploads -> files), so mypy checks every call.
class DatasetService(DatasetDrafts, DatasetUploads):
    """Datasets and their versions; every method takes the caller's identity first."""
