"""Client methods over /connect: submissions (with local files), status, updates, curation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matterhub.client.base import HTTPCore
from matterhub.client.uploads import in_parts, local_files, open_parts

__all__ = ["ConnectMethods"]


class ConnectMethods(HTTPCore):
    """Client methods over /connect: status, submissions and curation."""

    def submit(self, submission: dict[str, Any]) -> dict[str, Any]:
        """POST /connect/submit; returns the hub's answer (with `source_id`)."""
        result: dict[str, Any] = self._json("POST", "/connect/submit", json=submission)
        return result

    def submit_with_files(
        self, submission: dict[str, Any], paths: Sequence[str | Path]
    ) -> dict[str, Any]:
        """POST /connect/submit/files: the local files and directories are streamed as one
        `upload://` data source of the submission (directories keep their name).

        More than one request's worth (`uploads.in_parts`: 1,000 files or 32 MiB) goes first as
        several `/connect/uploads`, one `upload://` source each, then the submission names
        them all; the hub collects them into one dataset.
        """
        files = local_files(paths)
        if not files:
            raise ValueError(f"no files to upload under {', '.join(map(str, paths))}")
        parts = in_parts(files)
        if len(parts) > 1:
            sources = [self._upload(part) for part in parts]
            return self.submit(
                {**submission, "data_sources": [*submission["data_sources"], *sources]}
            )
        form = {"submission": json.dumps(submission, allow_nan=False)}
        with open_parts("files", files) as opened:
            result: dict[str, Any] = self._json(
                "POST", "/connect/submit/files", data=form, files=opened
            )
        return result

    def upload_files(self, paths: Sequence[str | Path]) -> str:
        """POST /connect/uploads: `upload://<id>`, to name in a submission's `data_sources`."""
        files = local_files(paths)
        if not files:
            raise ValueError(f"no files to upload under {', '.join(map(str, paths))}")
        return self._upload(files)

    def _upload(self, files: Sequence[tuple[str, Path]]) -> str:
        with open_parts("files", files) as parts:
            answer = self._json("POST", "/connect/uploads", files=parts)
        return str(answer["data_source"])

    def update_metadata(self, source_id: str, update: dict[str, Any]) -> dict[str, Any]:
        """POST /connect/update/<source_id>: new metadata, same data (a new minor version)."""
        body = {**update, "update_metadata_only": True}
        result: dict[str, Any] = self._json("POST", f"/connect/update/{source_id}", json=body)
        return result

    def latest_source_id(self, source_name: str) -> str:
        """The source_id of a dataset's latest version the caller can see."""
        versions: list[dict[str, Any]] = self._json("GET", f"/api/datasets/{source_name}/versions")
        if not versions:
            raise ValueError(f"no versions of {source_name!r}")
        return str(versions[-1]["source_id"])

    def status(self, source_id: str) -> dict[str, Any]:
        """A submission's status block: `status_list` of MDF's steps, `active`, `state`."""
        doc: dict[str, Any] = self._json("GET", f"/connect/status/{source_id}")
        block: dict[str, Any] = doc.get("status", doc)
        return block

    def submissions(self, filters: list[Any] | None = None) -> list[dict[str, Any]]:
        """The caller's submissions (everyone's for administrators)."""
        body = {"filters": filters or []}
        doc = self._json("POST", "/connect/submissions", json=body, idempotent=True)
        result: list[dict[str, Any]] = doc.get("submissions", [])
        return result

    def curation_tasks(self) -> list[dict[str, Any]]:
        """Submissions waiting for a curator."""
        result: list[dict[str, Any]] = self._json("GET", "/connect/curation/")["curation_tasks"]
        return result

    def curation_task(self, source_id: str) -> dict[str, Any]:
        """The dataset entry, sample records and extraction summary of one waiting submission."""
        result: dict[str, Any] = self._json("GET", f"/connect/curate/{source_id}")["curation_task"]
        return result

    def curate(self, source_id: str, action: str, reason: str) -> dict[str, Any]:
        """Accept or reject a waiting submission (curators)."""
        body = {"action": action, "reason": reason}
        result: dict[str, Any] = self._json("POST", f"/connect/curate/{source_id}", json=body)
        return result

    def cancel(self, source_id: str) -> dict[str, Any]:
        """Cancel a running submission."""
        result: dict[str, Any] = self._json("POST", f"/connect/cancel/{source_id}")
        return result
