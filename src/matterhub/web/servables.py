"""Servable pages: search, the servable page with its "try it" form, build logs, my servables.

The try-it form posts to `/servables/<owner>/<name>/try` (the API keeps DLHub's `…/run`); the
server runs the servable through the run service with the browser's identity and re-renders the
page with the result, so it works without JavaScript. The script sends the same form with
`Accept: application/json` and shows the answer in place.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.status import HTTP_308_PERMANENT_REDIRECT

from matterhub.api.deps import ServicesDep
from matterhub.bootstrap import Services
from matterhub.core.errors import (
    BadRequest,
    InvalidInput,
    MatterHubError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from matterhub.core.identity import PUBLIC, Identity
from matterhub.hub import SearchQuery
from matterhub.hub.runtime import RunRequest
from matterhub.web.access import access_block
from matterhub.web.render import PageRoute, page
from matterhub.web.scaling import workers_section
from matterhub.web.servable_cite import cite_block
from matterhub.web.servable_upload import MAX_FILE_BYTES, structure_inputs
from matterhub.web.servable_view import result_view, servable_view, summarize_servable
from matterhub.web.sessions import CurrentSession, WebSession, require_csrf

__all__ = ["router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PER_PAGE = 20
MAX_OFFSET = 1000
INPUT_TYPES = (
    "float", "integer", "number", "string", "boolean", "ndarray", "list", "tuple", "dict",
    "file", "structure", "composition", "python object",
)  # fmt: skip


def _page_number(raw: str | None) -> int:
    try:
        number = int(raw or 1)
    except ValueError:
        raise InvalidInput("page must be a whole number", field="page") from None
    if number < 1 or (number - 1) * PER_PAGE >= MAX_OFFSET:
        raise InvalidInput(f"page must be 1-{MAX_OFFSET // PER_PAGE}", field="page")
    return number


@router.get("/servables")
def servable_search(request: Request, session: CurrentSession, services: ServicesDep) -> Response:
    """Search servables by text (or the advanced syntax) and input type; newest first."""
    params = request.query_params
    q = (params.get("q") or "").strip()
    advanced = params.get("advanced") in ("1", "on", "true")
    input_type = params.get("input_type") or ""
    if input_type and input_type not in INPUT_TYPES:
        raise InvalidInput(
            f"input_type must be one of {', '.join(INPUT_TYPES)}", field="input_type"
        )
    number = _page_number(params.get("page"))
    query = SearchQuery(
        q or None,
        advanced=advanced,
        input_type=input_type or None,
        limit=PER_PAGE,
        offset=(number - 1) * PER_PAGE,
    )
    error = None
    total = 0
    documents: list[dict[str, Any]] = []
    try:
        total, documents = services.servables.search(session.identity, query)
    except BadRequest as exc:
        if exc.field not in (None, "q"):
            raise
        error = exc.detail
    form = {"q": q, "advanced": "1" if advanced else "", "input_type": input_type}
    context = {
        "form": form,
        "error": error,
        "total": total,
        "results": [summarize_servable(d) for d in documents],
        "input_types": INPUT_TYPES,
        "page_number": number,
        "pages": max(1, min(-(-total // PER_PAGE), MAX_OFFSET // PER_PAGE)),
        "per_page": PER_PAGE,
    }
    return page(request, session, "servables.html", context, status_code=400 if error else 200)


def _run_block(
    services: Services, identity: Identity, ref: str, latest: str | None, runnable_by: list[str]
) -> dict[str, Any]:
    """Whether the caller may run the servable here, and if not, why."""
    if latest is None:
        return {
            "ok": False,
            "why": "No version has built successfully yet, so there is nothing to run.",
        }
    try:
        services.servables.require_run(identity, ref)  # the same check the run service makes
    except PermissionDenied:
        names = services.accounts.principal_names(runnable_by)
        who = ", ".join(names[p] for p in runnable_by)
        why = f"You may see this servable but not run it: only {who} may run it."
        signin = identity.user_id is None and PUBLIC not in runnable_by
        return {"ok": False, "why": why, "signin": signin}
    return {"ok": True, "why": None, "signin": False}


def servable_page(
    request: Request,
    session: WebSession,
    services: Services,
    owner: str,
    name: str,
    *,
    version: str | None = None,
    attempt: dict[str, Any] | None = None,
    status_code: int = 200,
    workers_error: dict[str, Any] | None = None,
) -> Response:
    identity = session.identity
    ref = f"{owner}/{name}"
    described = services.servables.describe(identity, ref, version=version)
    builds = {b.id: b for b in services.servables.list_builds(identity, ref)}
    principals = [*described.visible_to, *described.runnable_by]
    names = services.accounts.principal_names(principals)
    context = servable_view(described, builds, names, services.settings.base_url)
    context["dataset"] = _training_dataset(services, identity, described.document)
    context["source"] = (described.document.get("dlhub") or {}).get("source")
    context["run"] = _run_block(
        services, identity, ref, described.latest_version, described.runnable_by
    )
    can_run = context["run"]["ok"] or described.latest_version is None
    context["access"] = access_block(services, identity, owner, ref, can_run)
    context["version_param"] = version or ""
    context["cite"] = cite_block(services, identity, ref, context.get("shown_version"))
    context["attempt"] = attempt
    context["workers"] = workers_section(services, identity, ref, workers_error)
    return page(request, session, "servable.html", context, status_code=status_code)


def _training_dataset(
    services: Services, identity: Identity, document: dict[str, Any]
) -> dict[str, Any] | None:
    """The training data named by `dlhub.training_data`, with its title when the caller sees it."""
    training = (document.get("dlhub") or {}).get("training_data") or {}
    source_id = training.get("source_id")
    if not source_id and not training.get("doi"):
        return None
    out: dict[str, Any] = {"source_id": source_id, "doi": training.get("doi"), "title": None}
    if source_id:
        try:
            version = services.datasets.get(identity, str(source_id))
        except MatterHubError:
            out["hidden"] = True  # not visible to this caller (or gone): show the id, no link
            return out
        titles = version.dc.get("titles") or [{}]
        out["title"] = titles[0].get("title") or version.source_id
    return out


@router.get("/servables/{owner}/{name}")
def servable(
    owner: str,
    name: str,
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
    version: str | None = None,
) -> Response:
    """A servable: what it does, its types, example, versions, rights, how to call it, try it."""
    return servable_page(request, session, services, owner, name, version=version or None)


def _parse_json(text: str, field: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"not valid JSON: {exc}", field=field) from None


def _attempt(
    services: Services, identity: Identity, ref: str, inputs: str, parameters: str, version: str
) -> dict[str, Any]:
    """Run once for the form; bad JSON or a refused input raise, a servable's failure does not."""
    value = _parse_json(inputs, "inputs")
    outcome = services.runs.run(
        identity, ref, RunRequest(value, _parameters(parameters), version=version or None)
    )
    return result_view(outcome)


