"""The JSON Schemas MatterHub validates against, served for clients and humans (`/schemas/`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from matterhub.api.errors import ERROR_RESPONSES
from matterhub.core.connect import SubmissionRequest
from matterhub.core.errors import NotFound
from matterhub.core.schemas import SCHEMAS, schema

router = APIRouter(prefix="/schemas", tags=["schemas"], responses=ERROR_RESPONSES)


@router.get("/", summary="The schemas")
@router.get("", include_in_schema=False)
def list_schemas() -> dict[str, Any]:
    """Names of the schemas: MDF record and dataset, and the Connect submission."""
    return {"schemas": [*SCHEMAS, "submission"]}


@router.get("/{name}", summary="One schema")
def get_schema(name: str) -> dict[str, Any]:
    """`record`, `dataset` or `submission` (a `.json` suffix is accepted)."""
    key = name.removesuffix(".json")
    if key == "submission":
        return SubmissionRequest.model_json_schema()
    if key not in SCHEMAS:
        raise NotFound(
            f"no schema {name!r}; try one of {', '.join([*SCHEMAS, 'submission'])}", field="name"
        )
    return schema(key)
