"""Dataset pages (also the identifier landing page), file downloads, and record pages."""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import islice
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from matterhub.api.deps import ServicesDep
from matterhub.api.downloads import archive_chunks, file_response
from matterhub.api.routes.exports import exports_of, with_ro_crate
from matterhub.bootstrap import Services
from matterhub.core.datasets import ManifestEntry, VersionPublic
from matterhub.core.errors import MatterHubError, NotFound
from matterhub.web.render import PageRoute, page
from matterhub.web.search import INDEXES, summarize
from matterhub.web.sessions import CurrentSession, WebSession
from matterhub.web.structure import cif_sites, find_structure, flatten

__all__ = ["dataset_page", "router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)

_CITATIONS = (("bibtex", "BibTeX"), ("ris", "RIS"), ("datacite-json", "DataCite JSON"))
_PREVIEW_RECORDS = 10
# A dataset page lists at most this many files, and looks for thumbnails in this many records.
_MAX_FILES = 1000
_SCANNED_RECORDS = 200
_MAX_CIF_BYTES = 1 << 20
_MAX_THUMBNAILS = 12


@router.get("/datasets")
def dataset_list(request: Request, session: CurrentSession, services: ServicesDep) -> Response:
    """Datasets the caller can see, newest first."""
    rows = []
    for ds in services.datasets.list_datasets(session.identity, limit=100):
        sid = ds.latest or ds.versions[-1]
        try:
            version = services.datasets.get(session.identity, sid)
        except MatterHubError:
            continue
        rows.append({"dataset": ds, "version": version, "title": title_of(version)})
    return page(request, session, "datasets.html", {"rows": rows})


def title_of(version: VersionPublic) -> str:
    """The first title of a version, or its source_id."""
    titles = version.dc.get("titles") or [{}]
    return str(titles[0].get("title") or version.source_id)


def _folders(files: list[ManifestEntry]) -> list[tuple[str, list[ManifestEntry]]]:
    """Files grouped by their folder ('' for the top level), folders in path order."""
    groups: dict[str, list[ManifestEntry]] = defaultdict(list)
    for f in files:
        folder, _, _name = f.path.rpartition("/")
        # Extraction's derived files (previews, converted structures) form one folder.
        groups[".derived" if f.path.startswith(".derived/") else folder].append(f)
    return sorted(groups.items())


def dataset_page(request: Request, session: WebSession, services: Services, sid: str) -> Response:
    """Everything about one version: metadata, citation, versions, files, records, access."""
    identity = session.identity
    svc = services.datasets
    version = svc.get(identity, sid)
    versions = svc.versions(identity, version.source_name)
    files: list[ManifestEntry] = []
    records: list[dict[str, Any]] = []
    unavailable = None
    record_count = 0
    try:
        # A page, not the dataset: the first files and records, the counts from the totals
        # (a version may hold 361,804 files and 180,902 records).
        files = svc.manifest(identity, version.source_id, limit=_MAX_FILES)
        records = list(islice(svc.iter_records(identity, version.source_id), _SCANNED_RECORDS))
        record_count = svc.count_records(identity, version.source_id)
    except NotFound as exc:  # withdrawn: the page stays, the bytes go
        unavailable = exc.detail
    citations = [
        (fmt, label, svc.cite(identity, version.source_id, fmt)[1]) for fmt, label in _CITATIONS
    ]
    images = _thumbnails(version.source_id, records) if version.state == "published" else []
    readers = services.accounts.principal_names([*version.visible_to, *version.shared_with])
    context = {
        "v": version,
        "title": title_of(version),
        "versions": versions,
        "files": files,
        "folders": _folders(files),
        "total_bytes": version.total_bytes,
        "files_shown": len(files),
        "images": images,
        "records": [
            {**summarize(f"{version.source_id}.{i + 1}", r), "content": r}
            for i, r in enumerate(records[:_PREVIEW_RECORDS])
        ],
        "record_count": record_count,
        "citations": citations,
        "readers": [readers[p] for p in dict.fromkeys(version.visible_to)],
        "shared": [readers[p] for p in dict.fromkeys(version.shared_with)],
        "unavailable": unavailable,
        "descriptions": [d.get("description") for d in version.dc.get("descriptions") or [] if d],
        "license": _license(version),
        "jsonld": _jsonld(services, session, version),
    }
    return page(request, session, "dataset.html", context)


def _jsonld(services: Services, session: WebSession, version: VersionPublic) -> dict[str, Any]:
    """The schema.org `Dataset` the page embeds: the full export once published."""
    if version.state == "published":
        return exports_of(services).schema_org(session.identity, version.source_id)
    return {
        "@context": "https://schema.org",
        "@type": "Dataset",
        "name": title_of(version),
        "version": version.version,
        "identifier": version.pid_url or version.pid or version.source_id,
    }


def _thumbnails(source_id: str, records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Image previews extraction derived, with the record each belongs to (at most 12)."""
    out: list[dict[str, str]] = []
    for i, record in enumerate(records):
        for f in record.get("files") or []:
            for preview in f.get("previews") or [] if isinstance(f, dict) else []:
                if str(preview.get("media_type", "")).startswith("image/") and preview.get("path"):
                    out.append(
                        {
                            "src": f"/datasets/{source_id}/files/{preview['path']}",
                            "record": f"/records/{source_id}.{i + 1}",
                            "alt": f"preview of {f.get('path', '')}",
                        }
                    )
                    if len(out) >= _MAX_THUMBNAILS:
                        return out
    return out


def _license(version: VersionPublic) -> dict[str, str] | None:
    rights = version.dc.get("rightsList") or version.document.get("dc", {}).get("rightsList")
    if isinstance(rights, list) and rights and isinstance(rights[0], dict):
        first = rights[0]
        return {"name": str(first.get("rights") or first.get("rightsUri") or "")} | (
            {"url": str(first["rightsUri"])} if first.get("rightsUri") else {}
        )
    lic = version.document.get("mdf", {}).get("license") or version.dc.get("license")
    return {"name": str(lic)} if lic else None


@router.get("/datasets/{sid}")
def dataset(sid: str, request: Request, session: CurrentSession, services: ServicesDep) -> Response:
    """A dataset's page: its latest published version, or the version named."""
    return dataset_page(request, session, services, sid)


@router.get("/datasets/{sid}/files/{path:path}")
async def download(
    sid: str, path: str, request: Request, session: CurrentSession, services: ServicesDep
) -> Response:
    """Download a file with the browser's session (ranges and ETags as in the API)."""
    handle = await run_in_threadpool(services.datasets.open_file, session.identity, sid, path)
    return file_response(handle, services.blobs, request)


@router.get("/datasets/{sid}/download.zip")
def download_all(sid: str, session: CurrentSession, services: ServicesDep) -> Response:
    """Every file the caller may read, as one zip built while it is sent."""
    source_id, members = services.datasets.archive_members(session.identity, sid)
    members = with_ro_crate(services, session.identity, source_id, members)
    return StreamingResponse(
        archive_chunks(services.datasets.stream_archive(members, "zip")),
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{source_id}.zip"'},
    )


def _linked_sites(
    services: Services, session: WebSession, files: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Sites read from the record's CIF file, when it links one small enough to read here."""
    for f in files:
        source_id = f["href"].split("/")[2] if f["href"].startswith("/datasets/") else None
        if not source_id or not str(f["path"]).lower().endswith(".cif"):
            continue
        try:
            handle = services.datasets.open_file(session.identity, source_id, f["path"])
            if handle.size > _MAX_CIF_BYTES:
                return []
            return cif_sites(services.blobs.get(handle.key).decode("utf-8", "replace"))
        except MatterHubError:
            return []
    return []


@router.get("/records/{subject}")
def record(
    subject: str,
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
    index: str = "mdf",
) -> Response:
    """One record: every extracted field, its files and, for crystals, the cell."""
    if index not in INDEXES:
        raise NotFound(f"no index {index!r}", field="index")
    hit = services.search.get_entry(session.identity, index, subject, None)
    content = json.loads(hit.source)
    summary = summarize(subject, content)
    source_id = summary["source_id"]
    files = [
        {**f, "href": f"/datasets/{source_id}/files/{f['path']}" if source_id else f.get("url")}
        for f in content.get("files") or []
        if isinstance(f, dict) and f.get("path")
    ]
    previews = [
        {**p, "href": f"/datasets/{source_id}/files/{p['path']}" if source_id else p.get("url")}
        for f in files
        for p in f.get("previews") or []
        if isinstance(p, dict) and p.get("path")
    ]
    context = {
        "r": summary,
        "content": content,
        "fields": [(k, v) for k, v in flatten(content) if not k.startswith("files")],
        "files": files,
        "pictures": [p for p in previews if str(p.get("media_type", "")).startswith("image/")],
        "previews": previews,
        "structure": find_structure(content, _linked_sites(services, session, files)),
        "index": index,
    }
    return page(request, session, "record.html", context)
