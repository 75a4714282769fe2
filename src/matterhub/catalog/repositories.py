"""Repositories: the queries over one session, so services never write SQL themselves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, and_, false, literal, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from matterhub.catalog.models import ApiToken, Group, GroupMember, User
from matterhub.core.errors import Conflict, NotFound
from matterhub.core.policy import (
    AllOf,
    AnyOf,
    Condition,
    Everything,
    FieldIn,
    FieldIs,
    Meets,
    Nothing,
)

__all__ = ["GroupRepository", "TokenRepository", "UserRepository", "sql_clause"]


class _Meets(FunctionElement[bool]):
    """`<json list column>` shares an element with the given strings (compiled per dialect)."""

    name = "matterhub_meets"
    type = Boolean()
    inherit_cache = True


@compiles(_Meets, "postgresql")
def _meets_postgresql(element: _Meets, compiler: SQLCompiler, **kw: Any) -> str:
    column, *values = list(element.clauses)
    items = ", ".join(compiler.process(v, **kw) for v in values)
    return f"jsonb_exists_any({compiler.process(column, **kw)}, ARRAY[{items}]::text[])"


@compiles(_Meets)
def _meets_sqlite(element: _Meets, compiler: SQLCompiler, **kw: Any) -> str:
    column, *values = list(element.clauses)
    items = ", ".join(compiler.process(v, **kw) for v in values)
    return (
        f"EXISTS (SELECT 1 FROM json_each({compiler.process(column, **kw)}) AS acl "
        f"WHERE acl.value IN ({items}))"
    )


def sql_clause(condition: Condition, model: Any) -> ColumnElement[bool]:
    """The SQL form of a policy condition over `model`'s columns (the listing filter).

    A JSON access list that is NULL or empty meets nothing, so an empty list selects nobody.
    """
    match condition:
        case Everything():
            return true()
        case Nothing():
            return false()
        case FieldIs(field=field, value=value):
            return bool_column(getattr(model, field) == value)
        case FieldIn(field=field, values=values):
            return bool_column(getattr(model, field).in_(sorted(values)))
        case Meets(field=field, held=held):
            if not held:
                return false()
            items = [literal(p) for p in sorted(held)]
            return bool_column(_Meets(getattr(model, field), *items))
        case AnyOf(parts=parts):
            return or_(*(sql_clause(p, model) for p in parts))
        case AllOf(parts=parts):
            return and_(*(sql_clause(p, model) for p in parts))
    raise TypeError(f"no SQL form for {condition!r}")


def bool_column(clause: Any) -> ColumnElement[bool]:
    """Type helper: a comparison as a boolean clause."""
    return clause  # type: ignore[no-any-return]


class _Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _insert(self, obj: object, *, conflict: str, field: str) -> None:
        """Add and flush, turning a uniqueness violation into Conflict."""
        try:
            with self.session.begin_nested():
                self.session.add(obj)
                self.session.flush()
        except IntegrityError as exc:
            raise Conflict(conflict, field=field) from exc


class UserRepository(_Repository):
    """Users by id and by name."""

    def add(self, user: User) -> User:
        """Insert a user; raises Conflict when the username is taken."""
        self._insert(user, conflict=f"username {user.username!r} is taken", field="username")
        return user

    def get(self, user_id: str) -> User | None:
        """The user with this id, if any."""
        return self.session.get(User, user_id)

    def by_username(self, username: str) -> User | None:
        """The user with this name, if any."""
        return self.session.scalar(select(User).where(User.username == username))

    def require(self, username: str) -> User:
        """The user with this name; raises NotFound naming it."""
        user = self.by_username(username)
        if user is None:
            raise NotFound(f"no user named {username!r}", field="username")
        return user

    def list(self) -> Sequence[User]:
        """Every user, by name."""
        return self.session.scalars(select(User).order_by(User.username)).all()

    def count_admins(self) -> int:
        """How many enabled administrators exist."""
        admins = select(User.id).where(User.is_admin.is_(True), User.disabled_at.is_(None))
        return len(self.session.scalars(admins).all())

    def group_ids(self, user_id: str) -> frozenset[str]:
        """The ids of the groups this user belongs to."""
        rows = self.session.scalars(
            select(GroupMember.group_id).where(GroupMember.user_id == user_id)
        )
        return frozenset(rows)


class GroupRepository(_Repository):
    """Groups and their memberships."""

    def add(self, group: Group) -> Group:
        """Insert a group; raises Conflict when the name is taken."""
        self._insert(group, conflict=f"group name {group.name!r} is taken", field="name")
        return group

    def by_name(self, name: str) -> Group | None:
        """The group with this name (members loaded), if any."""
        query = (
            select(Group)
            .where(Group.name == name)
            .options(selectinload(Group.members).selectinload(GroupMember.user))
        )
        return self.session.scalar(query)

    def require(self, name: str) -> Group:
        """The group with this name; raises NotFound naming it."""
        group = self.by_name(name)
        if group is None:
            raise NotFound(f"no group named {name!r}", field="group")
        return group

    def list(self) -> Sequence[Group]:
        """Every group (members loaded), by name."""
        query = (
            select(Group)
            .order_by(Group.name)
            .options(selectinload(Group.members).selectinload(GroupMember.user))
        )
        return self.session.scalars(query).all()

    def membership(self, group_id: str, user_id: str) -> GroupMember | None:
        """The membership row of a user in a group, if any."""
        return self.session.get(GroupMember, (group_id, user_id))

    def add_member(self, group: Group, user: User, *, role: str = "member") -> GroupMember:
        """Make `user` a member of `group` (idempotent; the role is updated)."""
        member = self.membership(group.id, user.id)
        if member is None:
            member = GroupMember(group_id=group.id, user_id=user.id, role=role)
            self.session.add(member)
        else:
            member.role = role
        self.session.flush()
        return member

    def remove_member(self, group: Group, user: User) -> None:
        """Remove `user` from `group`; raises NotFound when not a member."""
        member = self.membership(group.id, user.id)
        if member is None:
            raise NotFound(f"{user.username!r} is not in group {group.name!r}", field="username")
        self.session.delete(member)
        self.session.flush()


class TokenRepository(_Repository):
    """API tokens (hashes only)."""

    def add(self, token: ApiToken) -> ApiToken:
        """Insert a token row."""
        self._insert(token, conflict="token id collision; try again", field="token")
        return token

    def get(self, token_id: str) -> ApiToken | None:
        """The token with this id (its user loaded), if any."""
        query = select(ApiToken).where(ApiToken.id == token_id).options(selectinload(ApiToken.user))
        return self.session.scalar(query)

    def for_user(self, user_id: str) -> Sequence[ApiToken]:
        """A user's tokens, newest first."""
        query = (
            select(ApiToken)
            .where(ApiToken.user_id == user_id)
            .order_by(ApiToken.created_at.desc())
            .options(selectinload(ApiToken.user))
        )
        return self.session.scalars(query).all()
