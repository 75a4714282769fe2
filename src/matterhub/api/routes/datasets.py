"""The dataset repository over HTTP: versions, uploads, downloads, archives and citations."""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, Request, UploadFile, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from matterhub.api.deps import CurrentIdentity, ServicesDep
from matterhub.api.downloads import BLOCK, archive_chunks, file_response
from matterhub.api.errors import ERROR_RESPONSES
from matterhub.api.routes.exports import with_ro_crate
from matterhub.core.citations import FORMATS
from matterhub.core.datasets import DatasetPublic, ManifestEntry, UploadPublic, VersionPublic
from matterhub.core.errors import InvalidInput, PayloadTooLarge
from matterhub.core.identity import Identity
from matterhub.publish import DatasetService
from matterhub.publish.service import PendingWrite

router = APIRouter(prefix="/api/datasets", tags=["datasets"], responses=ERROR_RESPONSES)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetCreate(_In):
    """A new dataset: its first version starts as a private draft."""

    dc: dict[str, Any] = Field(description="The DataCite block (creators, titles, …).")
    source_name: str | None = Field(
        default=None, description="Stable name; derived from the first author and title if unset."
    )
    visible_to: list[str] = Field(
        default=["public"],
        description="Who sees it once published: 'public', 'user:<name>', 'group:<name>' or URNs.",
    )
    shared_with: list[str] = Field(
        default=[], description="Users or groups who see the draft before it is published."
    )
    blocks: dict[str, Any] = Field(
        default={}, description="Other MDF blocks of dataset.json (mdf, custom, projects, …)."
    )
    test: bool = False
    owner: str | None = Field(default=None, description="Owner's username (administrators).")


class MetadataUpdate(_In):
    """New metadata: changes a draft; on a published version, publishes a new minor version."""

    dc: dict[str, Any] | None = None
    visible_to: list[str] | None = None
    shared_with: list[str] | None = None
    blocks: dict[str, Any] | None = None


class NewVersion(_In):
    """Open the next major version (new data) as a draft."""

    dc: dict[str, Any] | None = None


class Reason(_In):
    """Why (for rejections and withdrawals)."""

    reason: str = Field(min_length=1, max_length=5000)


class UploadCreate(_In):
    """A resumable upload: send chunks with PATCH and `Upload-Offset` until `size` is reached."""

    path: str
    size: int = Field(ge=0)
    sha512: str | None = Field(default=None, description="Expected SHA-512 (hex) of the file.")


class ChunkResult(BaseModel):
    """Where an upload stands after a chunk; `file` is set once the last chunk completed it."""

    upload: UploadPublic
    file: ManifestEntry | None = None


def _svc(services: Any) -> DatasetService:
    datasets: DatasetService = services.datasets
    return datasets


def _content_digest(header: str | None) -> str | None:
    """The SHA-512 from a `Content-Digest: sha-512=:<base64>:` header (RFC 9530), as hex."""
    if not header:
        return None
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name.strip().lower() == "sha-512":
            try:
                return base64.b64decode(value.strip().strip(":"), validate=True).hex()
            except (binascii.Error, ValueError):
                raise InvalidInput("Content-Digest sha-512 is not base64", field="sha512") from None
    return None


async def _pump(chunks: Any, pending: PendingWrite) -> None:
    """Copy an async byte stream into a pending write in large blocks, off the event loop.

    Pipelined: while a worker thread hashes and writes one block, the loop receives the next.
    """
    parts: list[bytes] = []
    held = 0
    writing: asyncio.Future[None] | None = None

    async def flush() -> None:
        nonlocal writing, parts, held
        block = b"".join(parts)
        parts, held = [], 0
        if writing is not None:
            await writing
        writing = asyncio.ensure_future(run_in_threadpool(pending.write, block))

    try:
        async for chunk in chunks:
            if not chunk:
                continue
            parts.append(chunk)
            held += len(chunk)
            if held >= BLOCK:
                await flush()
        if parts:
            await flush()
    finally:
        if writing is not None:
            await writing


async def _store(pending: PendingWrite, chunks: Any) -> Any:
    try:
        await _pump(chunks, pending)
    except BaseException:
        await run_in_threadpool(pending.discard)
        raise
    return await run_in_threadpool(pending.commit)


