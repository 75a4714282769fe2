"""Client methods over /api/datasets: versions, manifests, citations, downloads and loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matterhub.client.base import HTTPCore

__all__ = ["EXPORT_PATHS", "DatasetMethods"]

EXPORT_PATHS = {
    "ro-crate": "ro-crate-metadata.json",
    "croissant": "croissant.json",
    "schema.org": "schema.org.json",
}
"""Export format → the path after `/api/datasets/<source_id>/` that serves it."""


class DatasetMethods(HTTPCore):
    """Read published datasets: anonymous callers see public ones."""

    def dataset(self, source_id: str) -> dict[str, Any]:
        """A version (`name_v1.0`), or a dataset's latest published version (`name`)."""
        result: dict[str, Any] = self._json("GET", f"/api/datasets/{source_id}")
        return result

    def datasets(self) -> list[dict[str, Any]]:
        """The datasets the caller can see."""
        result: list[dict[str, Any]] = self._json("GET", "/api/datasets")
        return result

    def versions(self, source_name: str) -> list[dict[str, Any]]:
        """Every version of a dataset the caller can see."""
        result: list[dict[str, Any]] = self._json("GET", f"/api/datasets/{source_name}/versions")
        return result

    def manifest(self, source_id: str) -> dict[str, Any]:
        """`{source_id, files: [{path, size, sha512, mime_type}], …}`."""
        result: dict[str, Any] = self._json("GET", f"/api/datasets/{source_id}/manifest")
        return result

    def cite(self, source_id: str, format: str = "bibtex") -> str:
        """The citation in `bibtex`, `ris`, `datacite-json`, `datacite-xml`, … ."""
        response = self._request(
            "GET", f"/api/datasets/{source_id}/cite", params={"format": format}
        )
        return response.text

    def dataset_export(self, source_id: str, format: str = "ro-crate") -> dict[str, Any]:
        """A published version's JSON-LD description: `ro-crate` (RO-Crate 1.1 metadata),
        `croissant` (its tabular and array data) or `schema.org` (a `Dataset`)."""
        try:
            path = EXPORT_PATHS[format]
        except KeyError:
            known = ", ".join(EXPORT_PATHS)
            raise ValueError(f"unknown export format {format!r}; use one of {known}") from None
        result: dict[str, Any] = self._json("GET", f"/api/datasets/{source_id}/{path}")
        return result

    def download(self, results_or_source_id: Any, dest: str | Path = ".", **kwargs: Any) -> Any:
        """Parallel, resumable, checksum-verified download (see `client.downloads.download`)."""
        from matterhub.client.downloads import download

        return download(self, results_or_source_id, Path(dest), **kwargs)

    def load_dataset(self, source_id: str, **kwargs: Any) -> Any:
        """A dataset's records as a DataFrame (see `client.frames.load_dataset`)."""
        from matterhub.client.frames import load_dataset

        return load_dataset(self, source_id, **kwargs)
