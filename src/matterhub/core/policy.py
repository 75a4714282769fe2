"""Access rules: one policy per resource type, each rule compiled three ways.

Shaped after invenio-records-permissions. A resource policy lists, per action, *generators*
(`Owner`, `Public`, `AccessList`, `GroupMember`, `Curator`, `Admin`, `SystemProcess`); an identity
may do the action when any generator passes it. Every generator answers three questions:

- `allows(identity, obj)`: does this identity pass for this object (the object check);
- `condition(identity)`: which objects does it pass, as a small backend-neutral `Condition`
  that `catalog.repositories.sql_clause` turns into a SQL clause for listings;
- the search filter, derived from the same condition (`Condition.principals`) for entries whose
  access list lives in the index.

So a listing is one query with the clause in it, and the object check, the SQL clause and the
search filter cannot drift apart. Fail closed: an empty access list passes nobody, an unknown
principal passes nobody, and the owner keeps access to her own objects through `Owner`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from matterhub.core.errors import NotFound, PermissionDenied
from matterhub.core.identity import PUBLIC, Identity, user_principal

__all__ = [
    "ADMINS_GROUP",
    "CURATORS_GROUP",
    "POLICIES",
    "AccessList",
    "Action",
    "Admin",
    "AllOf",
    "AnyOf",
    "Condition",
    "Curator",
    "Everyone",
    "Everything",
    "FieldIn",
    "FieldIs",
    "Generator",
    "GroupMember",
    "InState",
    "Meets",
    "Nothing",
    "Owner",
    "Policy",
    "PrincipalFilter",
    "Protected",
    "Public",
    "ResourcePolicy",
    "SystemProcess",
    "Unowned",
    "any_of",
    "owner_only",
    "version_policy",
    "with_owner",
]

Action = Literal["read", "run", "manage"]

# The role groups `matterhub init` creates; nobody but an administrator creates, joins or
# administers them (catalog.accounts), so "member of curators" means what an admin decided.
CURATORS_GROUP = "curators"
ADMINS_GROUP = "admins"


@runtime_checkable
class Protected(Protocol):
    """Anything carrying an access list (datasets, records, servables)."""

    @property
    def visible_to(self) -> Sequence[str]: ...


# conditions: what a generator selects, independent of SQL or the search engine ---------------


class Condition:
    """A selection of objects, compiled to SQL by the catalog and to principals for search."""

    def principals(self) -> frozenset[str] | None:
        """The search filter of this condition: entries whose `visible_to` meets the set.

        None means everything. Only conditions over `visible_to` (and their unions) have a
        search form; anything else selects nothing in the index, which fails closed.
        """
        return frozenset()


@dataclass(frozen=True, slots=True)
class Everything(Condition):
    """Every object (administrators, the system)."""

    def principals(self) -> frozenset[str] | None:
        return None


@dataclass(frozen=True, slots=True)
class Nothing(Condition):
    """No object."""


@dataclass(frozen=True, slots=True)
class FieldIs(Condition):
    """Objects whose column `field` equals `value` (e.g. `owner_id`)."""

    field: str
    value: str | None  # None: the column is NULL


@dataclass(frozen=True, slots=True)
class FieldIn(Condition):
    """Objects whose column `field` is one of `values`."""

    field: str
    values: frozenset[str]


@dataclass(frozen=True, slots=True)
class Meets(Condition):
    """Objects whose access-list column `field` shares a principal with `principals`."""

    field: str
    held: frozenset[str]

    def principals(self) -> frozenset[str] | None:
        # Only the index's own access list has a search form; others select nothing there.
        return self.held if self.field == "visible_to" else frozenset()


@dataclass(frozen=True, slots=True)
class AnyOf(Condition):
    """Objects any of `parts` selects."""

    parts: tuple[Condition, ...]

    def principals(self) -> frozenset[str] | None:
        out: set[str] = set()
        for part in self.parts:
            got = part.principals()
            if got is None:
                return None
            out |= got
        return frozenset(out)


@dataclass(frozen=True, slots=True)
class AllOf(Condition):
    """Objects every one of `parts` selects (no search form: fails closed in the index)."""

    parts: tuple[Condition, ...]


def any_of(parts: Iterable[Condition]) -> Condition:
    """The union of `parts`, simplified (Everything absorbs, Nothing vanishes)."""
    kept: list[Condition] = []
    for part in parts:
        if isinstance(part, Everything):
            return part
        if isinstance(part, Nothing):
            continue
        kept.append(part)
    if not kept:
        return Nothing()
    return kept[0] if len(kept) == 1 else AnyOf(tuple(kept))


# generators -------------------------------------------------------------------------------------


def _get(obj: Any, field: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(field)
    return getattr(obj, field, None)


class Generator:
    """One way of passing a rule; the base passes nobody."""

    def allows(self, identity: Identity, obj: Any) -> bool:
        """Whether `identity` passes for `obj`."""
        return False

    def condition(self, identity: Identity) -> Condition:
        """The objects `identity` passes for."""
        return Nothing()


@dataclass(frozen=True, slots=True)
class Owner(Generator):
    """The object's owner (`owner_id`, or the field named)."""

    field: str = "owner_id"

    def allows(self, identity: Identity, obj: Any) -> bool:
        return identity.user_id is not None and _get(obj, self.field) == identity.user_id

    def condition(self, identity: Identity) -> Condition:
        if identity.user_id is None:
            return Nothing()
        return FieldIs(self.field, identity.user_id)


