"""Citations of a dataset or servable version, from its `dc`/`datacite` block (DataCite fields).

Formats: BibTeX, RIS, DataCite JSON (the REST API's `attributes`), DataCite XML (kernel 4) and
schema.org JSON-LD. Pure functions over a `CitedVersion`; no I/O. A dataset is cited as data
(RIS `DATA`, schema.org `Dataset`), a servable as software (RIS `COMP`, `SoftwareSourceCode`).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from matterhub.core.errors import InvalidInput

__all__ = [
    "FORMATS",
    "CitedVersion",
    "bibtex",
    "cite",
    "datacite_attributes",
    "datacite_json",
    "datacite_xml",
    "ris",
    "schema_org",
]

DATACITE_NS = "http://datacite.org/schema/kernel-4"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_SCHEMA_LOCATION = f"{DATACITE_NS} http://schema.datacite.org/meta/kernel-4/metadata.xsd"


@dataclass(frozen=True, slots=True)
class CitedVersion:
    """What a citation needs: the `dc` block, the version and where it lives."""

    dc: Mapping[str, Any]
    source_id: str
    version: str
    url: str
    pid: str | None = None
    pid_is_doi: bool = False
    software: bool = False
    """A servable (cited as software) rather than a dataset."""


def _creators(dc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in dc.get("creators") or [] if isinstance(c, Mapping)]


def _names(dc: Mapping[str, Any]) -> list[str]:
    """Creator names as "Family, Given" (MDF's convention) or as written."""
    out = []
    for c in _creators(dc):
        if c.get("familyName"):
            given = f", {c['givenName']}" if c.get("givenName") else ""
            out.append(f"{c['familyName']}{given}")
        else:
            out.append(str(c.get("creatorName", "")))
    return out


def _title(dc: Mapping[str, Any]) -> str:
    titles = [t for t in dc.get("titles") or [] if isinstance(t, Mapping)]
    return str(titles[0].get("title", "")) if titles else ""


def _description(dc: Mapping[str, Any]) -> str | None:
    for d in dc.get("descriptions") or []:
        if isinstance(d, Mapping) and d.get("description"):
            return str(d["description"])
    return None


def _subjects(dc: Mapping[str, Any]) -> list[str]:
    return [
        str(s["subject"])
        for s in dc.get("subjects") or []
        if isinstance(s, Mapping) and s.get("subject")
    ]


def _resource_type(dc: Mapping[str, Any]) -> tuple[str, str]:
    rt = dc.get("resourceType") or {}
    general = str(rt.get("resourceTypeGeneral") or "Dataset")
    return general, str(rt.get("resourceType") or general)


def _doi(v: CitedVersion) -> str | None:
    return v.pid if v.pid and v.pid_is_doi else None


def _bib_escape(text: str) -> str:
    return re.sub(r"([{}&%$#_])", r"\\\1", text)


def bibtex(v: CitedVersion) -> str:
    """A BibTeX `@misc` entry keyed by the source_id."""
    fields = [
        ("author", " and ".join(_bib_escape(n) for n in _names(v.dc))),
        ("title", "{" + _bib_escape(_title(v.dc)) + "}"),
        ("publisher", _bib_escape(str(v.dc.get("publisher", "")))),
        ("year", str(v.dc.get("publicationYear", ""))),
        ("version", v.version),
    ]
    if doi := _doi(v):
        fields.append(("doi", doi))
    fields.append(("url", v.url))
    key = re.sub(r"[^A-Za-z0-9_:.-]", "_", v.source_id)
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
    return f"@misc{{{key},\n{body}\n}}\n"


def ris(v: CitedVersion) -> str:
    """An RIS record (type DATA, or COMP for software)."""
    lines = [
        f"TY  - {'COMP' if v.software else 'DATA'}",
        *(f"AU  - {n}" for n in _names(v.dc)),
        f"TI  - {_title(v.dc)}",
    ]
    lines += [f"PY  - {v.dc.get('publicationYear', '')}", f"PB  - {v.dc.get('publisher', '')}"]
    lines += [f"ET  - {v.version}", *(f"KW  - {s}" for s in _subjects(v.dc))]
    if desc := _description(v.dc):
        lines.append(f"AB  - {' '.join(desc.split())}")
    if doi := _doi(v):
        lines.append(f"DO  - {doi}")
    lines += [f"UR  - {v.url}", f"ID  - {v.source_id}", "ER  - "]
    return "\r\n".join(lines) + "\r\n"


def _datacite_creator(c: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": str(c.get("creatorName", "")), "nameType": "Personal"}
    if c.get("nameType"):
        out["nameType"] = c["nameType"]
    for key in ("givenName", "familyName"):
        if c.get(key):
            out[key] = c[key]
    affiliations = c.get("affiliations") or c.get("affiliation") or []
    if isinstance(affiliations, str):
        affiliations = [affiliations]
    if affiliations:
        out["affiliation"] = [{"name": str(a)} for a in affiliations]
    return out


def datacite_attributes(v: CitedVersion) -> dict[str, Any]:
    """DataCite REST `attributes` for this version (schema kernel-4), from `dc`."""
    general, specific = _resource_type(v.dc)
    attrs: dict[str, Any] = {
        "creators": [_datacite_creator(c) for c in _creators(v.dc)],
        "titles": [{"title": str(t.get("title"))} for t in v.dc.get("titles") or []],
        "publisher": str(v.dc.get("publisher", "")),
        "publicationYear": int(v.dc.get("publicationYear", 0)),
        "types": {"resourceTypeGeneral": general, "resourceType": specific},
        "url": v.url,
        "version": v.version,
        "schemaVersion": "http://datacite.org/schema/kernel-4",
    }
    if doi := _doi(v):
        attrs["doi"] = doi
    if subjects := _subjects(v.dc):
        attrs["subjects"] = [{"subject": s} for s in subjects]
    descriptions = [
        {
            "description": str(d["description"]),
            "descriptionType": str(d.get("descriptionType") or "Abstract"),
        }
        for d in v.dc.get("descriptions") or []
        if isinstance(d, Mapping) and d.get("description")
    ]
    if descriptions:
        attrs["descriptions"] = descriptions
    rights = [
        {k: str(r[k]) for k in ("rights", "rightsURI") if r.get(k)}
        for r in v.dc.get("rightsList") or []
        if isinstance(r, Mapping) and r.get("rights")
    ]
    if rights:
        attrs["rightsList"] = rights
    related = [
        {k: str(r[k]) for k in ("relatedIdentifier", "relatedIdentifierType", "relationType")}
        for r in v.dc.get("relatedIdentifiers") or []
        if isinstance(r, Mapping)
        and all(r.get(k) for k in ("relatedIdentifier", "relatedIdentifierType", "relationType"))
    ]
    if related:
        attrs["relatedIdentifiers"] = related
    if not _doi(v) and v.pid:
        attrs["identifiers"] = [{"identifier": v.pid, "identifierType": "MatterHub"}]
    return attrs


def datacite_json(v: CitedVersion) -> str:
    """The DataCite JSON (REST `data` resource) of this version."""
    body = {"data": {"type": "dois", "id": _doi(v), "attributes": datacite_attributes(v)}}
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def datacite_xml(v: CitedVersion) -> str:
    """DataCite kernel-4 XML; it validates against DataCite's metadata.xsd."""
    ET.register_namespace("", DATACITE_NS)
    ET.register_namespace("xsi", _XSI)

    def el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        child = ET.SubElement(parent, f"{{{DATACITE_NS}}}{tag}", attrs)
        if text is not None:
            child.text = text
        return child

    attrs = datacite_attributes(v)
    root = ET.Element(f"{{{DATACITE_NS}}}resource", {f"{{{_XSI}}}schemaLocation": _SCHEMA_LOCATION})
    if doi := _doi(v):
        el(root, "identifier", doi, identifierType="DOI")
    else:
        el(root, "identifier", v.url, identifierType="URL")
    creators = el(root, "creators")
    for c in attrs["creators"]:
        creator = el(creators, "creator")
        el(creator, "creatorName", c["name"], nameType=c["nameType"])
        for key in ("givenName", "familyName"):
            if key in c:
                el(creator, key, str(c[key]))
        for a in c.get("affiliation", []):
            el(creator, "affiliation", a["name"])
    titles = el(root, "titles")
    for t in attrs["titles"]:
        el(titles, "title", t["title"])
    el(root, "publisher", attrs["publisher"])
    el(root, "publicationYear", str(attrs["publicationYear"]))
    el(
        root,
        "resourceType",
        attrs["types"]["resourceType"],
        resourceTypeGeneral=attrs["types"]["resourceTypeGeneral"],
    )
    if "subjects" in attrs:
        subjects = el(root, "subjects")
        for s in attrs["subjects"]:
            el(subjects, "subject", s["subject"])
    alternates = el(root, "alternateIdentifiers")
    kind = "servable" if v.software else "source_id"
    el(alternates, "alternateIdentifier", v.source_id, alternateIdentifierType=kind)
    if v.pid and not _doi(v):
        el(alternates, "alternateIdentifier", v.pid, alternateIdentifierType="MatterHub")
    if "relatedIdentifiers" in attrs:
        related = el(root, "relatedIdentifiers")
        for r in attrs["relatedIdentifiers"]:
            el(
                related,
                "relatedIdentifier",
                r["relatedIdentifier"],
                relatedIdentifierType=r["relatedIdentifierType"],
                relationType=r["relationType"],
            )
    el(root, "version", v.version)
    if "rightsList" in attrs:
        rights_list = el(root, "rightsList")
        for r in attrs["rightsList"]:
            extra = {"rightsURI": r["rightsURI"]} if "rightsURI" in r else {}
            el(rights_list, "rights", r["rights"], **extra)
    if "descriptions" in attrs:
        descriptions = el(root, "descriptions")
        for d in attrs["descriptions"]:
            el(descriptions, "description", d["description"], descriptionType=d["descriptionType"])
    text = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n"


def schema_org(v: CitedVersion) -> str:
    """schema.org `Dataset` (or `SoftwareSourceCode`) JSON-LD."""
    doc: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "SoftwareSourceCode" if v.software else "Dataset",
        "@id": f"https://doi.org/{_doi(v)}" if _doi(v) else v.url,
        "name": _title(v.dc),
        "creator": [
            {
                "@type": "Person"
                if c.get("nameType", "Personal") == "Personal"
                else "Organization",
                "name": c["name"],
                **({"givenName": c["givenName"]} if "givenName" in c else {}),
                **({"familyName": c["familyName"]} if "familyName" in c else {}),
            }
            for c in datacite_attributes(v)["creators"]
        ],
        "publisher": {"@type": "Organization", "name": str(v.dc.get("publisher", ""))},
        "datePublished": str(v.dc.get("publicationYear", "")),
        "version": v.version,
        "url": v.url,
        "identifier": (_doi(v) and f"https://doi.org/{_doi(v)}") or v.pid or v.source_id,
    }
    if desc := _description(v.dc):
        doc["description"] = desc
    if subjects := _subjects(v.dc):
        doc["keywords"] = subjects
    rights = [r for r in v.dc.get("rightsList") or [] if isinstance(r, Mapping)]
    if rights:
        doc["license"] = rights[0].get("rightsURI") or rights[0].get("rights")
    if v.software:
        doc["programmingLanguage"] = "Python"
    related = datacite_attributes(v).get("relatedIdentifiers") or []
    derived = [_related_url(r) for r in related if r["relationType"] == "IsDerivedFrom"]
    if derived:
        doc["isBasedOn"] = derived
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _related_url(r: Mapping[str, str]) -> str:
    if r["relatedIdentifierType"] == "DOI":
        return f"https://doi.org/{r['relatedIdentifier']}"
    return r["relatedIdentifier"]


FORMATS: dict[str, tuple[str, Callable[[CitedVersion], str]]] = {
    "bibtex": ("application/x-bibtex; charset=utf-8", bibtex),
    "ris": ("application/x-research-info-systems; charset=utf-8", ris),
    "datacite-json": ("application/vnd.datacite.datacite+json", datacite_json),
    "datacite-xml": ("application/vnd.datacite.datacite+xml", datacite_xml),
    "schema.org": ("application/ld+json", schema_org),
}
"""Format name → (media type, formatter)."""


def cite(v: CitedVersion, fmt: str) -> tuple[str, str]:
    """Return (media type, text) of `v` in format `fmt`; InvalidInput names the known formats."""
    try:
        media_type, formatter = FORMATS[fmt]
    except KeyError:
        raise InvalidInput(
            f"unknown citation format {fmt!r}; use one of {', '.join(FORMATS)}", field="format"
        ) from None
    return media_type, formatter(v)
