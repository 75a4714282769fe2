"""Running servables over HTTP: DLHub's run route, async tasks, batches, results, provenance.

`POST /servables/<owner>/<name>/run` answers as DLHub's service did (200 with the output itself,
`[output, metadata]` with `debug`, or 202 with `task_id`); `/api/servables/<owner>/<name>/run`
answers with an envelope `{task_id, status, output, cached, metadata?}`. A servable that raises
gives 424 `{error: "servable_failed", exception: {type, message}, task_id}`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from matterhub.api.deps import CurrentIdentity, ServicesDep, get_services
from matterhub.api.errors import ERROR_RESPONSES
from matterhub.api.routes.run_bodies import (
    JSON,
    MSGPACK,
    NPY,
    UnsupportedMedia,
    as_array,
    encode,
    media_of,
    read_body,
    validation_error,
)
from matterhub.core.errors import InvalidInput, Unauthenticated
from matterhub.core.identity import ANONYMOUS
from matterhub.hub.runtime import RunOutcome, RunRequest

__all__ = ["router"]

router = APIRouter(tags=["runs"], responses=ERROR_RESPONSES)
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class RunBody(BaseModel):
    """DLHub's run request: `inputs` (or legacy `data`), parameters over the declared defaults."""

    model_config = ConfigDict(populate_by_name=True)

    inputs: Any = Field(default=None, description="The input, shaped as the method declares.")
    data: Any = Field(default=None, description="DLHub's legacy name for `inputs`.")
    parameters: dict[str, Any] | None = Field(
        default=None, description="Keyword arguments, merged over the declared defaults."
    )
    asynchronous: bool = Field(default=False, description="Return 202 with a task id at once.")
    debug: bool = Field(default=False, description="Also return stdout, stderr and wall time.")
    check: bool = Field(
        default=True,
        alias="validate",
        description="Check the input against the declared type first (422 naming the path).",
    )
    version: str | None = Field(default=None, description="A version; default the latest.")

    def request(self) -> RunRequest:
        """The service's request."""
        inputs = self.inputs if self.inputs is not None else self.data
        return RunRequest(inputs, self.parameters, self.debug, self.check, self.version)


class BatchBody(BaseModel):
    """Many inputs of one servable, run asynchronously as one batch."""

    model_config = ConfigDict(populate_by_name=True)

    inputs: list[Any] = Field(description="One input per task.", min_length=1)
    parameters: dict[str, Any] | None = None
    debug: bool = False
    check: bool = Field(default=True, alias="validate")
    version: str | None = None


def _json(body: Any, code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, option=_OPTIONS), code, headers, media_type="application/json"
    )


def _failed(outcome: RunOutcome) -> Response:
    error = outcome.error or {}
    body = {
        "error": "servable_failed",
        "detail": f"{error.get('type')}: {error.get('message')}",
        "task_id": outcome.task_id,
        "exception": {"type": error.get("type"), "message": error.get("message")},
    }
    if outcome.stdout or outcome.stderr:
        body["metadata"] = outcome.metadata()
    return _json(body, 424, {"X-Task-Id": outcome.task_id})


def _run(
    services: Any,
    identity: Any,
    owner: str,
    name: str,
    body: RunBody,
    *,
    dlhub: bool,
    accept: str = JSON,
    uploads: dict[str, Path] | None = None,
) -> Response:
    ref = f"{owner}/{name}"
    request = body.request()
    request.uploads = uploads or {}
    if body.asynchronous:
        queued = services.tasks.submit(identity, ref, [request])
        task_id = queued["task_ids"][0]
        return _json({"task_id": task_id, "status": "received"}, 202, {"X-Task-Id": task_id})
    return _answer(
        services,
        identity,
        ref,
        body,
        services.runs.run(identity, ref, request),
        dlhub=dlhub,
        accept=accept,
    )


