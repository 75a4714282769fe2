"""Exports of a published version: RO-Crate 1.1, Croissant 1.1 and schema.org `Dataset` JSON-LD.

Each is built from what the repository already holds — the version's `dc` block, its manifest
and the records its extractors wrote — for the caller: a version the caller may not read is
NotFound (the dataset policy decides, as for downloads), and files with a narrower access list
than the version's appear only to those who may read them (the same set the archive holds).

- **RO-Crate** (`ro-crate-metadata.json`): the root `Dataset` with `hasPart` listing every file as
  a `File` entity; it describes the version's archive layout, so the same document goes inside
  the zip and tar (at `<source_id>/ro-crate-metadata.json`).
- **Croissant**: the version's tabular and array files as `cr:FileObject`s (with `sha256`, which
  Croissant requires: computed once per file content and kept under `digests/sha256/<sha512>`),
  a `cr:RecordSet` per CSV with a `cr:Field` per column (types from the extractor's column
  summary, else from the file's first rows) and per HDF5 file with a field per dataset
  (`isArray`, `arrayShape`; no `extract`, since Croissant has no HDF5 reader yet).
- **schema.org**: the citation's `Dataset` JSON-LD plus `distribution` (the zip) and the exports.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from matterhub.blobs import BlobStore
from matterhub.core.datasets import ManifestEntry, VersionPublic
from matterhub.core.errors import InvalidInput, NotFound
from matterhub.core.identity import Identity
from matterhub.publish import DatasetService

__all__ = [
    "CROISSANT_CONTEXT",
    "EXPORT_FORMATS",
    "MAX_CROISSANT_FILES",
    "RO_CRATE_NAME",
    "Exports",
    "dumps_jsonld",
]

RO_CRATE_NAME = "ro-crate-metadata.json"
RO_CRATE_CONTEXT = "https://w3id.org/ro/crate/1.1/context"
RO_CRATE_SPEC = "https://w3id.org/ro/crate/1.1"
CROISSANT_SPEC = "http://mlcommons.org/croissant/1.1"
# The context the Croissant 1.1 specification gives (names and descriptions as plain strings).
CROISSANT_CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
EXPORT_FORMATS = ("ro-crate", "croissant", "schema.org")
"""The formats `Exports.export` makes, as the CLI and the client name them."""
MAX_CROISSANT_FILES = 1000
"""Tabular and array files described in one Croissant document (each needs its sha256)."""

_DERIVED = ".derived/"  # previews Connect made; the RO-Crate lists them, Croissant does not
_CSV_SUFFIXES = (".csv", ".tsv")
_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".emd", ".h5ebsd")
_HEAD_BYTES = 64 * 1024  # what is read of a CSV without a column summary to type its columns
_HEAD_ROWS = 200
_DIGEST_PREFIX = "digests/sha256"
# Column types of the extractors' summaries (connect/extractors/mapping.py) → Croissant's.
_COLUMN_TYPES = {
    "number": "sc:Float",
    "integer": "sc:Integer",
    "boolean": "sc:Boolean",
    "datetime": "sc:Date",
    "string": "sc:Text",
    "empty": "sc:Text",
}


@dataclass(frozen=True, slots=True)
class _Version:
    """What every export of one version needs, read once with the caller's rights."""

    version: VersionPublic
    files: list[ManifestEntry]
    landing: str
    api: str


