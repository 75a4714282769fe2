"""Principals and identities: who is calling, and which principals that makes them."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ANONYMOUS",
    "PUBLIC",
    "SYSTEM_IDENTITY",
    "Identity",
    "group_principal",
    "parse_principal",
    "user_principal",
]

PUBLIC = "public"
_USER_PREFIX = "urn:matterhub:user:"
_GROUP_PREFIX = "urn:matterhub:group:"


def user_principal(user_id: str) -> str:
    """The principal URN of a user."""
    return f"{_USER_PREFIX}{user_id}"


def group_principal(group_id: str) -> str:
    """The principal URN of a group."""
    return f"{_GROUP_PREFIX}{group_id}"


def parse_principal(principal: str) -> tuple[str, str | None]:
    """Split a principal into its kind (`public`, `user`, `group`) and id.

    Raises:
        ValueError: the string is not a principal MatterHub knows.
    """
    if principal == PUBLIC:
        return "public", None
    for kind, prefix in (("user", _USER_PREFIX), ("group", _GROUP_PREFIX)):
        if principal.startswith(prefix) and len(principal) > len(prefix):
            return kind, principal[len(prefix) :]
    raise ValueError(
        f"{principal!r} is not a principal: expected 'public', "
        f"'{_USER_PREFIX}<id>' or '{_GROUP_PREFIX}<id>'"
    )


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller of a service method: a user with groups, anonymous, or the system itself."""

    user_id: str | None = None
    username: str | None = None
    group_ids: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
    is_system: bool = False

    @property
    def is_anonymous(self) -> bool:
        """True when no user and not the system: only `public` applies."""
        return self.user_id is None and not self.is_system

    @property
    def principals(self) -> frozenset[str]:
        """Every principal this identity holds, `public` always included."""
        held = {PUBLIC}
        if self.user_id is not None:
            held.add(user_principal(self.user_id))
        held.update(group_principal(g) for g in self.group_ids)
        return frozenset(held)

    @property
    def bypasses_acl(self) -> bool:
        """Admins and the system see everything."""
        return self.is_admin or self.is_system


ANONYMOUS = Identity()
# The CLI and background jobs act as the system: they already passed their own checks.
SYSTEM_IDENTITY = Identity(username="system", is_system=True)
