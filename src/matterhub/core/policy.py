"""Access rules: each gives a per-object check and the matching search filter.

An object is visible to a caller when its `visible_to` list shares a principal with the
caller's, runnable when `runnable_by` does, and manageable by its owner. Admins and the
system bypass all of them. Keeping one rule per action here means REST, CLI, web and
background jobs share the same decision, and search filters can never drift from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from matterhub.core.errors import NotFound, PermissionDenied
from matterhub.core.identity import PUBLIC, Identity, user_principal

__all__ = ["Action", "Policy", "PrincipalFilter", "Protected"]

Action = Literal["read", "run", "manage"]


@runtime_checkable
class Protected(Protocol):
    """Anything carrying an access list (datasets, records, servables)."""

    @property
    def visible_to(self) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class PrincipalFilter:
    """A search filter: keep entries whose access list meets `principals`; None means all."""

    principals: frozenset[str] | None

    @property
    def unrestricted(self) -> bool:
        """True when nothing is filtered out (admins, the system)."""
        return self.principals is None

    def matches(self, access_list: Iterable[str]) -> bool:
        """Whether an entry with this access list passes the filter."""
        return self.principals is None or not self.principals.isdisjoint(access_list)


class Policy:
    """Decides what an identity may do; the only place access rules live."""

    def access_list(self, obj: Protected, action: Action) -> Sequence[str]:
        """The principals that may do `action` on `obj`."""
        if action == "run":
            return tuple(getattr(obj, "runnable_by", None) or ())
        if action == "manage":
            owner = getattr(obj, "owner_id", None)
            managers = tuple(getattr(obj, "managed_by", None) or ())
            return (*managers, user_principal(owner)) if owner else managers
        return tuple(obj.visible_to)

    def allows(self, identity: Identity, obj: Protected, action: Action = "read") -> bool:
        """Whether `identity` may do `action` on `obj`."""
        if identity.bypasses_acl:
            return True
        if action != "read" and not self.allows(identity, obj, "read"):
            return False
        return self.search_filter(identity).matches(self.access_list(obj, action))

    def require(
        self, identity: Identity, obj: Protected, action: Action = "read", *, what: str = "object"
    ) -> None:
        """Raise unless allowed; an unseen object is reported as missing, not forbidden.

        Raises:
            NotFound: the caller may not even see the object.
            PermissionDenied: the caller sees it but may not do `action`.
        """
        if self.allows(identity, obj, action):
            return
        if action != "read" and self.allows(identity, obj, "read"):
            raise PermissionDenied(f"you may not {action} this {what}")
        raise NotFound(f"{what} not found")

    def search_filter(self, identity: Identity) -> PrincipalFilter:
        """The filter every listing and search must apply for `identity`."""
        if identity.bypasses_acl:
            return PrincipalFilter(None)
        return PrincipalFilter(identity.principals | {PUBLIC})

    def require_admin(self, identity: Identity) -> None:
        """Raise PermissionDenied unless the caller is an admin or the system."""
        if not identity.bypasses_acl:
            raise PermissionDenied("this needs an administrator")
