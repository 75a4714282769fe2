"""Repositories: the queries over one session, so services never write SQL themselves."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from matterhub.catalog.models import ApiToken, Group, GroupMember, User
from matterhub.core.errors import Conflict, NotFound

__all__ = ["GroupRepository", "TokenRepository", "UserRepository"]


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