@dataclass(frozen=True, slots=True)
class AccessList(Generator):
    """Anyone holding a principal of the object's access list (`public` included)."""

    field: str = "visible_to"

    def allows(self, identity: Identity, obj: Any) -> bool:
        held = identity.principals
        return any(p in held for p in (_get(obj, self.field) or ()))

    def condition(self, identity: Identity) -> Condition:
        return Meets(self.field, identity.principals | {PUBLIC})


@dataclass(frozen=True, slots=True)
class Public(Generator):
    """Everyone, when the object's access list holds `public`."""

    field: str = "visible_to"

    def allows(self, identity: Identity, obj: Any) -> bool:
        return PUBLIC in (_get(obj, self.field) or ())

    def condition(self, identity: Identity) -> Condition:
        return Meets(self.field, frozenset({PUBLIC}))


@dataclass(frozen=True, slots=True)
class GroupMember(Generator):
    """Members of the group the object is (`id`) or names (the field given)."""

    field: str = "id"

    def allows(self, identity: Identity, obj: Any) -> bool:
        return _get(obj, self.field) in identity.group_ids

    def condition(self, identity: Identity) -> Condition:
        if not identity.group_ids:
            return Nothing()
        return FieldIn(self.field, frozenset(identity.group_ids))


@dataclass(frozen=True, slots=True)
class Curator(Generator):
    """Members of the reserved curators group (its principal is given by the caller)."""

    curators: frozenset[str] = frozenset()

    def allows(self, identity: Identity, obj: Any) -> bool:
        return not self.curators.isdisjoint(identity.principals)

    def condition(self, identity: Identity) -> Condition:
        return Everything() if self.allows(identity, None) else Nothing()


@dataclass(frozen=True, slots=True)
class Admin(Generator):
    """Administrators."""

    def allows(self, identity: Identity, obj: Any) -> bool:
        return identity.is_admin

    def condition(self, identity: Identity) -> Condition:
        return Everything() if identity.is_admin else Nothing()


@dataclass(frozen=True, slots=True)
class SystemProcess(Generator):
    """The CLI and background jobs (which passed their own checks)."""

    def allows(self, identity: Identity, obj: Any) -> bool:
        return identity.is_system

    def condition(self, identity: Identity) -> Condition:
        return Everything() if identity.is_system else Nothing()


