"""Blob storage through fsspec: a local folder by default, S3-compatible object storage at scale."""

from matterhub.blobs.base import BlobInfo, BlobStore
from matterhub.blobs.fsspec import open_blobs

__all__ = ["BlobInfo", "BlobStore", "open_blobs"]