class Exports:
    """RO-Crate, Croissant and schema.org descriptions of published versions."""

    def __init__(self, datasets: DatasetService, blobs: BlobStore, *, base_url: str) -> None:
        self._datasets = datasets
        self._blobs = blobs
        self._base = base_url.rstrip("/")

    # shared ----------------------------------------------------------------------------------

    def _load(self, identity: Identity, sid: str) -> _Version:
        version = self._datasets.get(identity, sid)
        if version.state != "published":
            raise NotFound(
                f"{version.source_id} is not published ({version.state}); exports describe "
                "published versions",
                field="source_id",
            )
        source_id = version.source_id
        _sid, members = self._datasets.archive_members(identity, source_id)
        readable = {m.name.split("/", 1)[1] for m in members}
        files = [f for f in self._datasets.manifest(identity, source_id) if f.path in readable]
        return _Version(
            version=version,
            files=files,
            landing=f"{self._base}/datasets/{source_id}",
            api=f"{self._base}/api/datasets/{source_id}",
        )

    def export(self, identity: Identity, sid: str, fmt: str) -> dict[str, Any]:
        """The export named `fmt` (one of `EXPORT_FORMATS`) of a published version."""
        if fmt == "ro-crate":
            return self.ro_crate(identity, sid)
        if fmt == "croissant":
            return self.croissant(identity, sid)
        if fmt == "schema.org":
            return self.schema_org(identity, sid)
        raise InvalidInput(
            f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}",
            field="format",
        )

    def _file_url(self, v: _Version, path: str) -> str:
        return f"{v.api}/files/{quote(path)}"

    # RO-Crate --------------------------------------------------------------------------------

    def ro_crate(self, identity: Identity, sid: str) -> dict[str, Any]:
        """The RO-Crate 1.1 metadata document (`ro-crate-metadata.json`) of a version."""
        return self._ro_crate(self._load(identity, sid))

    def ro_crate_bytes(self, identity: Identity, sid: str) -> bytes:
        """The RO-Crate as the archive carries it (UTF-8, indented)."""
        return dumps_jsonld(self.ro_crate(identity, sid))

    def _ro_crate(self, v: _Version) -> dict[str, Any]:
        ver = v.version
        dc = ver.dc
        people = _creators(dc)
        root: dict[str, Any] = {
            "@id": "./",
            "@type": "Dataset",
            "name": _title(dc) or ver.source_id,
            "description": _description(dc) or _title(dc) or ver.source_id,
            "datePublished": _date(ver),
            "version": ver.version,
            "identifier": ver.pid_url or ver.pid or v.landing,
            "url": v.landing,
            "author": [{"@id": p["@id"]} for p in people],
            "publisher": {"@id": "#publisher"},
            "hasPart": [{"@id": _crate_id(f.path)} for f in v.files],
            "distribution": {"@id": f"{v.api}/archive.zip"},
            "subjectOf": [{"@id": f"{v.api}/croissant.json"}, {"@id": v.landing}],
        }
        if keywords := _subjects(dc):
            root["keywords"] = keywords
        if license_ := _license(dc):
            root["license"] = {"@id": license_}
        graph: list[dict[str, Any]] = [
            {
                "@id": RO_CRATE_NAME,
                "@type": "CreativeWork",
                "conformsTo": {"@id": RO_CRATE_SPEC},
                "about": {"@id": "./"},
            },
            root,
            *people,
            {"@id": "#publisher", "@type": "Organization", "name": str(dc.get("publisher", ""))},
            {
                "@id": f"{v.api}/archive.zip",
                "@type": "DataDownload",
                "encodingFormat": "application/zip",
                "contentUrl": f"{v.api}/archive.zip",
            },
        ]
        if license_:
            graph.append({"@id": license_, "@type": "CreativeWork", "name": license_})
        for f in v.files:
            graph.append(
                {
                    "@id": _crate_id(f.path),
                    "@type": "File",
                    "name": f.path.rsplit("/", 1)[-1],
                    "contentSize": str(f.size),
                    "encodingFormat": f.mime_type,
                    "contentUrl": self._file_url(v, f.path),
                    # schema.org has no sha512; the manifest's checksum travels as an identifier.
                    "identifier": f"sha512:{f.sha512}",
                }
            )
        return {"@context": RO_CRATE_CONTEXT, "@graph": graph}

    # Croissant -------------------------------------------------------------------------------

    def croissant(self, identity: Identity, sid: str) -> dict[str, Any]:
        """The Croissant 1.1 JSON-LD of a version's tabular (CSV) and array (HDF5) data."""
        v = self._load(identity, sid)
        source_id = v.version.source_id
        summaries = self._summaries(identity, source_id)
        wanted = [
            f
            for f in v.files
            if not f.path.startswith(_DERIVED)
            and (f.path.lower().endswith(_CSV_SUFFIXES + _HDF5_SUFFIXES) or f.path in summaries)
        ][:MAX_CROISSANT_FILES]
        distribution: list[dict[str, Any]] = []
        record_sets: list[dict[str, Any]] = []
        for f in wanted:
            file_id = f"file/{f.path}"
            handle = self._datasets.open_file(identity, source_id, f.path)
            distribution.append(
                {
                    "@type": "cr:FileObject",
                    "@id": file_id,
                    "name": f.path,
                    "contentUrl": self._file_url(v, f.path),
                    "contentSize": f"{f.size} B",
                    "encodingFormat": _encoding(f),
                    "sha256": self._sha256(handle.key, f.sha512),
                }
            )
            summary = summaries.get(f.path, {})
            if "hdf5" in summary or f.path.lower().endswith(_HDF5_SUFFIXES):
                fields = _hdf5_fields(f.path, file_id, summary.get("hdf5") or {})
            else:
                columns = (summary.get("tabular") or {}).get("columns")
                if not columns and f.path.lower().endswith(_CSV_SUFFIXES):
                    columns = self._head_columns(handle.key)
                fields = _column_fields(f.path, file_id, columns or [])
            if fields:
                record_sets.append(
                    {
                        "@type": "cr:RecordSet",
                        "@id": f.path,
                        "name": f.path,
                        "description": _record_set_description(f.path, summary),
                        "field": fields,
                    }
                )
        ver = v.version
        doc: dict[str, Any] = {
            "@context": CROISSANT_CONTEXT,
            "@type": "sc:Dataset",
            "conformsTo": CROISSANT_SPEC,
            "name": _title(ver.dc) or ver.source_id,
            "description": _description(ver.dc) or _title(ver.dc) or ver.source_id,
            "url": v.landing,
            "version": ver.version,
            "datePublished": _date(ver),
            "citeAs": self._datasets.cite(identity, source_id, "bibtex")[1].strip(),
            "creator": [{"@type": p["@type"], "name": p["name"]} for p in _creators(ver.dc)],
            "publisher": {"@type": "Organization", "name": str(ver.dc.get("publisher", ""))},
            "distribution": distribution,
            "recordSet": record_sets,
        }
        if ver.pid_url or ver.pid:
            doc["identifier"] = ver.pid_url or ver.pid
        if keywords := _subjects(ver.dc):
            doc["keywords"] = keywords
        if license_ := _license(ver.dc):
            doc["license"] = license_
        return doc

    def _summaries(self, identity: Identity, source_id: str) -> dict[str, dict[str, Any]]:
        """Per file path, the `tabular` / `hdf5` blocks its extractors wrote."""
        out: dict[str, dict[str, Any]] = {}
        for record in self._datasets.iter_records(identity, source_id):
            blocks = {k: record[k] for k in ("tabular", "hdf5") if isinstance(record.get(k), dict)}
            files = record.get("files") or []
            if not blocks or len(files) != 1 or not isinstance(files[0], Mapping):
                continue
            path = files[0].get("path") or files[0].get("filename")
            if path:
                out.setdefault(str(path), {}).update(blocks)
        return out

    def _sha256(self, key: str, sha512: str) -> str:
        """A file's SHA-256, hashed once per content (kept under its SHA-512)."""
        cached = f"{_DIGEST_PREFIX}/{sha512}"
        if self._blobs.exists(cached):
            return self._blobs.get(cached).decode()
        digest = hashlib.sha256()
        for chunk in self._blobs.stream(key):
            digest.update(chunk)
        value = digest.hexdigest()
        self._blobs.put(cached, value.encode())
        return value

    def _head_columns(self, key: str) -> list[dict[str, Any]]:
        """Column names and types from a CSV's first rows (when no summary was extracted)."""
        size = self._blobs.size(key)
        head = self._blobs.read_range(key, 0, min(size, _HEAD_BYTES)).decode("utf-8", "replace")
        if size > _HEAD_BYTES:
            head = head.rsplit("\n", 1)[0]  # drop a cut last row
        try:
            dialect: Any = csv.Sniffer().sniff(head[:8192], delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        rows = list(_take(csv.reader(io.StringIO(head.lstrip("\ufeff")), dialect), _HEAD_ROWS))
        if not rows:
            return []
        header, body = rows[0], rows[1:]
        return [
            {"name": name.strip(), "type": _infer([r[i] for r in body if i < len(r)])}
            for i, name in enumerate(header)
        ]

    # schema.org ------------------------------------------------------------------------------

    def schema_org(self, identity: Identity, sid: str) -> dict[str, Any]:
        """schema.org `Dataset` JSON-LD (what the landing page embeds)."""
        v = self._load(identity, sid)
        source_id = v.version.source_id
        doc: dict[str, Any] = json.loads(self._datasets.cite(identity, source_id, "schema.org")[1])
        doc["url"] = v.landing
        doc["datePublished"] = _date(v.version)
        doc["isAccessibleForFree"] = True
        doc["distribution"] = [
            {
                "@type": "DataDownload",
                "encodingFormat": "application/zip",
                "contentUrl": f"{v.api}/archive.zip",
            }
        ]
        doc["subjectOf"] = [
            {
                "@type": "CreativeWork",
                "encodingFormat": "application/ld+json",
                "url": f"{v.api}/{RO_CRATE_NAME}",
                "name": "RO-Crate 1.1 metadata",
            },
            {
                "@type": "CreativeWork",
                "encodingFormat": "application/ld+json",
                "url": f"{v.api}/croissant.json",
                "name": "Croissant 1.1 description",
            },
        ]
        return doc


# helpers -----------------------------------------------------------------------------------


def dumps_jsonld(doc: Mapping[str, Any]) -> bytes:
    """A JSON-LD document as served and archived: UTF-8, indented, newline-terminated."""
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def _take(rows: Iterable[list[str]], n: int) -> Iterator[list[str]]:
    for i, row in enumerate(rows):
        if i >= n:
            return
        yield row


def _crate_id(path: str) -> str:
    """A data entity's @id: its path relative to the crate root, URI-escaped."""
    return quote(path)


def _title(dc: Mapping[str, Any]) -> str:
    titles = [t for t in dc.get("titles") or [] if isinstance(t, Mapping)]
    return str(titles[0].get("title", "")) if titles else ""


def _description(dc: Mapping[str, Any]) -> str:
    for d in dc.get("descriptions") or []:
        if isinstance(d, Mapping) and d.get("description"):
            return str(d["description"])
    return ""


def _subjects(dc: Mapping[str, Any]) -> list[str]:
    return [
        str(s["subject"])
        for s in dc.get("subjects") or []
        if isinstance(s, Mapping) and s.get("subject")
    ]


def _license(dc: Mapping[str, Any]) -> str | None:
    for right in dc.get("rightsList") or []:
        if isinstance(right, Mapping) and (right.get("rightsURI") or right.get("rights")):
            return str(right.get("rightsURI") or right.get("rights"))
    return None


def _creators(dc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Contextual entities for the creators (`#creator-<n>`), with given/family names."""
    out = []
    for i, creator in enumerate(dc.get("creators") or [], start=1):
        if not isinstance(creator, Mapping):
            continue
        name = str(creator.get("creatorName", "")).strip()
        person = creator.get("nameType", "Personal") == "Personal"
        entity: dict[str, Any] = {
            "@id": f"#creator-{i}",
            "@type": "Person" if person else "Organization",
            "name": name,
        }
        if person and "," in name:
            family, given = (part.strip() for part in name.split(",", 1))
            entity.update(familyName=family, givenName=given)
        affiliations = [
            str(a.get("name") if isinstance(a, Mapping) else a)
            for a in creator.get("affiliations") or creator.get("affiliation") or []
        ]
        if affiliations:
            entity["affiliation"] = "; ".join(affiliations)
        out.append(entity)
    return out


def _date(ver: VersionPublic) -> str:
    when = ver.published_at or ver.created_at
    return when.date().isoformat()


def _encoding(f: ManifestEntry) -> str:
    lower = f.path.lower()
    if lower.endswith(".csv"):
        return "text/csv"
    if lower.endswith(".tsv"):
        return "text/tab-separated-values"
    if lower.endswith(_HDF5_SUFFIXES):
        return "application/x-hdf5"
    return f.mime_type


def _column_fields(path: str, file_id: str, columns: list[Any]) -> list[dict[str, Any]]:
    fields = []
    for column in columns:
        if not isinstance(column, Mapping) or not str(column.get("name", "")).strip():
            continue
        name = str(column["name"])
        field: dict[str, Any] = {
            "@type": "cr:Field",
            "@id": f"{path}/{name}",
            "name": name,
            "dataType": _COLUMN_TYPES.get(str(column.get("type")), "sc:Text"),
            "source": {"fileObject": {"@id": file_id}, "extract": {"column": name}},
        }
        if column.get("type") == "number" and "min" in column:
            field["description"] = f"range {column['min']} to {column['max']}"
        fields.append(field)
    return fields


def _hdf5_type(dtype: str) -> str:
    kind = dtype.lstrip("<>|=")[:1]
    if kind == "f":
        return "sc:Float"
    if kind in ("i", "u"):
        return "sc:Integer"
    if kind == "b" and dtype.lstrip("<>|=").startswith("bool"):
        return "sc:Boolean"
    return "sc:Text"


def _hdf5_fields(path: str, file_id: str, block: Mapping[str, Any]) -> list[dict[str, Any]]:
    fields = []
    for item in block.get("datasets") or []:
        if not isinstance(item, Mapping) or not item.get("name"):
            continue
        name = str(item["name"])
        shape = [int(n) for n in item.get("shape") or []]
        field: dict[str, Any] = {
            "@type": "cr:Field",
            "@id": f"{path}/{name}",
            "name": name,
            "description": f"HDF5 dataset /{name} in {path}"
            + (f" ({item['units']})" if item.get("units") else ""),
            "dataType": _hdf5_type(str(item.get("dtype", ""))),
            # Croissant has no HDF5 reader: the field names its dataset instead of an extract.
            "source": {"fileObject": {"@id": file_id}},
        }
        if shape:
            field["isArray"] = True
            field["arrayShape"] = ",".join(str(n) for n in shape)
        fields.append(field)
    return fields


def _record_set_description(path: str, summary: Mapping[str, Any]) -> str:
    tabular = summary.get("tabular") or {}
    if "row_count" in tabular:
        return f"{tabular['row_count']} rows of {path}"
    if summary.get("hdf5"):
        return f"the datasets of {path}"
    return f"the columns of {path}"


def _infer(values: list[str]) -> str:
    """A column type from sample cells: integer, number, boolean or string."""
    cells = [v.strip() for v in values if v.strip()]
    if not cells:
        return "string"
    if all(c.lower() in ("true", "false") for c in cells):
        return "boolean"
    try:
        numbers = [float(c) for c in cells]
    except ValueError:
        return "string"
    return (
        "integer"
        if all(n.is_integer() and "." not in c for n, c in zip(numbers, cells, strict=True))
        else "number"
    )
