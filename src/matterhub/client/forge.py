"""`matterhub.Forge`: MDF Forge's names and behaviour over a MatterHub `Client`.

Moving a notebook over is one import: `from matterhub import Forge`. Query strings are
byte-identical to mdf_toolbox's; searches go to the hub's Globus Search API; downloads are HTTPS
and work anonymously for public data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from matterhub.client.client import Client
from matterhub.client.config import client_from_config
from matterhub.client.execute import SearchMethods
from matterhub.client.query import QueryBuilder

__all__ = ["HTTP_NUM_LIMIT", "SEARCH_INDEX_UUIDS", "Forge"]

# Forge's cap on records per http_download / http_stream call.
HTTP_NUM_LIMIT = 50
# mdf_toolbox's index names → UUIDs; the hub answers to both.
SEARCH_INDEX_UUIDS = {
    "mdf": "1a57bbe5-5272-477f-9d31-343b8258b7a5",
    "mdf-test": "5acded0c-a534-45af-84be-dcf042e36412",
    "mdf-dev": "aeccc263-f083-45f5-ab1d-08ee702b3384",
    "dlhub": "847c9105-18a0-4ffb-8a71-03dd76dfcc9d",
    "dlhub-test": "5c89e0a9-00e5-4171-b415-814fe4d0b8af",
}
_VERSION_SUFFIX = re.compile(r"_v[0-9]+\.[0-9]+$")
_RECORD_SUFFIXES = (re.compile(r"_v[0-9]+-[0-9]+$"), re.compile(r"_v[0-9]+$"))


def _listify(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


class Forge(SearchMethods, QueryBuilder):
    """MDF Forge on MatterHub: build a query with `match_*`, then `search`, `aggregate`, … .

    `Forge(index="mdf")` uses the hub and token saved by `matterhub login` (or
    `$MATTERHUB_URL` / `$MATTERHUB_TOKEN`); pass `client=Client(...)` or `base_url=` to choose.
    `anonymous=True` sends no token: public data only, downloads included.
    """

    def __init__(
        self,
        index: str = "mdf",
        local_ep: str | None = None,
        anonymous: bool = False,
        clear_old_tokens: bool = False,
        *,
        client: Client | None = None,
        base_url: str | None = None,
        token: str | None = None,
        profile: str | None = None,
        **client_kwargs: Any,
    ) -> None:
        super().__init__()
        del clear_old_tokens  # Globus-only: MatterHub tokens are managed by `matterhub login`.
        self.local_ep = local_ep
        self.scroll_field = "mdf.scroll_id"
        if client is None:
            if base_url is not None:
                client = Client(base_url, None if anonymous else token, **client_kwargs)
            else:
                client = client_from_config(profile, anonymous=anonymous, **client_kwargs)
        elif anonymous and client.token:
            client = client.with_token(None)
        self.client = client
        self.index = index
        self.index_uuid = SEARCH_INDEX_UUIDS.get(index.strip().lower(), index)

    def __repr__(self) -> str:
        return f"Forge(index={self.index!r}, client={self.client!r})"

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    # -- field helpers ---------------------------------------------------------------------
    def match_source_names(self, source_names: Any) -> Forge:
        """Datasets by `mdf.source_name` (a source_id's `_vX.Y` is dropped), ORed in one group."""
        if not source_names:
            return self
        names = [_VERSION_SUFFIX.sub("", name) for name in _listify(source_names)]
        self._group("mdf.source_name", names)
        return self

    def match_records(self, source_name: str, scroll_ids: Any) -> Forge:
        """Records of one dataset by `mdf.scroll_id`."""
        if not source_name or not scroll_ids:
            return self
        ids = [scroll_ids] if isinstance(scroll_ids, int) else list(scroll_ids)
        match = _VERSION_SUFFIX.search(source_name)
        for pattern in _RECORD_SUFFIXES:
            match = match or pattern.search(source_name)
        if match:
            source_name = source_name[: match.start()]
        self.match_field("mdf.source_name", source_name, required=True, new_group=True)
        self._group("mdf.scroll_id", ids)
        return self

    def match_elements(self, elements: Any, match_all: bool = True) -> Forge:
        """`material.elements`, ANDed (or ORed with `match_all=False`)."""
        if not elements:
            return self
        self._group("material.elements", _listify(elements), match_all=match_all)
        return self

    def match_titles(self, titles: Any) -> Forge:
        """`dc.titles.title`, ORed."""
        if not titles:
            return self
        self._group("dc.titles.title", titles if isinstance(titles, list) else [titles])
        return self

    def match_years(
        self,
        years: Any = None,
        start: Any = None,
        stop: Any = None,
        inclusive: bool = True,
    ) -> Forge:
        """`dc.publicationYear`: given years (ORed), or a range from `start` to `stop`."""
        if years is None and start is None and stop is None:
            return self
        if years is not None and years != []:
            values = years if isinstance(years, list) else [years]
            as_ints = []
            for year in values:
                try:
                    as_ints.append(int(year))
                except ValueError:
                    raise AttributeError(f"Invalid year: '{year}'") from None
            if as_ints:
                self._group("dc.publicationYear", as_ints)
            return self
        bounds: list[int | None] = []
        for label, bound in (("start", start), ("stop", stop)):
            try:
                bounds.append(None if bound is None else int(bound))
            except ValueError:
                raise AttributeError(f"Invalid {label} year: '{bound}'") from None
        self.match_range(
            "dc.publicationYear", bounds[0], bounds[1], inclusive=inclusive, new_group=True
        )
        return self

    def match_resource_types(self, types: Any) -> Forge:
        """`mdf.resource_type` (`dataset` or `record`), ORed."""
        if not types:
            return self
        self._group("mdf.resource_type", _listify(types))
        return self

    def match_organizations(self, organizations: Any, match_all: bool = True) -> Forge:
        """`mdf.organizations`, ANDed (or ORed)."""
        if not organizations:
            return self
        self._group("mdf.organizations", _listify(organizations), match_all=match_all)
        return self

    def match_dois(self, dois: Any) -> Forge:
        """`dc.identifier.identifier` (DOIs are quoted automatically), ORed."""
        if not dois:
            return self
        self._group("dc.identifier.identifier", _listify(dois))
        return self

    # -- premade searches ------------------------------------------------------------------
    def search_by_elements(
        self,
        elements: Any,
        source_names: Any = (),
        index: str | None = None,
        limit: int | None = None,
        match_all: bool = True,
        info: bool = False,
    ) -> Any:
        """`match_elements(elements).match_source_names(source_names).search()`."""
        del index
        self.match_elements(elements, match_all=match_all).match_source_names(list(source_names))
        return self.search(limit=limit, info=info)

    def search_by_titles(
        self, titles: Any, index: str | None = None, limit: int | None = None, info: bool = False
    ) -> Any:
        """`match_titles(titles).search()`."""
        del index
        return self.match_titles(titles).search(limit=limit, info=info)

    def search_by_dois(
        self, dois: Any, index: str | None = None, limit: int | None = None, info: bool = False
    ) -> Any:
        """`match_dois(dois).search()`."""
        del index
        return self.match_dois(dois).search(limit=limit, info=info)

    def aggregate_sources(self, source_names: Any, index: str | None = None) -> list[Any]:
        """Every record of these datasets (no 10,000 cap)."""
        del index
        result: list[Any] = self.match_source_names(source_names).aggregate()
        return result

    # -- datasets --------------------------------------------------------------------------
    def fetch_datasets_from_results(
        self, entries: Any = None, query: str | None = None, reset_query: bool = True
    ) -> list[dict[str, Any]]:
        """The dataset entries of the given records (or of the current query's results)."""
        if entries is None:
            entries = self.search(q=query, reset_query=(query is None or reset_query))
        if isinstance(entries, dict):
            entries = [entries]
        elif isinstance(entries, tuple):
            entries = entries[0]
        if len(entries) == 0:
            raise ValueError("No entries provided or found")
        names = {e["mdf"]["source_name"] for e in entries if e.get("mdf", {}).get("source_name")}
        if not names:
            return []
        self.match_source_names(sorted(names)).match_resource_types("dataset")
        found: list[dict[str, Any]] = self.search()
        return found

    def get_dataset_version(self, source_name: str) -> Any:
        """`mdf.version` of the dataset entry; `ValueError` unless exactly one matches."""
        hits = self.search(
            f"mdf.source_name:{source_name} AND mdf.resource_type:dataset", advanced=True, limit=2
        )
        if len(hits) == 0:
            raise ValueError("No such dataset found: " + source_name)
        if len(hits) > 1:
            raise ValueError(
                f"Unexpectedly matched multiple datasets with source_name '{source_name}'."
            )
        return hits[0]["mdf"].get("version")

    def dataset_export(self, source_id: str, format: str = "ro-crate") -> dict[str, Any]:
        """A published version's `ro-crate`, `croissant` or `schema.org` JSON-LD."""
        return self.client.dataset_export(source_id, format)

    # -- files -----------------------------------------------------------------------------
    def _records_for_http(self, results: Any) -> list[dict[str, Any]] | str:
        if isinstance(results, dict):
            results = [results]
        elif isinstance(results, tuple):
            results = results[0]
        if len(results) > HTTP_NUM_LIMIT:
            return (
                "Too many results supplied. Use download() for fetching more than "
                f"{HTTP_NUM_LIMIT} entries."
            )
        return list(results)

    def http_download(
        self, results: Any, dest: str | Path = ".", preserve_dir: bool = False, verbose: bool = True
    ) -> dict[str, Any]:
        """Forge's HTTPS download of records' files (≤ 50 records; works anonymously).

        Returns `{"success": bool, "message": str}`; dataset entries are skipped. Same-named
        files become `name(1).ext` unless `preserve_dir`. Checksums are verified.
        """
        from matterhub.client.downloads import forge_http_download

        records = self._records_for_http(results)
        if isinstance(records, str):
            return {"success": False, "message": records}
        return forge_http_download(
            self.client, records, Path(dest), preserve_dir=preserve_dir, verbose=verbose
        )

    def http_stream(self, results: Any, verbose: bool = True) -> Iterator[Any]:
        """Yield the text of each file of the records (`None` for a file that fails)."""
        records = self._records_for_http(results)
        if isinstance(records, str):
            yield {"success": False, "message": records}
            return
        from matterhub.client.downloads import stream_texts

        yield from stream_texts(self.client, records, verbose=verbose)

    def globus_download(
        self,
        results: Any,
        dest: str | Path = ".",
        dest_ep: str | None = None,
        preserve_dir: bool = False,
        download_datasets: bool = False,
        verbose: bool = True,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Globus Transfer is not used by MatterHub: `{"success": False, "message": …}`.

        The message points at `download()` (HTTPS, parallel, resumable, checksum-verified).
        """
        del results, dest, dest_ep, preserve_dir, download_datasets, kwargs
        from matterhub.client.forge_info import GLOBUS_DOWNLOAD_MESSAGE

        if verbose:
            print(GLOBUS_DOWNLOAD_MESSAGE)
        return {"success": False, "message": GLOBUS_DOWNLOAD_MESSAGE}

    def download(self, results_or_source_id: Any, dest: str | Path = ".", **kwargs: Any) -> Any:
        """Parallel, resumable, checksum-verified download; see `matterhub.client.downloads`."""
        from matterhub.client.downloads import download

        return download(self.client, results_or_source_id, Path(dest), **kwargs)

    # -- describing ------------------------------------------------------------------------
    def describe_field(
        self, resource_type: str, field: str | None = None, raw: bool = False
    ) -> dict[str, Any] | None:
        """The schema of a `dataset` or `record` field (all fields when `field` is None).

        Prints it, or with `raw=True` returns Forge's `{success, error, schema, status_code}`
        plus `field_types`: the types this index holds under the field.
        """
        from matterhub.client.forge_info import describe_field, schema_lines

        answer = describe_field(self.client, self.index, resource_type, field)
        if raw:
            return answer
        if answer["error"]:
            print(answer["error"])
            return None
        for line in schema_lines(answer["schema"]):
            print(line)
        if answer["field_types"]:
            print("Indexed as:")
            for path, kind in answer["field_types"].items():
                print(f"  {path}: {kind}")
        return None

    def describe_organization(
        self, organization: str, summary: bool = False, raw: bool = False
    ) -> dict[str, Any] | None:
        """An organisation as the index knows it: its datasets and record count.

        `"list"` names every organisation, `"all"` describes each. Prints, or with `raw=True`
        returns Forge's `{success, error, organization, status_code}`. `summary` leaves out
        the list of datasets.
        """
        from matterhub.client.forge_info import describe_organization

        answer = describe_organization(self.client, self.index, organization)
        if raw:
            return answer
        if answer["error"]:
            print(answer["error"])
            return None
        found = answer["organization"]
        for org in found if isinstance(found, list) else [found]:
            if not isinstance(org, dict):
                print(org)
                continue
            print(f"\n {org['canonical_name']}")
            print(f"- datasets: {org['dataset_count']}")
            print(f"- records: {org['record_count']}")
            if not summary and org["source_names"]:
                print("- source_names: " + ", ".join(org["source_names"]))
        return None

    # -- data frames -----------------------------------------------------------------------
    @staticmethod
    def to_dataframe(results: Any) -> Any:
        """Records as a pandas DataFrame, nested fields flattened to dotted columns."""
        from matterhub.client.frames import to_dataframe

        return to_dataframe(results)

    def load_dataset(self, source_id: str, **kwargs: Any) -> Any:
        """Records and chosen keys of a dataset as a DataFrame (see `frames.load_dataset`)."""
        from matterhub.client.frames import load_dataset

        return load_dataset(self.client, source_id, index=self.index, **kwargs)