def _answer(
    services: Any,
    identity: Any,
    ref: str,
    body: RunBody,
    outcome: RunOutcome,
    *,
    dlhub: bool,
    accept: str,
) -> Response:
    """The response to a finished synchronous run, in the form the route and Accept ask for."""
    if not outcome.ok:
        return _failed(outcome)
    total_ms = outcome.provenance.get("timings", {}).get("total_s", 0.0) * 1000
    headers = {"X-Task-Id": outcome.task_id, "Server-Timing": f"run;dur={total_ms:.3f}"}
    output = outcome.output
    if accept != JSON and ("msgpack" in accept or NPY in accept):
        target = services.runs.resolve(identity, ref, body.version)
        output = as_array(output, target.method("run").get("output"))
    if dlhub:
        return encode([output, outcome.metadata()] if body.debug else output, accept, 200, headers)
    if NPY in accept:
        return encode(output, accept, 200, headers)
    envelope: dict[str, Any] = {
        "task_id": outcome.task_id,
        "status": "success",
        "output": output,
        "cached": outcome.cached,
    }
    if body.debug:
        envelope["metadata"] = outcome.metadata()
    return encode(envelope, accept, 200, headers)


_RUN_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "The output (sync)."},
    202: {"description": "Queued: `{task_id}` (asynchronous)."},
    424: {"description": "The servable raised: `{exception: {type, message}, task_id}`."},
}


_INLINE_BYTES = 64 * 1024  # a JSON body up to this size may be validated on the event loop


