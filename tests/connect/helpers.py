"""Helpers shared by the Connect tests: a real CIF, users, submissions, searches."""

from __future__ import annotations

import contextlib
import io
from typing import Any

from matterhub.bootstrap import Services
from matterhub.core.connect import SubmissionRequest
from matterhub.core.errors import Conflict
from matterhub.core.identity import ANONYMOUS, SYSTEM_IDENTITY, Identity
from matterhub.core.search import GSearchRequest


def _iron_cif() -> str:
    """A real bcc iron CIF, written by ASE."""
    from ase.build import bulk
    from ase.io import write

    buffer = io.BytesIO()
    write(buffer, bulk("Fe", "bcc", a=2.87, cubic=True), format="cif")
    return buffer.getvalue().decode()


CIF = _iron_cif()


def dc(title: str = "Iron bcc structures for testing connect") -> dict[str, Any]:
    return {"titles": [{"title": title}], "creators": [{"creatorName": "Tester, Tina"}]}


def user(services: Services, name: str, *, curator: bool = False) -> Identity:
    services.accounts.create_user(SYSTEM_IDENTITY, name)
    if curator:
        with contextlib.suppress(Conflict):
            services.accounts.create_group(SYSTEM_IDENTITY, "curators")
        services.accounts.add_member(SYSTEM_IDENTITY, "curators", name)
    return services.accounts.authenticate(
        services.accounts.create_token(SYSTEM_IDENTITY, name).token
    )


def submit(target: Services, who: Identity, **fields: Any) -> str:
    request = SubmissionRequest.model_validate(fields)
    answer = target.connect.submit(who, request)
    assert answer["success"] is True and answer["error"] is None
    return str(answer["source_id"])


def codes(status: dict[str, Any]) -> str:
    return str(status["status"]["status_code"])


def search(services: Services, q: str) -> Any:
    return services.search.search(ANONYMOUS, "mdf", GSearchRequest(q=q, advanced=True, limit=50))


def data_paths(services: Services, source_id: str) -> set[str]:
    """The version's files as submitted, without the previews extraction derived from them."""
    manifest = services.datasets.manifest(ANONYMOUS, source_id)
    return {e.path for e in manifest if not e.path.startswith(".derived/")}
