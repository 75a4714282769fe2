"""Harvested OAI-PMH records → external dataset entries of the search index (metadata only).

An external entry looks like one of this hub's dataset entries (`mdf.resource_type: "dataset"`,
`dc` in DataCite's shape), so one search spans both; `external` says where it lives and links
to it (`external.url`: the DOI resolver or the landing page). No file is fetched.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from matterhub.core.identity import PUBLIC
from matterhub.interop.harvest.client import OAI

__all__ = ["Harvested", "parse_record", "subject_of"]

_DATACITE = "{http://datacite.org/schema/kernel-4}"
_OAI_DC = "{http://www.openarchives.org/OAI/2.0/oai_dc/}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_YEAR = re.compile(r"\b(\d{4})\b")
_DOI_URL = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:|info:doi/)(10\..+)$", re.I)
_SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*_v\d+\.\d+$")
_MAX_IDENTIFIER = 300
_MAX_TEXT = 4_000  # one harvested value, in characters (the index takes 32 KB a value)
_MAX_VALUES = 100  # values of one repeated field


@dataclass(frozen=True, slots=True)
class Harvested:
    """One record of a list: its identifier, and the entry to index (None: deleted)."""

    identifier: str
    datestamp: str
    entry: dict[str, Any] | None


def subject_of(repository: str, identifier: str) -> str:
    """The search subject of an external record."""
    return f"external:{repository}:{identifier}"


def _text(element: ET.Element | None) -> str:
    return (element.text or "").strip()[:_MAX_TEXT] if element is not None else ""


def _texts(parent: ET.Element, path: str) -> Iterator[str]:
    count = 0
    for element in parent.iterfind(path):
        if value := _text(element):
            yield value
            count += 1
            if count >= _MAX_VALUES:
                return


def _year(value: str) -> int | None:
    found = _YEAR.search(value)
    return int(found.group(1)) if found else None


def _from_datacite(resource: ET.Element) -> tuple[dict[str, Any], dict[str, str]]:
    """(`dc`, links) from a DataCite kernel-4 `<resource>`."""
    d = _DATACITE
    dc: dict[str, Any] = {"titles": [{"title": t} for t in _texts(resource, f"{d}titles/{d}title")]}
    creators = []
    for creator in resource.iterfind(f"{d}creators/{d}creator"):
        one: dict[str, Any] = {"creatorName": _text(creator.find(f"{d}creatorName"))}
        for key in ("givenName", "familyName"):
            if value := _text(creator.find(f"{d}{key}")):
                one[key] = value
        affiliations = list(_texts(creator, f"{d}affiliation"))
        if affiliations:
            one["affiliations"] = affiliations
        creators.append(one)
        if len(creators) >= _MAX_VALUES:
            break
    dc["creators"] = creators
    dc["publisher"] = _text(resource.find(f"{d}publisher"))
    if year := _year(_text(resource.find(f"{d}publicationYear"))):
        dc["publicationYear"] = year
    kind = resource.find(f"{d}resourceType")
    general = kind.get("resourceTypeGeneral", "Dataset") if kind is not None else "Dataset"
    dc["resourceType"] = {"resourceTypeGeneral": general, "resourceType": _text(kind) or general}
    if subjects := [{"subject": s} for s in _texts(resource, f"{d}subjects/{d}subject")]:
        dc["subjects"] = subjects
    descriptions = [
        {"description": t, "descriptionType": "Abstract"}
        for t in _texts(resource, f"{d}descriptions/{d}description")
    ]
    if descriptions:
        dc["descriptions"] = descriptions
    if version := _text(resource.find(f"{d}version")):
        dc["version"] = version
    links: dict[str, str] = {}
    identifier = resource.find(f"{d}identifier")
    value = _text(identifier)
    if identifier is not None and value:
        if identifier.get("identifierType", "").upper() == "DOI":
            dc["identifier"] = {"identifier": value, "identifierType": "DOI"}
            links["doi"] = value
            links["url"] = f"https://doi.org/{value}"
        elif value.startswith(("https://", "http://")):
            links["url"] = value
    for alternate in resource.iterfind(f"{d}alternateIdentifiers/{d}alternateIdentifier"):
        if alternate.get("alternateIdentifierType") == "source_id" and _text(alternate):
            links["source_id"] = _text(alternate)
    return dc, links


def _from_dc(record: ET.Element) -> tuple[dict[str, Any], dict[str, str]]:
    """(`dc`, links) from Dublin Core (`oai_dc`)."""
    dc: dict[str, Any] = {
        "titles": [{"title": t} for t in _texts(record, f"{_DC}title")],
        "creators": [{"creatorName": c} for c in _texts(record, f"{_DC}creator")],
        "publisher": next(_texts(record, f"{_DC}publisher"), ""),
        "resourceType": {"resourceTypeGeneral": "Dataset", "resourceType": "Dataset"},
    }
    for date in _texts(record, f"{_DC}date"):
        if year := _year(date):
            dc["publicationYear"] = year
            break
    if subjects := [{"subject": s} for s in _texts(record, f"{_DC}subject")]:
        dc["subjects"] = subjects
    descriptions = [
        {"description": t, "descriptionType": "Abstract"}
        for t in _texts(record, f"{_DC}description")
    ]
    if descriptions:
        dc["descriptions"] = descriptions
    links: dict[str, str] = {}
    for value in _texts(record, f"{_DC}identifier"):
        if doi := _DOI_URL.match(value):
            links.setdefault("doi", doi.group(1))
            dc.setdefault("identifier", {"identifier": doi.group(1), "identifierType": "DOI"})
        elif value.startswith(("https://", "http://")):
            links.setdefault("landing", value)
        elif _SOURCE_ID.match(value):
            links.setdefault("source_id", value)  # a MatterHub version (source_id)
    url = f"https://doi.org/{links['doi']}" if "doi" in links else links.get("landing")
    if url:
        links["url"] = url
    return dc, links


def parse_record(
    record: ET.Element, *, repository: str, endpoint: str, prefix: str, harvested_at: str
) -> Harvested | None:
    """One `<record>` (or a deleted `<header>`) as an external entry; None if unreadable."""
    header = record.find(f"{OAI}header")
    if header is None:
        return None
    identifier = _text(header.find(f"{OAI}identifier"))
    datestamp = _text(header.find(f"{OAI}datestamp"))
    if not identifier or len(identifier) > _MAX_IDENTIFIER:
        return None  # (a search subject holds at most 500 bytes)
    if header.get("status") == "deleted":
        return Harvested(identifier, datestamp, None)
    metadata = record.find(f"{OAI}metadata")
    if metadata is None or len(metadata) == 0:
        return None
    payload = metadata[0]
    if payload.tag == f"{_DATACITE}resource":
        dc, links = _from_datacite(payload)
    elif payload.tag == f"{_OAI_DC}dc":
        dc, links = _from_dc(payload)
    else:
        return None
    if not dc.get("titles"):
        return None
    local = identifier.rsplit(":", 1)[-1] if identifier.startswith("oai:") else identifier
    source_name = f"{repository}:{local}"
    remote_id = links.get("source_id")
    external = {
        "repository": repository,
        "endpoint": endpoint,
        "identifier": identifier,
        "datestamp": datestamp,
        "metadata_prefix": prefix,
        **{k: v for k, v in links.items() if k in ("url", "doi", "landing", "source_id")},
    }
    content = {
        "mdf": {
            "source_name": source_name,
            "source_id": f"{repository}:{remote_id}" if remote_id else f"{source_name}_v1.0",
            "scroll_id": 0,
            "resource_type": "dataset",
            "ingest_date": harvested_at,
            "acl": [PUBLIC],
        },
        "dc": dc,
        "external": external,
    }
    if "url" in links:
        content["data"] = {"link": links["url"]}
    entry = {
        "subject": subject_of(repository, identifier),
        "visible_to": [PUBLIC],
        "content": content,
    }
    return Harvested(identifier, datestamp, entry)
