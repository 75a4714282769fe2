"""The run routes are tried first (speed); that must never change which route answers."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute

from matterhub.api.routes import runs


def flatten(routes: list[BaseRoute]) -> list[Any]:
    """Every route with a path, through included routers."""
    found: list[Any] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            found += flatten(inner.routes)
        elif getattr(route, "path_regex", None) is not None:
            found.append(route)
    return found


def sample(path: str) -> str:
    """A concrete URL path for a route's template."""
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_run_routes_come_first_and_overlap_no_other_route(app: FastAPI) -> None:
    ordered = flatten(app.router.routes)
    own = flatten(runs.router.routes)
    docs = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    first = [r for r in ordered if r.path not in docs][: len(own)]
    assert [r.path for r in first] == [r.path for r in own]
    others = [r for r in ordered if r.path not in {o.path for o in own}]
    assert len(others) > 50
    for mine in own:
        for other in others:
            shared = set(mine.methods or ()) & set(getattr(other, "methods", None) or {"GET"})
            if not shared:
                continue
            assert not mine.path_regex.match(sample(other.path)), (mine.path, other.path)
            assert not other.path_regex.match(sample(mine.path)), (mine.path, other.path)
