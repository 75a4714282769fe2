"""DataCite DOIs over DataCite's REST API (JSON:API): reserve a draft, publish, hide."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from matterhub.core.errors import InvalidInput, PIDError
from matterhub.publish.pid import PIDProvider

__all__ = ["PRODUCTION_URL", "TEST_URL", "DataCitePIDProvider"]

log = logging.getLogger(__name__)

PRODUCTION_URL = "https://api.datacite.org"
TEST_URL = "https://api.test.datacite.org"
_JSON_API = "application/vnd.api+json"


class DataCitePIDProvider(PIDProvider):
    """Mints DOIs under one prefix; in test mode against DataCite's test service."""

    name = "datacite"
    is_doi = True

    def __init__(
        self,
        *,
        url: str,
        user: str,
        password: str,
        prefix: str,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not (user and password and prefix):
            raise InvalidInput(
                "the DataCite provider needs datacite_user, datacite_password and datacite_prefix",
                field="datacite_user",
            )
        self.url = url.rstrip("/")
        self.prefix = prefix
        self._client = httpx.Client(
            base_url=self.url,
            auth=(user, password),
            timeout=timeout,
            transport=transport,
            trust_env=transport is None,  # a guarded transport connects where it checked
            headers={"Content-Type": _JSON_API, "Accept": _JSON_API},
        )

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> DataCitePIDProvider:
        """Uses `datacite_url` (default: the test or production API by `datacite_test_mode`),
        `datacite_user`, `datacite_password` and `datacite_prefix`."""
        test = bool(options.get("datacite_test_mode", True))
        url = str(options.get("datacite_url") or (TEST_URL if test else PRODUCTION_URL))
        return cls(
            url=url,
            user=str(options.get("datacite_user") or ""),
            password=str(options.get("datacite_password") or ""),
            prefix=str(options.get("datacite_prefix") or ""),
            transport=options.get("transport"),
        )

    def _send(self, method: str, path: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
        body = {"data": {"type": "dois", "attributes": dict(attributes)}}
        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise PIDError(f"DataCite at {self.url} cannot be reached: {exc}") from exc
        if response.status_code >= 400:
            raise PIDError(
                f"DataCite refused {method} {path}: {response.status_code} {response.text[:500]}"
            )
        result: dict[str, Any] = response.json()
        return result

    def reserve(self, source_id: str, metadata: Mapping[str, Any]) -> str:
        """POST /dois with our prefix and no event: DataCite creates a draft DOI."""
        attributes = {k: v for k, v in metadata.items() if k != "doi"}
        result = self._send("POST", "/dois", {**attributes, "prefix": self.prefix})
        doi = result.get("data", {}).get("id") or result.get("data", {}).get("attributes", {}).get(
            "doi"
        )
        if not doi:
            raise PIDError("DataCite answered without a DOI")
        log.info("reserved DOI %s for %s", doi, source_id)
        return str(doi).lower()

    def register(self, pid: str, metadata: Mapping[str, Any]) -> None:
        """PUT /dois/<doi> with the metadata and `event: publish` (draft → findable)."""
        self._send("PUT", f"/dois/{pid}", {**metadata, "doi": pid, "event": "publish"})

    def hide(self, pid: str) -> None:
        """PUT /dois/<doi> with `event: hide` (findable → registered)."""
        self._send("PUT", f"/dois/{pid}", {"event": "hide"})

    def resolver_url(self, pid: str, base_url: str) -> str:
        """`https://doi.org/<doi>`."""
        return f"https://doi.org/{pid}"
