"""Turning what people write in access lists into principal URNs, checked against the catalog."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from matterhub.catalog.models import Group, User
from matterhub.core.errors import InvalidInput
from matterhub.core.identity import PUBLIC, group_principal, user_principal

__all__ = ["resolve_principals"]


def resolve_principals(session: Session, values: Iterable[str], *, field: str) -> list[str]:
    """`public`, principal URNs, or the shorthands `user:<name>` / `group:<name>`, deduplicated.

    Raises:
        InvalidInput: an unknown user or group, or something else (`field[i]` names it).
    """
    out: list[str] = []
    for i, value in enumerate(values):
        if value == PUBLIC or value.startswith(("urn:matterhub:user:", "urn:matterhub:group:")):
            out.append(value)
        elif value.startswith("user:"):
            uid = session.scalar(select(User.id).where(User.username == value[5:]))
            if uid is None:
                raise InvalidInput(f"no user named {value[5:]!r}", field=f"{field}[{i}]")
            out.append(user_principal(uid))
        elif value.startswith("group:"):
            gid = session.scalar(select(Group.id).where(Group.name == value[6:]))
            if gid is None:
                raise InvalidInput(f"no group named {value[6:]!r}", field=f"{field}[{i}]")
            out.append(group_principal(gid))
        else:
            raise InvalidInput(
                f"{value!r} is not a principal: use 'public', 'user:<name>', 'group:<name>' "
                "or a urn:matterhub: URN",
                field=f"{field}[{i}]",
            )
    return list(dict.fromkeys(out))