def _parameters(text: str) -> dict[str, Any] | None:
    params = _parse_json(text, "parameters") if text.strip() else None
    if params is not None and not isinstance(params, dict):
        raise InvalidInput("parameters must be a JSON object", field="parameters")
    return params


def _attempt_file(
    services: Services,
    identity: Identity,
    ref: str,
    upload: tuple[str, bytes],
    parameters: str,
    version: str,
) -> dict[str, Any]:
    """Run on an uploaded structure file: one run a structure (an XYZ file may hold many)."""
    filename, data = upload
    described = services.servables.describe(identity, ref, version=version or None)
    methods = (described.document.get("servable") or {}).get("methods") or {}
    runs = structure_inputs(data, filename, (methods.get("run") or {}).get("input") or {})
    params = _parameters(parameters)
    views = []
    for run in runs:
        request = RunRequest(run["input"], params, version=version or None)
        views.append(
            {"title": run["title"], **result_view(services.runs.run(identity, ref, request))}
        )
    if len(views) == 1:
        return {**views[0], "inputs": runs[0]["input"]}
    outputs = [
        {"title": v["title"], **({"output": v["value"]} if v["ok"] else {"error": v["error"]})}
        for v in views
    ]
    return {
        "ok": True,
        "rows": views,
        "output": json.dumps(outputs, indent=2),
        "wall_ms": round(sum(v["wall_ms"] for v in views), 3),
        "total_ms": round(sum(v["total_ms"] for v in views), 3),
        "cached": False,
        "task_id": f"{len(views)} runs",
        "version": views[-1]["version"],
        "failed": sum(not v["ok"] for v in views),
    }


