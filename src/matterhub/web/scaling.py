"""The workers section of a servable page (owners and admins) and its form to set the bounds.

`workers_section` gives the servable page what it shows: nothing for callers who may not manage
the servable (the same `manage` check the API makes), else the bounds and each running
version's workers. The form posts to `/servables/<owner>/<name>/scaling`, which stores the
bounds through the scaling service and re-renders the page (a refused value is shown beside the
form with the field it names).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from matterhub.api.deps import ServicesDep
from matterhub.bootstrap import Services
from matterhub.core.errors import InvalidInput, NotFound, PermissionDenied
from matterhub.core.identity import Identity
from matterhub.web.render import PageRoute
from matterhub.web.sessions import CurrentSession, require_csrf

__all__ = ["router", "workers_section"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)
_FIELDS = ("min_replicas", "max_replicas", "target_queue", "target_p50_ms", "target_p99_ms")
_WHOLE = ("min_replicas", "max_replicas")


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _mib(value: int | None) -> str:
    return "–" if value is None else f"{value / 2**20:.1f}"


def workers_section(
    services: Services, identity: Identity, ref: str, error: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The workers and bounds of `ref` for its owners and admins; None for anyone else."""
    try:
        view = services.scaling.workers(identity, ref)
    except (PermissionDenied, NotFound):
        return None
    now = time.time()
    pools = []
    for pool in view["pools"]:
        rows = [
            {
                "id": w["id"],
                "state": w["state"],
                "calls": w["calls"],
                "p50": _ms(w["p50_ms"]),
                "p99": _ms(w["p99_ms"]),
                "mib": _mib(w["memory_bytes"]),
                "pid": w["pid"] or "–",
                "node": w.get("node") or "",
                "up": f"{now - w['started_at']:.0f}" if w.get("started_at") else "–",
            }
            for w in pool["workers"]
        ]
        pools.append({**pool, "p50": _ms(pool["p50_ms"]), "p99": _ms(pool["p99_ms"]), "rows": rows})
    bounds = view["bounds"] or services.runs.limits.scaling.bounds().public()
    form = {k: "" if bounds.get(k) is None else bounds[k] for k in _FIELDS}
    if error:
        form.update(error.get("form", {}))
    return {
        "executor": view["executor"],
        "cap": view["max_replicas_cap"],
        "set": view["scaling"],
        "bounds": bounds,
        "pools": pools,
        "form": form,
        "error": error,
    }


def _values(form: dict[str, str]) -> dict[str, Any]:
    """The form's fields as bounds (a blank latency goal clears it; blank counts are left out)."""
    values: dict[str, Any] = {}
    for name, text in form.items():
        text = text.strip()
        if not text:
            if name.endswith("_ms"):
                values[name] = None
            continue
        try:
            values[name] = int(text) if name in _WHOLE else float(text)
        except ValueError:
            kind = "a whole number" if name in _WHOLE else "a number"
            raise InvalidInput(f"{name} must be {kind}, not {text[:40]!r}", field=name) from None
    return values


@router.post("/servables/{owner}/{name}/scaling")
async def set_bounds(
    owner: str,
    name: str,
    request: Request,
    session: CurrentSession,
    services: ServicesDep,
    min_replicas: Annotated[str, Form(max_length=20)] = "",
    max_replicas: Annotated[str, Form(max_length=20)] = "",
    target_queue: Annotated[str, Form(max_length=20)] = "",
    target_p50_ms: Annotated[str, Form(max_length=20)] = "",
    target_p99_ms: Annotated[str, Form(max_length=20)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Store new bounds from the page's form, then show the page (again, with a refusal)."""
    from matterhub.web.servables import servable_page  # the page imports this module

    ref = f"{owner}/{name}"
    form = {
        "min_replicas": min_replicas,
        "max_replicas": max_replicas,
        "target_queue": target_queue,
        "target_p50_ms": target_p50_ms,
        "target_p99_ms": target_p99_ms,
    }
    require_csrf(session, csrf_token)
    try:
        values = _values(form)
        await run_in_threadpool(services.scaling.scale, session.identity, ref, values)
    except InvalidInput as exc:
        error = {"detail": exc.detail, "field": exc.field, "form": form}
        return await run_in_threadpool(
            servable_page, request, session, services, owner, name,
            workers_error=error, status_code=exc.status,
        )  # fmt: skip
    return RedirectResponse(f"/servables/{ref}#workers-h", status_code=303)
