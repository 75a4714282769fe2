"""Map every error to a JSON body `{error, detail, field?}`; no stack trace ever reaches a user."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from matterhub.core.errors import MatterHubError

__all__ = ["ERROR_RESPONSES", "ErrorPublic", "install_error_handlers", "loc_to_field"]

log = logging.getLogger("matterhub.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
}


def loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    """`("body", "dc", "titles", 0, "title")` → `dc.titles[0].title` (the request part dropped)."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or str(loc[0] if loc else "body")


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, headers=headers)


async def _matterhub_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MatterHubError)
    if exc.status >= 500:
        log.error("backend error: %s", exc.detail, exc_info=exc)
    headers = {"WWW-Authenticate": 'Bearer realm="matterhub"'} if exc.status == 401 else None
    return _json(exc.status, exc.to_dict(), headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": loc_to_field(err.get("loc", ())), "detail": err.get("msg", "invalid")}
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"field": "body", "detail": "invalid request"}
    body = {
        "error": "invalid_input",
        "detail": f"{first['field']}: {first['detail']}",
        "field": first["field"],
        "errors": errors,
    }
    return _json(422, body)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return _json(exc.status_code, {"error": code, "detail": detail}, getattr(exc, "headers", None))


async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
    log.error("catalog database error", exc_info=exc)
    return _json(
        503, {"error": "catalog_unavailable", "detail": "the catalog database is unavailable"}
    )


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return _json(
        500, {"error": "internal_error", "detail": "internal server error; see the server log"}
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(MatterHubError, _matterhub_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(Exception, _unexpected)


class ErrorPublic(BaseModel):
    """The body of every error response."""

    error: str = Field(description="Machine-readable error code, e.g. not_found, invalid_input.")
    detail: str = Field(description="What went wrong, for a person.")
    field: str | None = Field(default=None, description="Dotted path of the offending input.")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorPublic} for status in (401, 403, 404, 409, 413, 422, 503)
}