@dataclass(frozen=True, slots=True)
class InState(Generator):
    """`inner`, only for objects whose `state` is one of `states`."""

    states: frozenset[str]
    inner: Generator

    def allows(self, identity: Identity, obj: Any) -> bool:
        return _get(obj, "state") in self.states and self.inner.allows(identity, obj)

    def condition(self, identity: Identity) -> Condition:
        inner = self.inner.condition(identity)
        if isinstance(inner, Nothing):
            return inner
        return AllOf((FieldIn("state", self.states), inner))


@dataclass(frozen=True, slots=True)
class ResourcePolicy:
    """The generators of each action on one resource type."""

    resource: str
    rules: Mapping[str, tuple[Generator, ...]]

    def generators(self, action: str) -> tuple[Generator, ...]:
        """The generators of `action`; an action not listed passes nobody but the system."""
        return self.rules.get(action, (SystemProcess(),))

    def allows(self, identity: Identity, obj: Any, action: str = "read") -> bool:
        """The object check."""
        return any(g.allows(identity, obj) for g in self.generators(action))

    def condition(self, identity: Identity, action: str = "read") -> Condition:
        """The listing condition (compiled to SQL by `catalog.repositories.sql_clause`)."""
        return any_of(g.condition(identity) for g in self.generators(action))

    def search_filter(self, identity: Identity, action: str = "read") -> PrincipalFilter:
        """The search filter (entries whose `visible_to` meets the principals)."""
        return PrincipalFilter(self.condition(identity, action).principals())


@dataclass(frozen=True, slots=True)
class Everyone(Generator):
    """Anyone at all, signed in or not."""

    def allows(self, identity: Identity, obj: Any) -> bool:
        return True

    def condition(self, identity: Identity) -> Condition:
        return Everything()


@dataclass(frozen=True, slots=True)
class Unowned(Generator):
    """Anyone holding an object nobody owns: an anonymous caller's async task, whose unguessable
    id is the only key to it (as in DLHub); a signed-in caller's task is hers alone."""

    field: str = "owner_id"

    def allows(self, identity: Identity, obj: Any) -> bool:
        return _get(obj, self.field) is None

    def condition(self, identity: Identity) -> Condition:
        return FieldIs(self.field, None)


_STAFF: tuple[Generator, ...] = (Admin(), SystemProcess())
_PUBLISHED = frozenset({"published", "withdrawn"})


def version_policy(curators: Iterable[str] = ()) -> ResourcePolicy:
    """A dataset version (and its files and records): private until published.

    Draft and rejected: the owner and the users it is shared with. In curation: the curators
    too. Published (or withdrawn): everyone its `visible_to` names. An empty `visible_to` names
    nobody, so only the owner, the shared-with users and staff read it.
    """
    curator = Curator(frozenset(curators))
    return ResourcePolicy(
        "version",
        {
            "read": (
                Owner(),
                AccessList("shared_with"),
                InState(_PUBLISHED, AccessList("visible_to")),
                InState(frozenset({"curation"}), curator),
                *_STAFF,
            ),
            "manage": (Owner(), InState(frozenset({"curation"}), curator), *_STAFF),
            "curate": (curator, *_STAFF),
        },
    )


