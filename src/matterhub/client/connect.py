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

from matterhub.client.connect_api import ConnectMethods
from matterhub.client.errors import APIError
from matterhub.client.uploads import split_sources

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


_OPTIONAL_BLOCKS = (
    "mdf", "mrr", "custom", "custom_desc", "projects", "index", "services", "tags", "links",
    "dataset_acl", "data_destinations", "external_uri", "extraction_config",
)  # fmt: skip
# What a metadata-only update leaves out (as MDFConnectClient strips them).
_NOT_METADATA = (
    "data_sources", "test", "update", "data_destinations", "index", "extraction_config",
    "services", "curation", "no_extract", "update_metadata_only",
)  # fmt: skip


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
        self.links: list[Any] = []
        self.custom_desc: dict[str, str] = {}
        self.data_destinations: list[str] = []
        self.external_uri: str | None = None
        self.mrr: dict[str, Any] = {}
        self.extraction_config: dict[str, Any] = {}
        self.update_metadata_only = False

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
        na_values: Any = None, *, units: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """Field mapping for json/csv/yaml/xml/excel/filename data; `units` = `{field: unit}`
        records each mapped value's unit beside it (`<field>_units`)."""
        json.dumps(mapping, allow_nan=False)  # as MDF: a mapping must be plain JSON
        entry: dict[str, Any] = {"mapping": mapping}
        if delimiter is not None:
            entry["delimiter"] = delimiter
        if na_values is not None:
            entry["na_values"] = na_values if isinstance(na_values, list) else [na_values]
        if units:
            entry["units"] = dict(units)
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

    def add_links(self, links: Any) -> None:
        """Links of the dataset (`{type, doi, url, description, bibtex}` each); cumulative."""
        self.links.extend(links if isinstance(links, list) else [links])

    def clear_links(self) -> None:
        """Remove the links added so far."""
        self.links = []

    def set_custom_descriptions(self, custom_descriptions: dict[str, str]) -> str | None:
        """Descriptions of `custom` fields (records carry them as `<field>_desc`).

        Returns an error string, as MDFConnectClient, when they are not plain JSON.
        """
        try:
            json.dumps(custom_descriptions, allow_nan=False)
        except (TypeError, ValueError) as exc:
            return f"Error: Your custom descriptions are invalid: {exc!r}"
        self.custom_desc.update({str(k): str(v) for k, v in custom_descriptions.items()})
        return None

    def set_update_metadata_only(self, metadata_only: bool) -> None:
        """`submit_dataset` then sends only the metadata, to /connect/update/<source_id>:
        the data stays, the dataset gets a new minor version."""
        self.update_metadata_only = bool(metadata_only)

    def add_data_destination(self, data_destination: Any) -> None:
        """Recorded and sent for compatibility; MatterHub does not use it (MDF's Globus
        endpoints): the hub stores the files itself and serves them over HTTPS."""
        more = data_destination if isinstance(data_destination, list) else [data_destination]
        self.data_destinations.extend(str(d) for d in more)

    def clear_data_destinations(self) -> None:
        """Remove the data destinations added so far."""
        self.data_destinations = []

    def set_external_uri(self, uri: str | None) -> None:
        """A landing page outside MatterHub that also hosts the dataset."""
        self.external_uri = uri or None

    def clear_external_uri(self) -> None:
        """Remove the external URI."""
        self.external_uri = None

    def create_mrr_block(self, mrr_data: dict[str, Any]) -> None:
        """The Materials Resource Registry block (MRR schema metadata)."""
        self.mrr = dict(mrr_data)

    def set_extraction_config(self, config: dict[str, Any]) -> str | None:
        """Extraction settings (`extractors`, `previews`, … — see docs/extractors.md).

        Returns an error string, as MDFConnectClient, when the config is not plain JSON.
        """
        try:
            json.dumps(config, allow_nan=False)
        except (TypeError, ValueError) as exc:
            return f"Error: Your extraction config is invalid: {exc!r}"
        self.extraction_config = dict(config)
        return None

    def get_submission(self) -> dict[str, Any]:
        """The submission document as it will be sent."""
        sub: dict[str, Any] = {
            "dc": self.dc,
            "data_sources": self.data_sources,
            "test": self.test,
            "update": False,
        }
        for key in _OPTIONAL_BLOCKS:
            value = getattr(self, key)
            if value:
                sub[key] = value
        if self.curation:
            sub["curation"] = True
        if self.no_extract:
            sub["no_extract"] = True
        if self.update_metadata_only:
            sub["update_metadata_only"] = True
        return copy.deepcopy(sub)

    def reset_submission(self) -> None:
        """Clear everything but the test flag."""
        self.dc, self.mdf, self.custom, self.projects = {}, {}, {}, {}
        self.index, self.services = {}, {}
        self.data_sources, self.tags, self.dataset_acl = [], [], []
        self.curation = False
        self.no_extract = False
        self.links, self.custom_desc, self.data_destinations = [], {}, []
        self.external_uri, self.mrr, self.extraction_config = None, {}, {}
        self.update_metadata_only = False

    # -- calls -----------------------------------------------------------------------------
    def submit_dataset(
        self,
        update: bool = False,
        submission: dict[str, Any] | None = None,
        reset: bool = False,
        *,
        upload_local: bool = True,
    ) -> dict[str, Any]:
        """Submit; returns `{source_id, success, error, status_code}` as MDFConnectClient.

        Data sources that are paths on this machine are streamed to the hub with the
        submission (`/connect/submit/files`) unless `upload_local=False` (then they name paths
        on the hub's machine, under its allowed roots). With `set_update_metadata_only(True)`
        only the metadata goes, to `/connect/update/<source_id>`.
        """
        if not submission:
            if not update and self.source_id and not self.update_metadata_only:
                return self._failed("You have already submitted this dataset. Set update=True")
            submission = self.get_submission()
            submission["update"] = update
        if submission.get("update_metadata_only"):
            return self._metadata_only(submission, reset)
        incomplete = not submission.get("dc") or not submission.get("data_sources")
        if incomplete:
            return self._failed("You must populate the dc and data blocks before submission.")
        try:
            json.dumps(submission, allow_nan=False)
        except ValueError as exc:
            return self._failed(f"The submission JSON is invalid: {exc!r}")
        local, remote = split_sources(submission["data_sources"]) if upload_local else ([], [])
        try:
            if local:
                answer = self.client.submit_with_files(
                    {**submission, "data_sources": remote}, local
                )
            else:
                answer = self.client.submit(submission)
        except APIError as exc:
            return self._failed(exc.detail, exc.status)
        except (OSError, ValueError) as exc:
            return self._failed(f"cannot upload the local data: {exc}")
        self.source_id = answer.get("source_id")
        if reset:
            self.reset_submission()
        return {"source_id": self.source_id, "success": True, "error": None, "status_code": 202}

    def _metadata_only(self, submission: dict[str, Any], reset: bool) -> dict[str, Any]:
        """`update_metadata_only`: the latest version of this dataset gets the new metadata."""
        source_id = self.source_id
        name = (submission.get("mdf") or {}).get("source_name")
        if name:
            prefix = "_test_" if submission.get("test") and not name.startswith("_test_") else ""
            try:
                source_id = self.client.latest_source_id(prefix + name)
            except APIError as exc:
                return self._failed(exc.detail, exc.status)
        if not source_id:
            return self._failed(
                "A metadata-only update needs the dataset: submit it first or set_source_name()."
            )
        answer = self.submit_dataset_metadata_update(source_id, submission, reset=reset)
        if answer["success"]:
            self.source_id = answer["source_id"]
        return {**self._failed(answer["error"], answer["status_code"]), **answer}

    def submit_dataset_metadata_update(
        self, source_id: str, metadata_update: dict[str, Any] | None = None, reset: bool = False
    ) -> dict[str, Any]:
        """New metadata for a published dataset (same data): `{success, error, status_code,
        source_id}`, the new minor version's source_id."""
        body = copy.deepcopy(metadata_update) if metadata_update else self.get_submission()
        for key in _NOT_METADATA:
            body.pop(key, None)
        mdf = body.get("mdf")
        name = source_id.rsplit("_v", 1)[0]
        if isinstance(mdf, dict) and mdf.get("source_name") in (name, name.removeprefix("_test_")):
            body["mdf"] = {k: v for k, v in mdf.items() if k != "source_name"}  # unchanged
        try:
            json.dumps(body, allow_nan=False)
        except ValueError as exc:
            failed = f"The metadata update JSON is invalid: {exc!r}"
            return {"success": False, "error": failed, "status_code": None, "source_id": None}
        try:
            answer = self.client.update_metadata(source_id, body)
        except APIError as exc:
            return {
                "success": False,
                "error": f"Error {exc.status} submitting dataset: {exc.detail}",
                "status_code": exc.status,
                "source_id": None,
            }
        if reset:
            self.reset_submission()
        new_id = answer.get("source_id")
        return {"success": True, "error": None, "status_code": 202, "source_id": new_id}

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