# -- datasets and versions ---------------------------------------------------------------------


@router.get("", response_model=list[DatasetPublic], summary="List datasets you can see")
def list_datasets(
    identity: CurrentIdentity,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    # Bounded: the catalog's integers are 64-bit (a larger offset was a 500 from the driver).
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[DatasetPublic]:
    """Anonymous callers see datasets with a public published version."""
    return _svc(services).list_datasets(identity, limit=limit, offset=offset)


@router.post(
    "",
    response_model=VersionPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a dataset (its v1.0 draft)",
)
def create_dataset(
    body: DatasetCreate, identity: CurrentIdentity, services: ServicesDep
) -> VersionPublic:
    """The draft is private to you and `shared_with` until published."""
    return _svc(services).create(
        identity,
        dc=body.dc,
        source_name=body.source_name,
        visible_to=body.visible_to,
        shared_with=body.shared_with,
        blocks=body.blocks,
        test=body.test,
        owner=body.owner,
    )


@router.get("/{sid}", response_model=VersionPublic, summary="A version, or a dataset's latest")
def get_dataset(sid: str, identity: CurrentIdentity, services: ServicesDep) -> VersionPublic:
    """`sid` is a source_id (`name_v1.2`) or a source_name (its latest published version)."""
    return _svc(services).get(identity, sid)


@router.patch("/{sid}", response_model=VersionPublic, summary="Update metadata")
def update_metadata(
    sid: str, body: MetadataUpdate, identity: CurrentIdentity, services: ServicesDep
) -> VersionPublic:
    """A draft changes in place; a published version gets a new, published minor version."""
    return _svc(services).update_metadata(
        identity,
        sid,
        dc=body.dc,
        visible_to=body.visible_to,
        shared_with=body.shared_with,
        blocks=body.blocks,
    )


@router.get("/{source_name}/versions", response_model=list[VersionPublic], summary="Versions")
def list_versions(
    source_name: str, identity: CurrentIdentity, services: ServicesDep
) -> list[VersionPublic]:
    """Every version you may see, oldest first; older ones stay downloadable and citable."""
    return _svc(services).versions(identity, source_name)


@router.post(
    "/{source_name}/versions",
    response_model=VersionPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Start a new major version",
)
def new_version(
    source_name: str, body: NewVersion, identity: CurrentIdentity, services: ServicesDep
) -> VersionPublic:
    """A draft `v<major+1>.0` holding the latest version's files."""
    return _svc(services).new_version(identity, source_name, dc=body.dc)


@router.post("/{sid}/publish", response_model=VersionPublic, summary="Publish a version")
def publish(sid: str, identity: CurrentIdentity, services: ServicesDep) -> VersionPublic:
    """Freeze it (manifest, dataset.json) and register its identifier; 409 if one is running."""
    return _svc(services).publish(identity, sid)


@router.post("/{sid}/curation", response_model=VersionPublic, summary="Submit for curation")
def submit_for_curation(
    sid: str, identity: CurrentIdentity, services: ServicesDep
) -> VersionPublic:
    """Curators see it and publish or reject it."""
    return _svc(services).submit_for_curation(identity, sid)


@router.post("/{sid}/reject", response_model=VersionPublic, summary="Reject (curators)")
def reject(
    sid: str, body: Reason, identity: CurrentIdentity, services: ServicesDep
) -> VersionPublic:
    """The submitter sees the reason and may reopen the draft."""
    return _svc(services).reject(identity, sid, reason=body.reason)


@router.post("/{sid}/reopen", response_model=VersionPublic, summary="Back to draft")
def reopen(sid: str, identity: CurrentIdentity, services: ServicesDep) -> VersionPublic:
    """A rejected or curated version becomes an editable draft again."""
    return _svc(services).reopen(identity, sid)


@router.post("/{sid}/withdraw", response_model=VersionPublic, summary="Withdraw a version")
def withdraw(
    sid: str, body: Reason, identity: CurrentIdentity, services: ServicesDep
) -> VersionPublic:
    """Its files stop being served; its landing page and citation remain."""
    return _svc(services).withdraw(identity, sid, reason=body.reason)


@router.get("/{sid}/cite", summary="Citation (bibtex, ris, datacite-json, datacite-xml, …)")
def citation(
    sid: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    format: Annotated[str, Query(description=f"One of: {', '.join(FORMATS)}.")] = "bibtex",
) -> Response:
    """Generated from the version's `dc` block."""
    media_type, text = _svc(services).cite(identity, sid, format)
    return Response(text, media_type=media_type)


# -- files -------------------------------------------------------------------------------------


@router.get("/{sid}/manifest", summary="The manifest (path, size, sha512, mime type)")
def manifest(sid: str, identity: CurrentIdentity, services: ServicesDep) -> Response:
    """A published version's frozen manifest.json; for a draft, its files so far."""
    svc = _svc(services)
    version = svc.get(identity, sid)
    if version.state in ("published", "withdrawn"):
        data = svc.manifest_document(identity, version.source_id)
        return Response(data, media_type="application/json")
    files = svc.manifest(identity, version.source_id)
    body = {"source_id": version.source_id, "files": [f.model_dump() for f in files]}
    return Response(
        ManifestBody.model_validate(body).model_dump_json(), media_type="application/json"
    )


class ManifestBody(BaseModel):
    """A draft's manifest."""

    source_id: str
    files: list[ManifestEntry]


@router.get("/{sid}/files", response_model=list[ManifestEntry], summary="List files")
def list_files(sid: str, identity: CurrentIdentity, services: ServicesDep) -> list[ManifestEntry]:
    """The files you may see in a version."""
    return _svc(services).manifest(identity, sid)


@router.get("/{sid}/files/{path:path}", summary="Download a file", operation_id="download_file")
@router.head("/{sid}/files/{path:path}", include_in_schema=False, operation_id="head_file")
async def download(
    sid: str,
    path: str,
    request: Request,
    identity: CurrentIdentity,
    services: ServicesDep,
) -> Response:
    """Supports `Range` (single and multiple), `If-None-Match` and `If-Range`; ETag = SHA-512."""
    handle = await run_in_threadpool(_svc(services).open_file, identity, sid, path)
    return file_response(handle, services.blobs, request)


@router.put(
    "/{sid}/files/{path:path}",
    response_model=ManifestEntry,
    status_code=status.HTTP_201_CREATED,
    summary="Upload a file (raw body)",
)
async def put_file(
    sid: str,
    path: str,
    request: Request,
    identity: CurrentIdentity,
    services: ServicesDep,
    sha512: Annotated[str | None, Query(description="Expected SHA-512 (hex).")] = None,
    content_digest: Annotated[str | None, Header(description="sha-512=:<base64>:")] = None,
) -> Any:
    """The SHA-512 is computed while the bytes arrive; a mismatch gives 422 and keeps nothing."""
    expected = sha512 or _content_digest(content_digest)
    pending = await run_in_threadpool(
        lambda: _svc(services).begin_file(identity, sid, path, expected_sha512=expected)
    )
    return await _store(pending, request.stream())


@router.post(
    "/{sid}/files",
    response_model=list[ManifestEntry],
    status_code=status.HTTP_201_CREATED,
    summary="Upload files (multipart form)",
)
async def post_files(
    sid: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    files: Annotated[list[UploadFile], File(description="The files; each filename is its path.")],
    prefix: Annotated[str, Form(description="Folder to put them in.")] = "",
) -> list[Any]:
    """Each file is stored whole or not at all."""
    stored = []
    for upload in files:
        name = f"{prefix.strip('/')}/{upload.filename}" if prefix.strip("/") else upload.filename
        if not name:
            raise InvalidInput("every uploaded file needs a filename", field="files")
        pending = await run_in_threadpool(_svc(services).begin_file, identity, sid, name)
        stored.append(await _store(pending, _read_upload(upload)))
    return stored


async def _read_upload(upload: UploadFile) -> Any:
    while chunk := await upload.read(BLOCK):
        yield chunk


@router.delete(
    "/{sid}/files/{path:path}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a file"
)
def delete_file(sid: str, path: str, identity: CurrentIdentity, services: ServicesDep) -> None:
    """Only from a draft."""
    _svc(services).delete_file(identity, sid, path)


_RO_CRATE = (
    "Add the version's RO-Crate metadata (published versions); false gives the files alone, "
    "e.g. for another hub collecting them as the dataset's own layout."
)


@router.get("/{sid}/archive.zip", summary="The whole version as a zip (streamed)")
def archive_zip(
    sid: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    root: bool = True,
    ro_crate: Annotated[bool, Query(description=_RO_CRATE)] = True,
) -> Response:
    """Stored (uncompressed) ZIP64, built while it is sent; `root=false` drops the top folder.

    A published version's archive carries its RO-Crate (`ro-crate-metadata.json`) at the top."""
    return _archive(services, identity, sid, "zip", "application/zip", root=root, ro_crate=ro_crate)


@router.get("/{sid}/archive.tar", summary="The whole version as a tar (streamed)")
def archive_tar(
    sid: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    root: bool = True,
    ro_crate: Annotated[bool, Query(description=_RO_CRATE)] = True,
) -> Response:
    """POSIX tar built while it is sent; `root=false` drops the top folder."""
    return _archive(
        services, identity, sid, "tar", "application/x-tar", root=root, ro_crate=ro_crate
    )


def _archive(
    services: Any,
    identity: Identity,
    sid: str,
    fmt: str,
    media_type: str,
    *,
    root: bool,
    ro_crate: bool,
) -> Response:
    svc = _svc(services)
    source_id, members = svc.archive_members(identity, sid)
    if ro_crate:
        members = with_ro_crate(services, identity, source_id, members)
    if not root:  # e.g. for another hub collecting the files as the dataset's own layout
        members = [replace(m, name=m.name.split("/", 1)[1]) for m in members]
    chunks = svc.stream_archive(members, fmt)
    return StreamingResponse(
        archive_chunks(chunks),
        media_type=media_type,
        headers={"content-disposition": f'attachment; filename="{source_id}.{fmt}"'},
    )


# -- resumable uploads -------------------------------------------------------------------------


@router.post(
    "/{sid}/uploads",
    response_model=UploadPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Start a resumable upload",
)
def start_upload(
    sid: str, body: UploadCreate, identity: CurrentIdentity, services: ServicesDep
) -> UploadPublic:
    """Then PATCH chunks with `Upload-Offset`; GET tells where to resume."""
    limit = services.settings.publish_max_upload_bytes
    if body.size > limit:  # the declared size is what the chunks may fill: capped up front
        raise PayloadTooLarge(
            f"size {body.size} is larger than the limit of {limit} bytes "
            "(setting MATTERHUB_PUBLISH_MAX_UPLOAD_BYTES)",
            field="size",
        )
    return _svc(services).start_upload(
        identity, sid, path=body.path, size=body.size, sha512=body.sha512
    )


@router.get("/{sid}/uploads/{upload_id}", response_model=UploadPublic, summary="Upload status")
def upload_status(
    sid: str, upload_id: str, identity: CurrentIdentity, services: ServicesDep
) -> UploadPublic:
    """`offset` is where the next chunk must start."""
    return _svc(services).upload_status(identity, sid, upload_id)


@router.patch("/{sid}/uploads/{upload_id}", response_model=ChunkResult, summary="Send a chunk")
async def send_chunk(
    sid: str,
    upload_id: str,
    request: Request,
    identity: CurrentIdentity,
    services: ServicesDep,
    upload_offset: Annotated[int, Header(ge=0, description="Where this chunk starts.")],
) -> ChunkResult:
    """A chunk is kept whole or not at all; 409 names the right offset after an interruption."""
    svc = _svc(services)
    pending = await run_in_threadpool(
        lambda: svc.begin_chunk(identity, sid, upload_id, offset=upload_offset)
    )
    result = await _store(pending, request.stream())
    if isinstance(result, UploadPublic):
        return ChunkResult(upload=result)
    status_now = UploadPublic(
        id=upload_id,
        source_id=sid,
        path=result.path,
        size=result.size,
        offset=result.size,
        sha512=result.sha512,
        created_at=svc.get(identity, sid).created_at,
    )
    return ChunkResult(upload=status_now, file=result)


@router.delete(
    "/{sid}/uploads/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Abort a resumable upload",
)
def abort_upload(
    sid: str, upload_id: str, identity: CurrentIdentity, services: ServicesDep
) -> None:
    """Its chunks are dropped."""
    _svc(services).abort_upload(identity, sid, upload_id)