async def _read_upload(upload: UploadFile | None) -> tuple[str, bytes] | None:
    """The chosen file (name, bytes) — read one byte past the bound so the bound can refuse it."""
    if upload is None or not upload.filename:
        return None
    return upload.filename, await upload.read(MAX_FILE_BYTES + 1)


@router.post("/servables/{owner}/{name}/try")
async def try_it(
    owner: str,
    name: str,
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
    inputs: Annotated[str, Form()] = "",
    parameters: Annotated[str, Form()] = "",
    version: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    upload: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Run the servable from its page; JSON for the page's script, else the page re-rendered.

    A chosen structure file (`upload`) is the input instead of the JSON text.
    """
    wants_json = "application/json" in request.headers.get("accept", "")
    form = {"inputs": inputs, "parameters": parameters}
    ref = f"{owner}/{name}"
    try:
        require_csrf(session, csrf_token)
        chosen = await _read_upload(upload)
        if chosen is None:
            result = await run_in_threadpool(
                _attempt, services, session.identity, ref, inputs, parameters, version
            )
        else:
            result = await run_in_threadpool(
                _attempt_file, services, session.identity, ref, chosen, parameters, version
            )
            form["inputs"] = result.pop("inputs", inputs)
        status = 200
    except MatterHubError as exc:
        if wants_json:
            body = {"ok": False, "error": exc.detail, "field": exc.field, "status": exc.status}
            return JSONResponse(body, exc.status)
        if isinstance(exc, NotFound | Unauthenticated) or exc.field == "csrf_token":
            raise
        result = {"ok": False, "refused": True, "error": exc.detail, "field": exc.field}
        status = exc.status
    if wants_json:
        return JSONResponse(result)
    attempt = {"form": form, "result": result}
    return await run_in_threadpool(
        servable_page, request, session, services, owner, name,
        version=version or None, attempt=attempt, status_code=status,
    )  # fmt: skip


@router.get("/servables/{owner}/{name}/builds/{build_id}")
def build_log(
    owner: str,
    name: str,
    build_id: str,
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
) -> Response:
    """One build: status, the step reached, its log and the recipes it wrote."""
    ref = f"{owner}/{name}"
    build = services.servables.get_build(session.identity, ref, build_id)
    context = {"b": build, "owner": owner, "name": name, "ref": ref}
    return page(request, session, "build.html", context)


@router.get("/servables/{owner}/{name}/builds/{build_id}/{artefact}")
def build_artefact(
    owner: str,
    name: str,
    build_id: str,
    artefact: str,
    session: CurrentSession,
    services: ServicesDep,
) -> Response:
    """A recipe a successful build wrote (Dockerfile, apptainer.def, requirements.txt), as text."""
    text = services.servables.artefact(session.identity, f"{owner}/{name}", build_id, artefact)
    return PlainTextResponse(text)


@router.get("/me/servables")
def my_servables(request: Request, session: CurrentSession, services: ServicesDep) -> Response:
    """The caller's servables that have a live version, newest first, with their last build."""
    identity = session.identity
    if identity.user_id is None:
        raise Unauthenticated("sign in to see your servables")
    query = SearchQuery(owner=identity.username, limit=100)
    _total, documents = services.servables.search(identity, query)
    rows = []
    for document in documents:
        row = summarize_servable(document)
        try:
            versions = services.servables.describe(identity, row["ref"]).versions
        except MatterHubError:
            versions = []
        row["newest"] = versions[0] if versions else None
        row["version_count"] = len(versions)
        rows.append(row)
    return page(request, session, "my_servables.html", {"rows": rows})


@router.get("/my/servables")
def my_servables_alias() -> Response:
    """The address the issue names; the pages keep `/me/…` as for submissions."""
    return RedirectResponse("/me/servables", status_code=HTTP_308_PERMANENT_REDIRECT)
