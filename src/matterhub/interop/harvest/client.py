"""A small OAI-PMH 2.0 client over the outbound guard: bounded responses, protocol errors raised.

XML is read with the standard library's expat parser, which expands no external entities and
(expat ≥ 2.4) limits entity amplification; responses are cut off at `max_bytes` before parsing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from matterhub.core.errors import BackendError
from matterhub.netguard import NetGuard

__all__ = ["OAI", "HarvestFailed", "OAIClient", "ProtocolError", "Response"]

OAI = "{http://www.openarchives.org/OAI/2.0/}"


class HarvestFailed(BackendError):
    """The followed repository could not be read (network, HTTP status, not OAI-PMH)."""

    code = "harvest_failed"


class ProtocolError(HarvestFailed):
    """The repository answered with an OAI-PMH `<error>`."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"the repository answered {error_code}: {message}", field="url")
        self.error_code = error_code


@dataclass(frozen=True, slots=True)
class Response:
    """One parsed OAI-PMH response."""

    root: ET.Element
    response_date: str

    def verb(self, name: str) -> ET.Element:
        """The verb element (`<ListRecords>` …); HarvestFailed when absent."""
        found = self.root.find(f"{OAI}{name}")
        if found is None:
            raise HarvestFailed(f"the response holds no {name} element", field="url")
        return found


class OAIClient:
    """Sends OAI-PMH requests through the guard and parses the answers."""

    def __init__(self, guard: NetGuard, *, timeout: float, max_bytes: int) -> None:
        self._guard = guard
        self._timeout = timeout
        self._max_bytes = max_bytes

    def request(self, url: str, params: Mapping[str, str]) -> Response:
        """GET `url?params`; raises ProtocolError for an `<error>`, HarvestFailed otherwise."""
        body = self._fetch(url, params)
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise HarvestFailed(f"the response is not XML: {exc}", field="url") from None
        if root.tag != f"{OAI}OAI-PMH":
            raise HarvestFailed("the response is not an OAI-PMH document", field="url")
        error = root.find(f"{OAI}error")
        if error is not None:
            raise ProtocolError(error.get("code", "unknown"), (error.text or "").strip()[:300])
        date = (root.findtext(f"{OAI}responseDate") or "").strip()
        return Response(root, date)

    def _fetch(self, url: str, params: Mapping[str, str]) -> bytes:
        try:
            with (
                self._guard.client(timeout=self._timeout) as http,
                http.stream("GET", url, params=dict(params)) as answer,
            ):
                if answer.status_code != 200:
                    raise HarvestFailed(f"{url} answered HTTP {answer.status_code}", field="url")
                declared = answer.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self._max_bytes:
                    raise self._too_large()
                body = bytearray()
                for chunk in answer.iter_bytes():
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise self._too_large()
                return bytes(body)
        except (httpx.HTTPError, OSError) as exc:  # OSError: a host name that does not resolve
            raise HarvestFailed(f"cannot reach {url}: {exc}", field="url") from None

    def _too_large(self) -> HarvestFailed:
        return HarvestFailed(
            f"an OAI-PMH response is larger than {self._max_bytes} bytes "
            "(harvest_max_response_bytes)",
            field="url",
        )
