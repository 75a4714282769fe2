"""Submitting datasets: `ConnectClient` mirrors MDFConnectClient's builder over /connect.

```python
mdfcc = ConnectClient(client)           # was: MDFConnectClient()
mdfcc.create_dc_block(title="Fe alloys", authors=["Jane Doe"])
mdfcc.add_data_source("https://example.org/data.zip")
result = mdfcc.submit_dataset()         # {source_id, success, error, status_code}
mdfcc.check_status(raw=True)
```
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

from matterhub.client.base import HTTPCore
from matterhub.client.errors import APIError

__all__ = ["ConnectClient", "ConnectMethods", "author_name"]


def author_name(name: str) -> dict[str, str]:
    """ "Jane Q. Doe" or "Doe, Jane Q." → DataCite creator fields (family, given)."""
    name = " ".join(name.replace(";", ",").split())
    if "," in name:
        family, given = (p.strip() for p in name.split(",", 1))
    else:
        parts = name.split(" ")
        family, given = parts[-1], " ".join(parts[:-1])
    return {
        "creatorName": f"{family}, {given}".strip(" ,"),
        "familyName": family,
        "givenName": given,
    }


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


class ConnectMethods(HTTPCore):
    """Client methods over /connect: status, submissions and curation."""

    def submit(self, submission: dict[str, Any]) -> dict[str, Any]:
        """POST /connect/submit; returns the hub's answer (with `source_id`)."""
        result: dict[str, Any] = self._json("POST", "/connect/submit", json=submission)
        return result

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