def _bearer_token(request: Request) -> str | None:
    """The bearer token, None without an Authorization header (as HTTPBearer reads it)."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, token = get_authorization_scheme_param(header)
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token


def _inline(request: Request, body: RunBody, accept: str, uploads: dict[str, Path]) -> bool:
    """Whether a run may be answered on the event loop: sync, small JSON in and out."""
    size = request.headers.get("content-length")
    return (
        not body.asynchronous
        and not uploads
        and accept in (JSON, "*/*")
        and media_of(request.headers.get("content-type")) == JSON
        and size is not None
        and size.isdigit()
        and int(size) <= _INLINE_BYTES
    )


async def _run_hot(request: Request, owner: str, name: str, *, dlhub: bool) -> Response:
    """The run routes' hot path: token, validation and the worker's reply on the event loop.

    The body is read here by its Content-Type (run_bodies.py): JSON, msgpack, .npy, multipart.
    A small synchronous JSON run whose caller's identity and target are kept (the accounts'
    and the run service's short-lived caches) is validated and run without a thread hop: the
    call waits in the servable's lane and the reply is awaited on the worker's pipe
    (hub/runtime/lanes.py). Anything else — the first run of a caller or after a change,
    uploads, big or binary bodies, async runs — takes one worker-thread hop, as before.
    """
    services = get_services(request)
    token = _bearer_token(request)
    files = services.runs.files
    data, bodies = await read_body(request, files.root / ".uploads" if files else None)
    try:
        try:
            body = RunBody.model_validate(data)
        except ValidationError as exc:
            raise validation_error(exc) from None
        accept = request.headers.get("accept") or JSON
        if _inline(request, body, accept, bodies.uploads):
            identity = services.accounts.kept_identity(token) if token else ANONYMOUS
            if identity is not None:
                ref = f"{owner}/{name}"
                outcome = await services.runs.run_async(identity, ref, body.request())
                return _answer(services, identity, ref, body, outcome, dlhub=dlhub, accept=JSON)

        def work() -> Response:
            identity = services.accounts.authenticate(token) if token else ANONYMOUS
            return _run(
                services,
                identity,
                owner,
                name,
                body,
                dlhub=dlhub,
                accept=accept,
                uploads=bodies.uploads,
            )

        return await run_in_threadpool(work)
    finally:
        bodies.close()


_BODY_DOC: dict[str, Any] = {
    # The token and the path are read from the request, not by dependencies (each costs
    # microseconds on every run); documented here.
    "security": [{"HTTPBearer": []}, {}],
    "parameters": [
        {"name": key, "in": "path", "required": True, "schema": {"type": "string"}}
        for key in ("owner", "name")
    ],
    "requestBody": {
        "required": True,
        "content": {
            JSON: {"schema": RunBody.model_json_schema(by_alias=True)},
            MSGPACK: {"schema": {"description": "The same object, as msgpack."}},
            NPY: {"schema": {"description": "One .npy array: the input (options in the query)."}},
            "multipart/form-data": {
                "schema": {"description": "A `request` part (the JSON object) and file parts."}
            },
        },
    },
}


@router.post(
    "/servables/{owner}/{name}/run",
    summary="Run a servable (DLHub's route)",
    responses=_RUN_DOC,
    openapi_extra=_BODY_DOC,
)
async def run_dlhub(request: Request) -> Response:
    """Run; 200 with the output itself (or `[output, metadata]` with debug), or 202."""
    path = request.path_params
    return await _run_hot(request, path["owner"], path["name"], dlhub=True)


@router.post(
    "/api/servables/{owner}/{name}/run",
    summary="Run a servable",
    responses=_RUN_DOC,
    openapi_extra=_BODY_DOC,
)
async def run(request: Request) -> Response:
    """Run; 200 with `{task_id, status, output, cached, metadata?}`, or 202 with `task_id`."""
    path = request.path_params
    return await _run_hot(request, path["owner"], path["name"], dlhub=False)


_BATCH_DOC: dict[str, Any] = {
    "security": [{"HTTPBearer": []}, {}],
    "requestBody": {
        "required": True,
        "content": {
            JSON: {"schema": BatchBody.model_json_schema(by_alias=True)},
            MSGPACK: {
                "schema": {
                    "description": "The same object as msgpack; ndarray inputs in the typed form "
                    "with raw bytes (`{__ndarray__: {dtype, shape, data}}`)."
                }
            },
        },
    },
}


@router.post(
    "/api/servables/{owner}/{name}/batch",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue one task per input",
    openapi_extra=_BATCH_DOC,
)
async def submit_batch(
    owner: str, name: str, request: Request, identity: CurrentIdentity, services: ServicesDep
) -> Response:
    """Record every task (validated first), then queue them: 202 `{batch_id, task_ids}`.

    The body is JSON or msgpack (`Content-Type`); arrays may come in the typed form, and are
    stored and handed to the servable's worker as their bytes.
    """
    media = media_of(request.headers.get("content-type"))
    if media not in (JSON, MSGPACK):
        raise UnsupportedMedia(
            f"cannot read {media} batch bodies: send application/json or application/msgpack"
        )
    data, bodies = await read_body(request, None)
    bodies.close()
    try:
        body = BatchBody.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None
    requests = [
        RunRequest(x, body.parameters, body.debug, body.check, body.version) for x in body.inputs
    ]
    queued = await run_in_threadpool(
        services.tasks.submit, identity, f"{owner}/{name}", requests, batch=True
    )
    return _json(queued, 202)


TaskId = Annotated[str, Field(max_length=64)]


@router.get("/api/tasks/{task_id}", summary="A task's status (or a batch's)")
def task_status(task_id: TaskId, identity: CurrentIdentity, services: ServicesDep) -> Response:
    """received, running, success (with `result`) or failed (with `exception`)."""
    return _json(services.tasks.status(identity, task_id))


@router.get("/api/tasks/{task_id}/result", summary="A task's output")
def task_result(task_id: TaskId, identity: CurrentIdentity, services: ServicesDep) -> Response:
    """200 with the output; 202 with the status while pending; 424 if it failed."""
    found = services.tasks.status(identity, task_id)
    if found["status"] == "success":
        return _json(found.get("result"), 200, {"X-Task-Id": task_id})
    if found["status"] == "failed":
        exc = found.get("exception") or {}
        return _json(
            {
                "error": "servable_failed",
                "detail": f"{exc.get('type')}: {exc.get('message')}",
                "task_id": task_id,
                "exception": exc,
            },
            424,
        )
    return _json(found, 202)


@router.get("/api/tasks/{task_id}/provenance", summary="What produced a task's result")
def task_provenance(task_id: TaskId, identity: CurrentIdentity, services: ServicesDep) -> Response:
    """Servable version, environment hash, input hash, parameters, output hash, timings, caller."""
    return _json(services.tasks.provenance(identity, task_id))


@router.get("/api/batches/{batch_id}", summary="A batch's progress and results")
async def batch_status(
    batch_id: TaskId,
    request: Request,
    identity: CurrentIdentity,
    services: ServicesDep,
    wait: Annotated[
        float,
        Query(
            description=(
                "Seconds to wait for the batch to finish before answering (0 to 30); the "
                "answer comes as soon as it is done."
            ),
        ),
    ] = 0.0,
) -> Response:
    """Counts by status, `done`, and each task's status and result (`wait`: long-poll)."""
    if not batch_id:
        raise InvalidInput("batch_id is empty", field="batch_id")
    if wait == 0:
        found = await run_in_threadpool(services.tasks.batch_status, identity, batch_id)
    else:
        found = await services.tasks.wait_batch(identity, batch_id, wait)
    accept = request.headers.get("accept") or JSON
    if "msgpack" in accept.lower():  # results' arrays as raw bytes, not lists of numbers
        return encode(found, accept)
    return _json(found)
