"""Client methods over /api/servables, named as DLHub's `DLHubClient` where it has the call."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from matterhub.client.base import HTTPCore
from matterhub.client.describe.base import ServableDescription
from matterhub.core.servables import parse_servable_ref

__all__ = ["ServableMethods"]


def _items(params: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            out += [(key, v) for v in value]
        elif isinstance(value, bool):
            out.append((key, "true" if value else "false"))
        else:
            out.append((key, value))
    return out


class ServableMethods(HTTPCore):
    """Publish, find and describe servables."""

    def publish_servable(
        self, description: ServableDescription, *, wait: bool = False, timeout: float = 1800.0
    ) -> dict[str, Any]:
        """Upload a described servable; returns its build (`id`, `status`, `step`, `log`).

        A description with a source (`set_source`, `describe_*(source=…)`) sends no files: the
        hub fetches them and records the commit and checksums; publishing the same document
        from the same commit again returns the first build. With `wait=True`, polls until the
        build has finished and returns the final build.
        """
        description.validate()
        build: dict[str, Any]
        if description.source is not None:
            build = self._json("POST", "/api/servables", json=description.publish_body())
        else:
            files = {"bundle": ("bundle.zip", description.bundle(), "application/zip")}
            build = self._json("POST", "/api/servables", files=files)
        if wait:
            build = self.wait_for_build(build["servable"], build["id"], timeout=timeout)
        return build

    def publish_bundle(self, document: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        """Upload a document and files as they are (`{bundle path: bytes}`)."""
        import json

        parts: list[tuple[str, Any]] = [("document", (None, json.dumps(document)))]
        parts += [("files", (path, data)) for path, data in sorted(files.items())]
        result: dict[str, Any] = self._json("POST", "/api/servables", files=parts)
        return result

    def publish_source(
        self,
        source: str | dict[str, Any],
        document: dict[str, Any] | None = None,
        *,
        wait: bool = False,
        timeout: float = 1800.0,
    ) -> dict[str, Any]:
        """Publish a servable whose files (and, without `document`, whose root `dlhub.json`)
        the hub fetches from `source` (a URL, git URLs optionally `…@<ref>`, or
        `{"url", "ref", "paths"}`); returns its build."""
        body: dict[str, Any] = {"source": source}
        if document is not None:
            body["document"] = document
        build: dict[str, Any] = self._json("POST", "/api/servables", json=body)
        if wait:
            build = self.wait_for_build(build["servable"], build["id"], timeout=timeout)
        return build

    def get_build(self, name: str, build_id: str) -> dict[str, Any]:
        """One build of `owner/name`: status, step, log and artefacts."""
        owner, servable = parse_servable_ref(name)
        result: dict[str, Any] = self._json(
            "GET", f"/api/servables/{owner}/{servable}/builds/{build_id}"
        )
        return result

    def get_builds(self, name: str) -> list[dict[str, Any]]:
        """Every build of `owner/name`, newest first."""
        owner, servable = parse_servable_ref(name)
        result: list[dict[str, Any]] = self._json(
            "GET", f"/api/servables/{owner}/{servable}/builds"
        )
        return result

    def wait_for_build(
        self, name: str, build_id: str, *, timeout: float = 1800.0, poll: float = 0.5
    ) -> dict[str, Any]:
        """Poll a build until it succeeded or failed."""
        deadline = time.monotonic() + timeout
        while True:
            build = self.get_build(name, build_id)
            if build["status"] in ("succeeded", "failed"):
                return build
            if time.monotonic() > deadline:
                raise TimeoutError(f"build {build_id} of {name} still {build['status']}")
            time.sleep(poll)

    def describe_servable(self, name: str, version: str | None = None) -> dict[str, Any]:
        """`owner/name` → its document, rights, versions and usage (raises on a malformed name)."""
        owner, servable = parse_servable_ref(name)
        params = {"version": version} if version else None
        result: dict[str, Any] = self._json(
            "GET", f"/api/servables/{owner}/{servable}", params=params
        )
        return result

    def servable_versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of `owner/name`, newest first."""
        owner, servable = parse_servable_ref(name)
        result: list[dict[str, Any]] = self._json(
            "GET", f"/api/servables/{owner}/{servable}/versions"
        )
        return result

    def search(
        self,
        query: str | None = None,
        *,
        advanced: bool = True,
        limit: int = 10,
        offset: int = 0,
        only_latest: bool = True,
        **filters: Any,
    ) -> list[dict[str, Any]]:
        """Servable documents matching a query string and/or filters (name, owner, author,
        domain, doi, input_type, output_type, version); only latest versions unless told."""
        params = {
            "q": query,
            "advanced": advanced,
            "limit": limit,
            "offset": offset,
            "only_latest": only_latest,
            **filters,
        }
        result = self._json("GET", "/api/servables", params=_items(params))
        documents: list[dict[str, Any]] = result["servables"]
        return documents

    def get_servables(
        self, only_latest_version: bool = True, *, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Every servable document the caller can see."""
        return self.search(None, only_latest=only_latest_version, limit=limit)

    def list_servables(self) -> list[str]:
        """`owner/name` of every servable the caller can see (DLHub's `list_servables`)."""
        return sorted({d["dlhub"]["shorthand_name"] for d in self.get_servables()})

    def search_by_servable(
        self,
        servable_name: str | None = None,
        owner: str | None = None,
        version: str | None = None,
        *,
        only_latest: bool = True,
        limit: int = 10,
    ) -> list[dict[str, Any]]:
        """Servables by name, owner and/or version (DLHub's `search_by_servable`)."""
        if not any((servable_name, owner, version)):
            raise ValueError("give servable_name, owner or version")
        return self.search(
            None,
            name=servable_name,
            owner=owner,
            version=version,
            only_latest=only_latest,
            limit=limit,
        )

    def search_by_authors(
        self,
        authors: str | Sequence[str],
        match_all: bool = True,
        *,
        only_latest: bool = True,
        limit: int = 10,
    ) -> list[dict[str, Any]]:
        """Servables by author names in any form — `"Lovelace"`, `"Ada Lovelace"`,
        `"Lovelace, Ada"` (DLHub's `search_by_authors`)."""
        names = [authors] if isinstance(authors, str) else list(authors)
        return self.search(
            None, author=names, match_all_authors=match_all, only_latest=only_latest, limit=limit
        )

    def search_by_related_doi(
        self, doi: str, *, only_latest: bool = True, limit: int = 10
    ) -> list[dict[str, Any]]:
        """Servables related to a DOI (a paper or a training dataset)."""
        return self.search(None, doi=doi, only_latest=only_latest, limit=limit)

    def search_by_identifier(self, identifier: str) -> list[dict[str, Any]]:
        """The servable version whose own identifier (DOI or local PID) is `identifier`."""
        return self.search(None, identifier=identifier, only_latest=False, limit=10)

    def servable_identifier(self, name: str, version: str | None = None) -> str | None:
        """The identifier (DOI or hub PID) of the live version, or of `version`; None until
        the hub has registered one (it mints it when the version goes live)."""
        document = self.describe_servable(name, version)["document"]
        identifier = document.get("dlhub", {}).get("identifier")
        return str(identifier) if identifier else None

    def cite_servable(
        self, name: str, *, format: str = "bibtex", version: str | None = None
    ) -> str:
        """The citation of `owner/name` (its live version, or `version`) in `format`:
        bibtex, ris, datacite-json, datacite-xml or schema.org."""
        owner, servable = parse_servable_ref(name)
        path = f"/api/servables/{owner}/{servable}"
        path += f"/versions/{version}/cite" if version else "/cite"
        return self._request("GET", path, params={"format": format}).text

    def search_by_input_type(self, input_type: str, *, limit: int = 10) -> list[dict[str, Any]]:
        """Servables whose input contains a type (`ndarray`, `structure`, …)."""
        return self.search(None, input_type=input_type, limit=limit)
