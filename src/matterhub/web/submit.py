"""Submitting a dataset from the browser, following its steps, my submissions, and curation.

The form becomes an MDF Connect submission: DataCite fields → `dc`, uploaded files → Connect's
owner-checked `upload://<id>` area (removed once published or refused), or a URL as the source.
The status page shows MDF's twelve steps and refreshes them by polling
`/submissions/<id>/status.json` (or by reloading, without JavaScript).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.status import HTTP_303_SEE_OTHER

from matterhub.api.deps import ServicesDep
from matterhub.bootstrap import Services
from matterhub.core.connect import SubmissionRequest
from matterhub.core.errors import InvalidInput, MatterHubError, Unauthenticated
from matterhub.core.identity import PUBLIC, Identity, user_principal
from matterhub.web.render import PageRoute, page
from matterhub.web.sessions import CurrentSession, WebSession, require_csrf

__all__ = ["router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _signed_in(session: WebSession) -> Identity:
    if session.identity.user_id is None:
        raise Unauthenticated("sign in to submit and follow submissions")
    return session.identity


@router.get("/submit")
def submit_form(request: Request, session: CurrentSession) -> Response:
    """The submission form."""
    _signed_in(session)
    return page(request, session, "submit.html", {"form": {}, "error": None})


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def build_request(
    services: Services, identity: Identity, form: dict[str, Any], sources: list[str]
) -> SubmissionRequest:
    """The Connect submission the form describes; bad fields raise InvalidInput naming them."""
    if not form["title"].strip():
        raise InvalidInput("a title is required", field="title")
    creators = _lines(form["creators"])
    if not creators:
        raise InvalidInput("at least one creator is required (one per line)", field="creators")
    dc: dict[str, Any] = {
        "titles": [{"title": form["title"].strip()}],
        "creators": [{"creatorName": c} for c in creators],
    }
    if form["description"].strip():
        dc["descriptions"] = [
            {"description": form["description"].strip(), "descriptionType": "Abstract"}
        ]
    subjects = [s.strip() for s in form["subjects"].split(",") if s.strip()]
    if subjects:
        dc["subjects"] = [{"subject": s} for s in subjects]
    if form["year"].strip():
        dc["publicationYear"] = form["year"].strip()
    if form["license"].strip():
        dc["rightsList"] = [{"rights": form["license"].strip()}]
    if form["visibility"] == "public":
        acl = [PUBLIC]
    elif form["visibility"] == "private":
        acl = [user_principal(identity.user_id or "")]
    else:
        raise InvalidInput("visibility must be 'public' or 'private'", field="visibility")
    for name in [g.strip() for g in form["groups"].split(",") if g.strip()]:
        acl.append(services.accounts.get_group(identity, name).principal)
    mdf: dict[str, Any] = {"acl": acl}
    if form["source_name"].strip():
        mdf["source_name"] = form["source_name"].strip()
    try:
        return SubmissionRequest(
            dc=dc,
            data_sources=sources,
            mdf=mdf,
            curation=form["curation"],
            test=form["test"],
            update=form["update"],
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "form"
        raise InvalidInput(problem["msg"], field=where) from None


def _stage(services: Services, identity: Identity, files: list[UploadFile]) -> str | None:
    """Hand uploaded files to Connect (an owner-checked `upload://` area); None when none."""
    chosen = [f for f in files if f.filename]
    if not chosen:
        return None
    pairs = [(PurePosixPath(str(f.filename).replace("\\", "/")).name, f.file) for f in chosen]
    max_bytes = services.settings.connect_max_bytes
    return str(services.connect.stage_upload(identity, pairs, max_bytes=max_bytes))


@router.post("/submit")
async def submit(
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
    csrf_token: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
    creators: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    subjects: Annotated[str, Form()] = "",
    year: Annotated[str, Form()] = "",
    license: Annotated[str, Form()] = "",
    visibility: Annotated[str, Form()] = "public",
    groups: Annotated[str, Form()] = "",
    source_name: Annotated[str, Form()] = "",
    url: Annotated[str, Form()] = "",
    curation: Annotated[bool, Form()] = False,
    test: Annotated[bool, Form()] = False,
    update: Annotated[bool, Form()] = False,
    files: Annotated[list[UploadFile], File()] = [],  # noqa: B006 - FastAPI copies defaults
) -> Response:
    """Submit to Connect, then go to the live status page."""
    identity = _signed_in(session)
    require_csrf(session, csrf_token)
    form: dict[str, Any] = {
        "title": title, "creators": creators, "description": description,
        "subjects": subjects, "year": year, "license": license, "visibility": visibility,
        "groups": groups, "source_name": source_name, "url": url,
        "curation": curation, "test": test, "update": update,
    }  # fmt: skip
    upload = None
    try:
        upload = await run_in_threadpool(_stage, services, identity, files)
        sources = [upload] if upload else []
        if url.strip():
            sources.append(url.strip())
        if not sources:
            raise InvalidInput("upload files or give a URL to collect them from", field="files")
        submission = build_request(services, identity, form, sources)
        result = await run_in_threadpool(services.connect.submit, identity, submission)
    except MatterHubError as exc:
        if upload is not None:
            services.connect.discard_upload(upload)  # refused: keep nothing of it
        context = {"form": form, "error": exc}
        return page(request, session, "submit.html", context, status_code=exc.status)
    target = f"/submissions/{result['source_id']}"
    return RedirectResponse(target, status_code=HTTP_303_SEE_OTHER)


def _status(services: Services, identity: Identity, source_id: str) -> dict[str, Any]:
    block: dict[str, Any] = services.connect.status(identity, source_id)["status"]
    return block


@router.get("/submissions/{source_id}")
def status_page(
    source_id: str, request: Request, session: CurrentSession, services: ServicesDep
) -> Response:
    """A submission's steps, refreshed while it runs."""
    block = _status(services, _signed_in(session), source_id)
    return page(request, session, "status.html", {"s": block})


@router.get("/submissions/{source_id}/status.json")
def status_json(source_id: str, session: CurrentSession, services: ServicesDep) -> Response:
    """The status block, for the page's polling script."""
    block = _status(services, _signed_in(session), source_id)
    keep = ("source_id", "status_list", "active", "state", "status_code")
    return JSONResponse({k: block[k] for k in keep})


@router.get("/me/submissions")
def my_submissions(request: Request, session: CurrentSession, services: ServicesDep) -> Response:
    """The caller's submissions, newest first."""
    blocks = services.connect.submissions(_signed_in(session))
    return page(request, session, "my_submissions.html", {"submissions": blocks[::-1]})


@router.get("/curation")
def curation_queue(request: Request, session: CurrentSession, services: ServicesDep) -> Response:
    """Submissions waiting for a curator."""
    tasks = services.connect.curation_tasks(_signed_in(session))
    return page(request, session, "curation.html", {"tasks": tasks, "message": None})


@router.post("/curation/{source_id}")
def curate(
    source_id: str,
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
    action: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Accept or reject one submission, with a reason."""
    identity = _signed_in(session)
    require_csrf(session, csrf_token)
    result = services.connect.curate(identity, source_id, action=action, reason=reason)
    tasks = services.connect.curation_tasks(identity)
    context = {"tasks": tasks, "message": result.get("message")}
    return page(request, session, "curation.html", context)
