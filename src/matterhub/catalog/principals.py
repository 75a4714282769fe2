"""Turning what people write in access lists into principal URNs, checked against the catalog.

Fail closed: a value that names nobody known (an unknown user or group, a URN of no account, a
value that is not a principal at all) is refused with the field path of the value, so an access
list never silently means something else than its writer thought.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from matterhub.catalog.models import Group, User
from matterhub.core.errors import InvalidInput
from matterhub.core.identity import PUBLIC, group_principal, parse_principal, user_principal
from matterhub.core.policy import with_owner

__all__ = ["SubmissionAccess", "resolve_principals", "submission_access"]

_FORMS = "use 'public', 'user:<name>', 'group:<name>' or a urn:matterhub: URN"


def resolve_principals(session: Session, values: Iterable[str], *, field: str) -> list[str]:
    """`public`, principal URNs, or the shorthands `user:<name>` / `group:<name>`, deduplicated.

    Raises:
        InvalidInput: an unknown user or group, or something else (`field[i]` names it).
    """
    out: list[str] = []
    for i, value in enumerate(values):
        where = f"{field}[{i}]"
        if not isinstance(value, str):
            raise InvalidInput(f"{value!r} is not a principal: {_FORMS}", field=where)
        if value == PUBLIC:
            out.append(value)
        elif value.startswith("urn:matterhub:"):
            try:
                kind, ident = parse_principal(value)
            except ValueError:
                raise InvalidInput(f"{value!r} is not a principal: {_FORMS}", field=where) from None
            model = User if kind == "user" else Group
            if ident is None or session.get(model, ident) is None:
                raise InvalidInput(f"no {kind} {ident!r} ({value})", field=where)
            out.append(value)
        elif value.startswith("user:"):
            uid = session.scalar(select(User.id).where(User.username == value[5:]))
            if uid is None:
                raise InvalidInput(f"no user named {value[5:]!r}", field=where)
            out.append(user_principal(uid))
        elif value.startswith("group:"):
            gid = session.scalar(select(Group.id).where(Group.name == value[6:]))
            if gid is None:
                raise InvalidInput(f"no group named {value[6:]!r}", field=where)
            out.append(group_principal(gid))
        else:
            raise InvalidInput(f"{value!r} is not a principal: {_FORMS}", field=where)
    return list(dict.fromkeys(out))


def _listed(value: Any, field: str) -> list[str] | None:
    """An access list as given: None when absent; a lone string is a list of one."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise InvalidInput(f"{field} must be a list of principals: {_FORMS}", field=field)
    return value


class SubmissionAccess:
    """The effective access lists of a submission, resolved to URNs.

    `records` covers the version, its files and its records; `dataset` covers the dataset entry
    in the index (MDF's `dataset_acl`), and is never wider than what the submitter asked for.
    """

    def __init__(self, records: Sequence[str], dataset: Sequence[str]) -> None:
        self.records = list(records)
        self.dataset = list(dataset)


def submission_access(
    session: Session,
    *,
    acl: Any,
    dataset_acl: Any,
    owner_id: str,
    default: Sequence[str] = (PUBLIC,),
) -> SubmissionAccess:
    """Resolve `mdf.acl` and `dataset_acl` of a submission before anything is stored.

    - a malformed or unknown entry is refused (InvalidInput naming `mdf.acl[i]`);
    - an empty `mdf.acl` means owner-only, never public;
    - `dataset_acl` alone restricts the records, files and version too (they inherit it);
    - neither given: `default` (MDF's public);
    - the owner is always on both lists unless they are public.
    """
    given = _listed(acl, "mdf.acl")
    given_dataset = _listed(dataset_acl, "dataset_acl") or None  # MDF sends [] for "not set"
    dataset = (
        resolve_principals(session, given_dataset, field="dataset_acl") if given_dataset else None
    )
    if given is not None:
        records = resolve_principals(session, given, field="mdf.acl")
    elif dataset is not None:
        records = list(dataset)
    else:
        records = resolve_principals(session, default, field="mdf.acl")
    records = with_owner(records, owner_id)
    return SubmissionAccess(
        records, with_owner(dataset if dataset is not None else records, owner_id)
    )
