"""OPTIMADE v1.2 at `/optimade/v1/…` and unversioned `/optimade/…` (docs/interop.md).

JSON:API documents with OPTIMADE's `meta`; every error is an OPTIMADE error document. Query
parameters are read here, by hand, so that a bad one gets OPTIMADE's error format and not
FastAPI's validation error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from matterhub import __version__
from matterhub.api.deps import CurrentIdentity, ServicesDep
from matterhub.core.errors import MatterHubError, NotFound, PermissionDenied, Unauthenticated
from matterhub.interop.optimade import EntryQuery, FilterError
from matterhub.interop.optimade.fields import PREFIX
from matterhub.interop.optimade.service import ENTRY_TYPES, MAX_PAGE_LIMIT

router = APIRouter(tags=["optimade"])

API_VERSION = "1.2.0"
MEDIA_TYPE = "application/vnd.api+json"
_SCHEMA = "https://schemas.optimade.org/openapi/v1.2/optimade.json"
_FIELD_NAME = re.compile(r"^[a-z_][a-z_0-9]{0,80}$")
_TITLES = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    500: "Internal Server Error",
    501: "Not Implemented",
    553: "Version Not Supported",
}
_PREFIXES = ("/optimade/v1", "/optimade")


class _Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _meta(request: Request, **extra: Any) -> dict[str, Any]:
    warnings = extra.pop("warnings", None) or []
    meta: dict[str, Any] = {
        "query": {
            "representation": request.url.path + (f"?{q}" if (q := request.url.query) else "")
        },
        "api_version": API_VERSION,
        "more_data_available": False,
        "time_stamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "schema": _SCHEMA,
        "provider": {
            "name": "MatterHub",
            "description": "A self-hostable data and model hub for materials science",
            "prefix": PREFIX,
            "homepage": _base(request) + "/",
        },
        "implementation": {"name": "MatterHub", "version": __version__},
        **extra,
    }
    if warnings:
        meta["warnings"] = [
            {"type": "warning", "title": "Filter", "detail": text} for text in warnings
        ]
    return meta


def _answer(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def _error(request: Request, status: int, detail: str) -> JSONResponse:
    title = _TITLES.get(status, "Error")
    error = {"status": str(status), "title": title, "detail": detail}
    return _answer({"errors": [error], "meta": _meta(request)}, status)


def _guarded(request: Request, make: Callable[[], Response]) -> Response:
    """Run a handler; every refusal becomes an OPTIMADE error document."""
    try:
        return make()
    except _Refused as exc:
        return _error(request, exc.status, exc.detail)
    except FilterError as exc:
        return _error(request, exc.status, exc.detail)
    except (NotFound, PermissionDenied, Unauthenticated) as exc:
        return _error(request, 404, exc.detail)
    except MatterHubError as exc:
        return _error(request, 400 if 400 <= exc.status < 500 else 500, exc.detail)


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _Refused(400, f"{name} must be a whole number, not {raw[:40]!r}") from None
    if value < 0:
        raise _Refused(400, f"{name} may not be negative")
    return value


def _common(request: Request) -> frozenset[str] | None:
    fmt = request.query_params.get("response_format") or "json"
    if fmt != "json":
        raise _Refused(400, f"response_format {fmt[:40]!r} is not served; only json is")
    raw = request.query_params.get("response_fields")
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if len(names) > 100 or not all(_FIELD_NAME.match(n) for n in names):
        raise _Refused(400, "response_fields is a comma-separated list of property names")
    return frozenset(n for n in names if n not in ("id", "type"))


def _include(request: Request) -> frozenset[str]:
    raw = request.query_params.get("include")
    if raw is None:
        return frozenset({"references"})  # OPTIMADE's default
    names = frozenset(n.strip() for n in raw.split(",") if n.strip())
    if not names <= {"references"}:
        raise _Refused(400, "include may name only references")
    return names


def _query(request: Request) -> EntryQuery:
    limit = _int(request, "page_limit", 20)
    if limit > MAX_PAGE_LIMIT:
        raise _Refused(403, f"page_limit may not exceed {MAX_PAGE_LIMIT}")
    offset = _int(request, "page_offset", 0)
    number = _int(request, "page_number", 0)
    if number:
        offset = (number - 1) * limit
    return EntryQuery(
        filter=request.query_params.get("filter") or "",
        page_limit=limit,
        page_offset=offset,
        sort=request.query_params.get("sort") or "",
        response_fields=_common(request),
        include=_include(request),
    )


def _next_link(request: Request, query: EntryQuery) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in _PAGING]
    params += [("page_offset", str(query.page_offset + query.page_limit))]
    params += [("page_limit", str(query.page_limit))]
    return f"{_base(request)}{request.url.path}?{urlencode(params)}"


_PAGING = ("page_offset", "page_limit", "page_number")


FilterParam = Annotated[
    str | None, Query(alias="filter", description="An OPTIMADE filter, e.g. `nelements=2`")
]
PageLimitParam = Annotated[
    str | None, Query(description=f"Entries per page (default 20, at most {MAX_PAGE_LIMIT})")
]
PageOffsetParam = Annotated[str | None, Query(description="Entries to skip")]
PageNumberParam = Annotated[str | None, Query(description="1-based page number")]
SortParam = Annotated[str | None, Query(description="e.g. `-nsites,nelements`")]
FieldsParam = Annotated[str | None, Query(description="Comma-separated properties to return")]
FormatParam = Annotated[str | None, Query(description="Only `json`")]
IncludeParam = Annotated[str | None, Query(description="`references` (the default) or empty")]

# handlers ------------------------------------------------------------------------------------


def _info(request: Request) -> Response:
    base = _base(request)
    data = {
        "type": "info",
        "id": "/",
        "attributes": {
            "api_version": API_VERSION,
            "available_api_versions": [{"url": f"{base}/optimade/v1/", "version": API_VERSION}],
            "formats": ["json"],
            "entry_types_by_format": {"json": list(ENTRY_TYPES)},
            "available_endpoints": ["info", "links", *ENTRY_TYPES],
            "is_index": False,
        },
    }
    return _answer({"data": data, "meta": _meta(request)})


def _entry_info(request: Request, kind: str) -> Response:
    fields = ENTRY_TYPES[kind]
    properties = {}
    for name, item in fields.items():
        prop: dict[str, Any] = {
            "description": item.description,
            "type": item.type,
            "sortable": item.sortable,
        }
        if item.unit:
            prop["unit"] = item.unit
        properties[name] = prop
    data = {
        "id": kind,
        "type": "info",
        "description": f"MatterHub's {kind}",
        "properties": properties,
        "formats": ["json"],
        "output_fields_by_format": {"json": list(fields)},
    }
    return _answer({"data": data, "meta": _meta(request)})


def _listing(request: Request, services: Any, identity: Any, kind: str) -> Response:
    query = _query(request)
    page = services.optimade.search(identity, kind, query)
    links = {"next": _next_link(request, query) if page.more else None}
    meta = _meta(
        request,
        more_data_available=page.more,
        data_returned=page.returned,
        data_available=page.available,
        warnings=page.warnings,
    )
    body = {"data": page.data, "links": links, "meta": meta}
    if page.included:
        body["included"] = page.included
    return _answer(body)


def _single(request: Request, services: Any, identity: Any, kind: str, entry_id: str) -> Response:
    fields = _common(request)
    found = services.optimade.get(identity, kind, entry_id, fields, _include(request))
    entry, available, included = found
    if entry is None:
        raise _Refused(404, f"no {kind} entry {entry_id[:100]!r}")
    meta = _meta(request, data_returned=1, data_available=available)
    body = {"data": entry, "meta": meta}
    if included:
        body["included"] = included
    return _answer(body)


def _add(path: str, endpoint: Callable[..., Response], summary: str) -> None:
    router.add_api_route(path, endpoint, methods=["GET"], summary=summary)


def _entry_routes(kind: str) -> tuple[Callable[..., Response], Callable[..., Response]]:
    """The listing and single-entry endpoints of one entry type (`kind` bound here, so it is
    no parameter of the request)."""

    def listing(
        request: Request,
        identity: CurrentIdentity,
        services: ServicesDep,
        filter_: FilterParam = None,
        page_limit: PageLimitParam = None,
        page_offset: PageOffsetParam = None,
        page_number: PageNumberParam = None,
        sort: SortParam = None,
        response_fields: FieldsParam = None,
        response_format: FormatParam = None,
        include: IncludeParam = None,
    ) -> Response:
        # The parameters are declared for the API document; they are read, and refused in
        # OPTIMADE's error format, from the request itself.
        return _guarded(request, lambda: _listing(request, services, identity, kind))

    def single(
        request: Request,
        entry_id: str,
        identity: CurrentIdentity,
        services: ServicesDep,
        response_fields: FieldsParam = None,
        response_format: FormatParam = None,
        include: IncludeParam = None,
    ) -> Response:
        return _guarded(request, lambda: _single(request, services, identity, kind, entry_id))

    return listing, single


def _register(prefix: str) -> None:
    label = "versioned" if prefix.endswith("/v1") else "unversioned"

    def info(request: Request) -> Response:
        return _guarded(request, lambda: _info(request))

    def entry_info(request: Request) -> Response:
        kind = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        return _guarded(request, lambda: _entry_info(request, kind))

    def links(request: Request) -> Response:
        return _guarded(
            request,
            lambda: _answer(
                {"data": [], "meta": _meta(request, data_returned=0, data_available=0)}
            ),
        )

    _add(f"{prefix}/info", info, f"OPTIMADE: the base info ({label})")
    _add(f"{prefix}/links", links, f"OPTIMADE: links to other databases ({label})")
    for kind in ENTRY_TYPES:
        listing, single = _entry_routes(kind)
        _add(f"{prefix}/info/{kind}", entry_info, f"OPTIMADE: properties of {kind} ({label})")
        _add(f"{prefix}/{kind}", listing, f"OPTIMADE: {kind}, filtered and paged ({label})")
        _add(f"{prefix}/{kind}/{{entry_id}}", single, f"OPTIMADE: one of the {kind} ({label})")


for _prefix in _PREFIXES:
    _register(_prefix)


@router.get("/optimade/versions", summary="OPTIMADE: the major versions served")
def versions() -> Response:
    """`text/csv` with a header line, as OPTIMADE asks."""
    return PlainTextResponse("version\n1\n", media_type="text/csv; header=present")


@router.get("/optimade/{version}/{rest:path}", summary="OPTIMADE: anything else")
def other(request: Request, version: str, rest: str) -> Response:
    """553 for a major version not served (`/optimade/v2/…`), 404 for any other path."""
    if re.fullmatch(r"v\d+(\.\d+){0,2}", version) and not re.fullmatch(r"v1(\.[0-2])?", version):
        return _error(request, 553, f"version {version} is not served; see /optimade/versions")
    return _error(request, 404, f"no OPTIMADE endpoint {request.url.path[:200]!r}")
