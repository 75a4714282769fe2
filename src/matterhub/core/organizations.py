"""Organisations: rules a submission accepts by naming one in `mdf.organizations` (as in MDF)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from matterhub.core.errors import InvalidInput

__all__ = ["Organization", "apply_organizations"]


class Organization(BaseModel):
    """One organisation's rules."""

    name: str
    required_fields: list[str] = Field(
        default_factory=list, description="Dotted paths, e.g. dc.descriptions"
    )
    curation: bool = False
    acl: list[str] = Field(default_factory=list, description="Default mdf.acl when none is given.")


def _has(document: Mapping[str, Any], path: str) -> bool:
    value: Any = document
    for part in path.split("."):
        if isinstance(value, list):
            value = value[0] if value else None
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    return value not in (None, "", [], {})


def apply_organizations(
    submission: dict[str, Any], organizations: Sequence[Organization]
) -> dict[str, Any]:
    """The submission with its organisations' rules applied (curation, default ACL).

    Raises:
        InvalidInput: an unknown organisation, or a field one requires is missing.
    """
    named = submission.get("mdf", {}).get("organizations") or []
    known = {o.name.lower(): o for o in organizations}
    out = dict(submission)
    for name in named:
        org = known.get(str(name).lower())
        if org is None:
            raise InvalidInput(f"unknown organization {name!r}", field="mdf.organizations")
        for path in org.required_fields:
            if not _has(out, path):
                raise InvalidInput(f"{org.name} requires {path}", field=path)
        if org.curation:
            out["curation"] = True
        if org.acl and not out.get("mdf", {}).get("acl"):
            out["mdf"] = {**out.get("mdf", {}), "acl": list(org.acl)}
    return out