class ConnectClient:
    """MDFConnectClient's builder and calls, over a MatterHub client."""

    def __init__(self, client: ConnectMethods, test: bool = False) -> None:
        self.client = client
        self.test = test
        self.source_id: str | None = None
        self.dc: dict[str, Any] = {}
        self.data_sources: list[str] = []
        self.mdf: dict[str, Any] = {}
        self.custom: dict[str, Any] = {}
        self.projects: dict[str, Any] = {}
        self.index: dict[str, Any] = {}
        self.services: dict[str, Any] = {}
        self.tags: list[str] = []
        self.dataset_acl: list[str] = []
        self.curation = False
        self.no_extract = False

    # -- building --------------------------------------------------------------------------
    def create_dc_block(
        self,
        title: Any,
        authors: Any,
        affiliations: Any = None,
        publisher: str | None = None,
        publication_year: Any = None,
        resource_type: str | None = None,
        description: str | None = None,
        dataset_doi: str | None = None,
        related_dois: Any = None,
        subjects: Any = None,
        **kwargs: Any,
    ) -> None:
        """The DataCite block, as MDFConnectClient builds it."""
        if not title or not authors:
            raise TypeError("'title' and 'authors' are required arguments.")
        titles = title if isinstance(title, list) else [title]
        names = authors if isinstance(authors, list) else [authors]
        affs = affiliations or []
        affs = affs if isinstance(affs, list) else [affs]
        if len(affs) != len(names):
            affs = [affs] * len(names)
        creators = []
        for author, own in zip(names, affs, strict=True):
            creator: dict[str, Any] = author_name(str(author))
            own = own if isinstance(own, list) else [own]
            if own:
                creator["affiliations"] = own
            creators.append(creator)
        try:
            year = str(int(publication_year))
        except (TypeError, ValueError):
            year = str(datetime.now().year)
        dc: dict[str, Any] = {
            "titles": [{"title": t} for t in titles],
            "creators": creators,
            "publisher": publisher or "Materials Data Facility",
            "publicationYear": year,
            "resourceType": {
                "resourceTypeGeneral": "Dataset",
                "resourceType": resource_type or "Dataset",
            },
        }
        if description:
            dc["descriptions"] = [{"description": description, "descriptionType": "Other"}]
        if dataset_doi:
            dc["identifier"] = {"identifier": dataset_doi, "identifierType": "DOI"}
        if related_dois:
            dois = related_dois if isinstance(related_dois, list) else [related_dois]
            dc["relatedIdentifiers"] = [
                {"relatedIdentifier": d, "relatedIdentifierType": "DOI", "relationType": "IsPartOf"}
                for d in dois
            ]
        if subjects:
            subs = subjects if isinstance(subjects, list) else [subjects]
            dc["subjects"] = [{"subject": s} for s in subs]
        self.dc = _merge(dc, kwargs)

    def add_data_source(self, data_source: Any) -> None:
        """Where the files are (local path, https URL, git, Zenodo/Figshare record …)."""
        self.data_sources.extend(data_source if isinstance(data_source, list) else [data_source])

    def add_tag(self, tag: Any) -> None:
        """Keywords (become dc.subjects)."""
        self.tags.extend(tag if isinstance(tag, list) else [tag])

    def add_index(
        self, data_type: str, mapping: dict[str, Any], delimiter: str | None = None,
        na_values: Any = None,
    ) -> None:  # fmt: skip
        """Field mapping for json/csv/yaml/xml/excel/filename data."""
        json.dumps(mapping, allow_nan=False)  # as MDF: a mapping must be plain JSON
        entry: dict[str, Any] = {"mapping": mapping}
        if delimiter is not None:
            entry["delimiter"] = delimiter
        if na_values is not None:
            entry["na_values"] = na_values if isinstance(na_values, list) else [na_values]
        self.index[data_type] = entry

    def add_service(self, service: str, parameters: Any = None) -> None:
        """A service to send the dataset to (`mdf_publish`, …)."""
        self.services[service] = True if parameters is None else parameters

    def set_test(self, test: bool) -> None:
        """Test submissions go to the test index and get test identifiers."""
        self.test = bool(test)

    def set_curation(self, curation: bool) -> None:
        """Hold the submission for a curator's accept/reject."""
        self.curation = bool(curation)

    def set_source_name(self, source_name: str) -> None:
        """Choose the dataset's stable name."""
        self.mdf["source_name"] = source_name

    def set_base_acl(self, acl: Any) -> None:
        """Who may see the dataset and its records (`public` by default)."""
        self.mdf["acl"] = acl if isinstance(acl, list) else [acl]

    def set_dataset_acl(self, acl: Any) -> None:
        """Who may see only the dataset entry."""
        self.dataset_acl = acl if isinstance(acl, list) else [acl]

    def set_organization(self, organization: str) -> None:
        """The organization whose rules apply."""
        self.mdf["organizations"] = [organization]

    def set_custom_block(self, custom_fields: dict[str, Any]) -> None:
        """Free-form `custom` fields (at most 10)."""
        self.custom = dict(custom_fields)

    def set_project_block(self, project: str, data: dict[str, Any]) -> None:
        """A project block such as `foundry` (keys and splits for ML loading)."""
        self.projects[project] = data

    def set_passthrough(self, passthrough: bool) -> None:
        """Skip extraction (`no_extract`)."""
        self.no_extract = bool(passthrough)

    def get_submission(self) -> dict[str, Any]:
        """The submission document as it will be sent."""
        sub: dict[str, Any] = {
            "dc": self.dc,
            "data_sources": self.data_sources,
            "test": self.test,
            "update": False,
        }
        for key in ("mdf", "custom", "projects", "index", "services", "tags", "dataset_acl"):
            value = getattr(self, key)
            if value:
                sub[key] = value
        if self.curation:
            sub["curation"] = True
        if self.no_extract:
            sub["no_extract"] = True
        return copy.deepcopy(sub)

    def reset_submission(self) -> None:
        """Clear everything but the test flag."""
        self.dc, self.mdf, self.custom, self.projects = {}, {}, {}, {}
        self.index, self.services = {}, {}
        self.data_sources, self.tags, self.dataset_acl = [], [], []
        self.curation = False
        self.no_extract = False

    # -- calls -----------------------------------------------------------------------------
    def submit_dataset(
        self, update: bool = False, submission: dict[str, Any] | None = None, reset: bool = False
    ) -> dict[str, Any]:
        """Submit; returns `{source_id, success, error, status_code}` as MDFConnectClient."""
        if not submission:
            if not update and self.source_id:
                return self._failed("You have already submitted this dataset. Set update=True")
            submission = self.get_submission()
            submission["update"] = update
        incomplete = not submission.get("dc") or not submission.get("data_sources")
        if incomplete and not submission.get("update_metadata_only"):
            return self._failed("You must populate the dc and data blocks before submission.")
        try:
            json.dumps(submission, allow_nan=False)
        except ValueError as exc:
            return self._failed(f"The submission JSON is invalid: {exc!r}")
        try:
            answer = self.client.submit(submission)
        except APIError as exc:
            return self._failed(exc.detail, exc.status)
        self.source_id = answer.get("source_id")
        if reset:
            self.reset_submission()
        return {"source_id": self.source_id, "success": True, "error": None, "status_code": 202}

    @staticmethod
    def _failed(error: str, status: int | None = None) -> dict[str, Any]:
        return {"source_id": None, "success": False, "error": error, "status_code": status}

    def check_status(
        self, source_id: str | None = None, short: bool = False, raw: bool = False
    ) -> Any:
        """The status block (`raw=True`), else printed as MDF's status message."""
        sid = source_id or self.source_id
        if not sid:
            raise ValueError("No source_id given and no dataset submitted yet.")
        block = self.client.status(sid)
        if raw:
            return {"success": True, "status": block}
        if short:
            print(f"{sid}: {'active' if block.get('active') else block.get('state')}")
        else:
            print(block.get("status_message", ""))
        return None

    def check_all_submissions(
        self, verbose: bool = False, active_only: bool = False, include_tests: bool = True,
        filters: list[Any] | None = None, raw: bool = True,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Every submission of the caller, optionally only active / non-test ones."""
        del verbose, raw
        found = self.client.submissions(filters)
        return [
            s
            for s in found
            if (s.get("active") or not active_only) and (include_tests or not s.get("test"))
        ]

    def get_curation_task(self, source_id: str) -> dict[str, Any]:
        """One curation task."""
        return self.client.curation_task(source_id)

    def get_available_curation_tasks(self) -> list[dict[str, Any]]:
        """The curation queue."""
        return self.client.curation_tasks()

    def accept_curation_submission(self, source_id: str, reason: str = "") -> dict[str, Any]:
        """Accept: the pipeline continues to publish and index."""
        return self.client.curate(source_id, "accept", reason or "accepted")

    def reject_curation_submission(self, source_id: str, reason: str = "") -> dict[str, Any]:
        """Reject with a reason; the submitter is told why."""
        return self.client.curate(source_id, "reject", reason or "rejected")
