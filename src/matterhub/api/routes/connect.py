"""MDF Connect's submission API at /connect, so mdf-connect-client works against MatterHub."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from matterhub.api.deps import CurrentIdentity, ServicesDep
from matterhub.api.errors import ERROR_RESPONSES
from matterhub.core.connect import MetadataUpdateRequest, SubmissionRequest
from matterhub.core.errors import InvalidInput

router = APIRouter(prefix="/connect", tags=["connect (MDF Connect)"], responses=ERROR_RESPONSES)


@router.post("/submit", summary="Submit a dataset")
def submit(
    request: SubmissionRequest, identity: CurrentIdentity, services: ServicesDep
) -> JSONResponse:
    """Recorded before it is acknowledged; follow it at /connect/status/<source_id>."""
    return JSONResponse(services.connect.submit(identity, request), status_code=202)


@router.post("/uploads", summary="Upload files for a submission", status_code=201)
async def upload(
    identity: CurrentIdentity,
    services: ServicesDep,
    files: Annotated[list[UploadFile], File(description="The files; each filename is its path.")],
) -> dict[str, Any]:
    """Returns `upload://<id>`: name it in a submission's `data_sources` (yours only)."""
    source = await run_in_threadpool(_stage, services, identity, files)
    return {"success": True, "data_source": source, "files": len(files)}


@router.post("/submit/files", summary="Submit a dataset with its files", status_code=202)
async def submit_with_files(
    identity: CurrentIdentity,
    services: ServicesDep,
    submission: Annotated[str, Form(description="The submission JSON, as for /connect/submit.")],
    files: Annotated[list[UploadFile], File(description="The files; each filename is its path.")],
) -> JSONResponse:
    """One request: the files become an `upload://` data source of the submission."""
    try:
        raw = json.loads(submission)
    except ValueError as exc:
        raise InvalidInput(f"submission is not JSON: {exc}", field="submission") from None
    if not isinstance(raw, dict):
        raise InvalidInput("submission must be a JSON object", field="submission")
    sources = raw.get("data_sources") or []
    if not isinstance(sources, list):
        raise InvalidInput("data_sources must be a list", field="submission.data_sources")
    try:  # validate before storing anything, with a stand-in for the upload
        request = SubmissionRequest.model_validate(
            {**raw, "data_sources": [*sources, "upload://pending"]}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "submission"
        raise InvalidInput(f"{where}: {first['msg']}", field=f"submission.{where}") from None
    source = await run_in_threadpool(_stage, services, identity, files)
    request = request.model_copy(update={"data_sources": [*sources, source]})
    try:
        result = await run_in_threadpool(services.connect.submit, identity, request)
    except Exception:
        services.connect.discard_upload(source)  # refused: keep nothing of it
        raise
    return JSONResponse(result, status_code=202)


def _stage(services: Any, identity: Any, files: list[UploadFile]) -> str:
    pairs = []
    for item in files:
        if not item.filename:
            raise InvalidInput("every uploaded file needs a filename", field="files")
        pairs.append((item.filename, item.file))
    return str(
        services.connect.stage_upload(
            identity, pairs, max_bytes=services.settings.connect_max_bytes
        )
    )


@router.post("/update/{source_id}", summary="Update a dataset's metadata")
def update(
    source_id: str, request: MetadataUpdateRequest, identity: CurrentIdentity, services: ServicesDep
) -> JSONResponse:
    """Same data, new metadata: a new minor version, published and re-indexed.

    No `data_sources` (the files are the current version's); `mdf.source_name` may be sent
    when it names this dataset (mdf-connect-client sends it back when it was set)."""
    return JSONResponse(
        services.connect.update_metadata(identity, source_id, request), status_code=202
    )


@router.post("/cancel/{source_id}", summary="Cancel a submission")
def cancel(source_id: str, identity: CurrentIdentity, services: ServicesDep) -> dict[str, Any]:
    """Unfinished steps become X; nothing of it is published."""
    return services.connect.cancel(identity, source_id)


@router.get("/status/{source_id}", summary="A submission's status")
def status(source_id: str, identity: CurrentIdentity, services: ServicesDep) -> dict[str, Any]:
    """MDF's twelve steps with their one-letter codes."""
    return services.connect.status(identity, source_id)


@router.post("/submissions", summary="Your submissions")
@router.get("/submissions", summary="Your submissions", include_in_schema=False)
def submissions(
    identity: CurrentIdentity,
    services: ServicesDep,
    body: Annotated[
        dict[str, Any] | None, Body(description='{"filters": [[field, op, value], …]}')
    ] = None,
) -> dict[str, Any]:
    """Status blocks of the caller's submissions (everyone's for administrators)."""
    filters = (body or {}).get("filters") or []
    return {"success": True, "submissions": services.connect.submissions(identity, filters)}


@router.get("/organizations", summary="Organisations and their rules")
def organizations(identity: CurrentIdentity, services: ServicesDep) -> dict[str, Any]:
    """What naming one in `mdf.organizations` implies: required fields, curation, default ACL."""
    return {"success": True, "organizations": services.connect.organizations(identity)}


@router.get("/curation/", summary="The curation queue")
@router.get("/curation", include_in_schema=False)
def curation_tasks(identity: CurrentIdentity, services: ServicesDep) -> dict[str, Any]:
    """Submissions waiting for a curator (curators only)."""
    return {"success": True, "curation_tasks": services.connect.curation_tasks(identity)}


@router.get("/curate/{source_id}", summary="One curation task")
def curation_task(
    source_id: str, identity: CurrentIdentity, services: ServicesDep
) -> dict[str, Any]:
    """The dataset entry, its first records and the extraction summary."""
    return {"success": True, "curation_task": services.connect.curation_task(identity, source_id)}


@router.post("/curate/{source_id}", summary="Accept or reject a submission")
def curate(
    source_id: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    body: Annotated[
        dict[str, Any], Body(description='{"action": "accept"|"reject", "reason": "…"}')
    ],
) -> dict[str, Any]:
    """Accepting continues the pipeline; rejecting stops it and tells the submitter why."""
    return services.connect.curate(
        identity, source_id, action=str(body.get("action", "")), reason=str(body.get("reason", ""))
    )