POLICIES: dict[str, ResourcePolicy] = {
    # A dataset is listed when one of its versions may be read (version_policy).
    "dataset": ResourcePolicy(
        "dataset", {"read": (Owner(), *_STAFF), "manage": (Owner(), *_STAFF)}
    ),
    # Records and index entries: the entry's `visible_to` (the owner is always in it).
    "record": ResourcePolicy("record", {"read": (AccessList(), *_STAFF)}),
    "entry": ResourcePolicy("entry", {"read": (AccessList(), *_STAFF)}),
    "submission": ResourcePolicy(
        "submission",
        {
            "read": (Owner("submitter_id"), *_STAFF),
            "manage": (Owner("submitter_id"), *_STAFF),
        },
    ),
    "servable": ResourcePolicy(
        "servable",
        {
            "read": (Owner(), AccessList(), *_STAFF),
            "run": (Owner(), AccessList("runnable_by"), *_STAFF),
            "manage": (Owner(), *_STAFF),
        },
    ),
    # Requests for the right to run a servable (hub/access.py): the requester reads and
    # withdraws her own; the servable's owner (a column joined in) reads and decides.
    "access_request": ResourcePolicy(
        "access_request",
        {
            "read": (Owner("requester_id"), Owner("servable_owner_id"), *_STAFF),
            "decide": (Owner("servable_owner_id"), *_STAFF),
            "withdraw": (Owner("requester_id"), SystemProcess()),
        },
    ),
    # Search write tasks: the caller who started them.
    "task": ResourcePolicy("task", {"read": (Owner(), *_STAFF)}),
    # Async run tasks: the caller who started them; an anonymous caller's, whoever has the id.
    "run_task": ResourcePolicy("run_task", {"read": (Owner(), Unowned(), *_STAFF)}),
    "group": ResourcePolicy("group", {"read": (GroupMember(), *_STAFF), "manage": (*_STAFF,)}),
    "token": ResourcePolicy(
        "token", {"read": (Owner("user_id"), *_STAFF), "manage": (Owner("user_id"), *_STAFF)}
    ),
    # Index metadata is public; counts and field names are computed over visible entries.
    "index": ResourcePolicy(
        "index", {"read": (Everyone(),), "write": (AccessList("writers"), *_STAFF)}
    ),
}


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
    """Decides what an identity may do; the only place access rules live.

    `policy(resource)` is the `ResourcePolicy` of a resource type. The generic methods below
    serve objects that carry their own lists (`visible_to`, `runnable_by`, `owner_id`,
    `managed_by`), such as a servable or a version's computed `VersionAccess`.
    """

    def policy(self, resource: str) -> ResourcePolicy:
        """The policy of one resource type (`version` takes the curators from the caller)."""
        return POLICIES[resource]

    def versions(self, curators: Iterable[str] = ()) -> ResourcePolicy:
        """The version policy, with the curators group's principal."""
        return version_policy(curators)

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
        """Whether `identity` may do `action` on `obj` (run and manage need read as well)."""
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

    def require_rule(
        self,
        identity: Identity,
        resource: str,
        obj: Any,
        action: str = "read",
        *,
        what: str | None = None,
        message: str | None = None,
    ) -> None:
        """Raise unless `POLICIES[resource]` allows `action`; unseen objects are NotFound."""
        rules = self.policy(resource)
        if rules.allows(identity, obj, action):
            return
        if action != "read" and "read" in rules.rules and rules.allows(identity, obj, "read"):
            raise PermissionDenied(message or f"you may not {action} this {what or resource}")
        if action != "read" and "read" not in rules.rules:
            raise PermissionDenied(message or f"you may not {action} this {what or resource}")
        raise NotFound(f"{what or resource} not found")

    def search_filter(self, identity: Identity) -> PrincipalFilter:
        """The filter every search over index entries must apply for `identity`."""
        return POLICIES["entry"].search_filter(identity)

    def is_admin(self, identity: Identity) -> bool:
        """Administrators and the system."""
        return identity.bypasses_acl

    def require_admin(self, identity: Identity) -> None:
        """Raise PermissionDenied unless the caller is an admin or the system."""
        if not identity.bypasses_acl:
            raise PermissionDenied("this needs an administrator")


def owner_only(owner_id: str) -> list[str]:
    """The access list an empty, unknown or malformed one falls back to."""
    return [user_principal(owner_id)]


def with_owner(access: Sequence[str], owner_id: str | None) -> list[str]:
    """`access` plus the owner's principal unless it is public (owners always see their own)."""
    out = list(dict.fromkeys(access))
    if owner_id and PUBLIC not in out and user_principal(owner_id) not in out:
        out.append(user_principal(owner_id))
    return out
