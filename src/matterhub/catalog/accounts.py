"""Users, groups and API tokens: the service behind `/api/whoami` and the admin commands."""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from matterhub.catalog.database import Catalog
from matterhub.catalog.models import ApiToken, Group, GroupMember, User, utcnow
from matterhub.catalog.repositories import (
    GroupRepository,
    TokenRepository,
    UserRepository,
    sql_clause,
)
from matterhub.catalog.sessions import SessionRepository
from matterhub.core.accounts import (
    GroupPublic,
    NewToken,
    TokenPublic,
    UserPublic,
    WhoAmI,
    check_name,
)
from matterhub.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from matterhub.core.identity import (
    ANONYMOUS,
    SYSTEM_IDENTITY,
    Identity,
    group_principal,
    parse_principal,
    user_principal,
)
from matterhub.core.policy import ADMINS_GROUP, CURATORS_GROUP, Policy

__all__ = ["TOKEN_PREFIX", "AccountService"]

log = logging.getLogger(__name__)

TOKEN_PREFIX = "mh"
_LAST_USED_RESOLUTION = timedelta(minutes=1)
_VERIFIED_CACHE_SIZE = 4096
_MIN_PASSWORD = 8
_MAX_PASSWORD = 1024


def _user_public(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        username=user.username,
        email=user.email,
        full_name=user.full_name,
        is_admin=user.is_admin,
        created_at=user.created_at,
        principal=user_principal(user.id),
    )


def _group_public(group: Group) -> GroupPublic:
    return GroupPublic(
        id=group.id,
        name=group.name,
        description=group.description,
        created_at=group.created_at,
        principal=group_principal(group.id),
        members=sorted(m.user.username for m in group.members),
    )


def _token_public(token: ApiToken) -> TokenPublic:
    return TokenPublic(
        id=token.id,
        name=token.name,
        username=token.user.username,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
    )


class AccountService:
    """Manages accounts and turns bearer tokens into identities."""

    def __init__(
        self,
        catalog: Catalog,
        policy: Policy,
        *,
        default_token_ttl: timedelta | None = timedelta(days=365),
        hasher: PasswordHasher | None = None,
        identity_ttl_s: float = 2.0,
        curator_group: str = CURATORS_GROUP,
    ) -> None:
        self._catalog = catalog
        self._policy = policy
        # The role groups: created by `ensure_role_groups`, administered by administrators only.
        self._curator_group = curator_group
        self.role_groups = (curator_group, ADMINS_GROUP)
        self._default_ttl = default_token_ttl
        self._hasher = hasher or PasswordHasher()
        # argon2 costs tens of milliseconds by design; tokens are 256-bit random, so once a
        # token verified we remember its digest and skip the hash on later requests. Revocation,
        # expiry and account state are still read from the catalog on every request.
        self._verified: OrderedDict[bytes, str] = OrderedDict()
        self._verified_lock = threading.Lock()
        # A verified token's identity is kept for `identity_ttl_s` (keyed by the token's
        # digest), so a burst of runs costs one catalog read, not one per request. Revoking a
        # token or changing a group's members here drops every kept identity at once; a change
        # made by another process (the CLI, another server) takes effect within the TTL.
        self._identity_ttl_s = identity_ttl_s
        self._identities: dict[bytes, tuple[float, datetime | None, Identity]] = {}
        self._identities_generation = 0  # bumped by forget_identities (after the commit)
        self._dummy: str | None = None

    # users ---------------------------------------------------------------------------------

    def create_user(
        self,
        identity: Identity,
        username: str,
        *,
        email: str | None = None,
        full_name: str | None = None,
        is_admin: bool = False,
    ) -> UserPublic:
        """Create a user account (administrators only)."""
        self._policy.require_admin(identity)
        username = check_name(username, field="username")
        if email is not None and "@" not in email:
            raise InvalidInput(f"{email!r} is not an e-mail address", field="email")
        with self._catalog.transaction() as session:
            user = User(username=username, email=email, full_name=full_name, is_admin=is_admin)
            UserRepository(session).add(user)
            if is_admin:
                groups = GroupRepository(session)
                admins = groups.by_name(ADMINS_GROUP)
                if admins is not None:
                    groups.add_member(admins, user)
            return _user_public(user)

    def get_user(self, identity: Identity, username: str) -> UserPublic:
        """One user: yourself, or anyone for administrators."""
        self._require_self_or_admin(identity, username)
        with self._catalog.transaction() as session:
            return _user_public(UserRepository(session).require(username))

    def list_users(self, identity: Identity) -> list[UserPublic]:
        """Every user (administrators only)."""
        self._policy.require_admin(identity)
        with self._catalog.transaction() as session:
            return [_user_public(u) for u in UserRepository(session).list()]

    def has_admin(self) -> bool:
        """Whether at least one enabled administrator exists."""
        with self._catalog.transaction() as session:
            return UserRepository(session).count_admins() > 0

    def ensure_admin(self, username: str) -> tuple[UserPublic, NewToken] | None:
        """Create the first administrator and a token for it, unless an admin already exists."""
        if self.has_admin():
            return None
        user = self.create_user(SYSTEM_IDENTITY, username, is_admin=True)
        token = self.create_token(SYSTEM_IDENTITY, user.username, name="initial admin token")
        return user, token

    # groups --------------------------------------------------------------------------------

    def is_role_group(self, name: str) -> bool:
        """Whether `name` is (or would be confused with) a reserved role group's name."""
        folded = name.strip().casefold()
        return any(folded == reserved.casefold() for reserved in self.role_groups)

    def ensure_role_groups(self) -> list[str]:
        """Create the role groups (`curators`, `admins`) if missing; idempotent.

        Run by `init` and at every start, so catalogs made before role groups existed get them.
        A role group is administered by administrators only: a non-admin who manages one (say,
        someone created `curators` before it was reserved) is demoted to a plain member and
        logged for the operator to review. The `admins` group lists every administrator.

        Returns:
            The names of the groups created now.
        """
        try:
            return self._ensure_role_groups()
        except Conflict:  # another process created one at the same moment; it exists now
            return self._ensure_role_groups()

    def _ensure_role_groups(self) -> list[str]:
        created: list[str] = []
        descriptions = {
            self._curator_group: "Curators: accept or reject submissions (role group).",
            ADMINS_GROUP: "Administrators (role group; membership follows is_admin).",
        }
        with self._catalog.transaction() as session:
            groups = GroupRepository(session)
            for name in self.role_groups:
                group = groups.by_name(name)
                if group is None:
                    groups.add(Group(name=name, description=descriptions[name]))
                    created.append(name)
                    continue
                for member in group.members:
                    if member.role == "manager" and not member.user.is_admin:
                        member.role = "member"
                        log.warning(
                            "role group %r: %r managed it without being an administrator; "
                            "now a plain member (review its members)",
                            name,
                            member.user.username,
                        )
            admins = groups.require(ADMINS_GROUP)
            for user in UserRepository(session).list():
                listed = groups.membership(admins.id, user.id)
                if user.is_admin and listed is None:
                    groups.add_member(admins, user)
                elif not user.is_admin and listed is not None:
                    groups.remove_member(admins, user)
        self.forget_identities()
        return created

    def create_group(
        self, identity: Identity, name: str, *, description: str | None = None
    ) -> GroupPublic:
        """Create a group; a user creating it becomes its first manager.

        Raises:
            PermissionDenied: the name is a reserved role group's and the caller no admin.
        """
        if identity.is_anonymous:
            raise Unauthenticated("sign in to create groups")
        name = check_name(name, field="name")
        if self.is_role_group(name) and not self._policy.is_admin(identity):
            raise PermissionDenied(f"{name!r} is a reserved role group; administrators manage it")
        with self._catalog.transaction() as session:
            groups = GroupRepository(session)
            group = groups.add(Group(name=name, description=description))
            if identity.user_id is not None and not self.is_role_group(name):
                user = UserRepository(session).get(identity.user_id)
                if user is not None:
                    groups.add_member(group, user, role="manager")
            session.refresh(group)
            return _group_public(groups.require(name))

    def add_member(
        self, identity: Identity, group_name: str, username: str, *, role: str = "member"
    ) -> GroupPublic:
        """Add a user to a group (administrators and the group's managers)."""
        if role not in ("member", "manager"):
            raise InvalidInput(f"role must be 'member' or 'manager', not {role!r}", field="role")
        with self._catalog.transaction() as session:
            groups = GroupRepository(session)
            group = groups.require(group_name)
            self._require_group_manager(identity, groups, group)
            user = UserRepository(session).require(username)
            if group.name == ADMINS_GROUP:
                user.is_admin = True  # the admins group is the list of administrators
                role = "member"
            groups.add_member(group, user, role=role)
            session.expire(group)
            public = _group_public(groups.require(group_name))
        self.forget_identities()
        return public

    def remove_member(self, identity: Identity, group_name: str, username: str) -> GroupPublic:
        """Remove a user from a group (administrators and the group's managers)."""
        with self._catalog.transaction() as session:
            groups = GroupRepository(session)
            group = groups.require(group_name)
            self._require_group_manager(identity, groups, group)
            user = UserRepository(session).require(username)
            if group.name == ADMINS_GROUP:
                if UserRepository(session).count_admins() <= 1 and user.is_admin:
                    raise Conflict("the last administrator cannot leave admins", field="username")
                user.is_admin = False
            groups.remove_member(group, user)
            session.expire(group)
            public = _group_public(groups.require(group_name))
        self.forget_identities()
        return public

    def list_groups(self, identity: Identity) -> list[GroupPublic]:
        """All groups for administrators; the caller's own groups otherwise."""
        rule = self._policy.policy("group").condition(identity)
        with self._catalog.transaction() as session:
            groups = session.scalars(
                select(Group)
                .where(sql_clause(rule, Group))
                .order_by(Group.name)
                .options(selectinload(Group.members).selectinload(GroupMember.user))
            ).all()
            return [_group_public(g) for g in groups]

    def get_group(self, identity: Identity, name: str) -> GroupPublic:
        """One group: administrators and members only."""
        with self._catalog.transaction() as session:
            group = GroupRepository(session).require(name)
            if not self._policy.policy("group").allows(identity, group):
                raise NotFound(f"no group named {name!r}", field="group")
            return _group_public(group)

    # tokens --------------------------------------------------------------------------------

    def create_token(
        self,
        identity: Identity,
        username: str,
        *,
        name: str = "api",
        expires_in: timedelta | None = None,
        never_expires: bool = False,
    ) -> NewToken:
        """Create a bearer token for `username`; its secret is returned this one time."""
        self._require_self_or_admin(identity, username)
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidInput("a token must expire in the future", field="expires_in")
        if not name.strip() or len(name) > 100:
            raise InvalidInput("a token name is 1-100 characters", field="name")
        ttl = None if never_expires else (expires_in or self._default_ttl)
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        with self._catalog.transaction() as session:
            user = UserRepository(session).require(username)
            row = ApiToken(
                id=token_id,
                user_id=user.id,
                name=name,
                secret_hash=self._hasher.hash(secret),
                expires_at=utcnow() + ttl if ttl else None,
            )
            row.user = user
            TokenRepository(session).add(row)
            public = _token_public(row)
        return NewToken(**public.model_dump(), token=f"{TOKEN_PREFIX}_{token_id}_{secret}")

    def revoke_token(self, identity: Identity, token_id: str) -> TokenPublic:
        """Revoke a token now (its owner or an administrator); it stops working at once."""
        with self._catalog.transaction() as session:
            row = TokenRepository(session).get(token_id)
            if row is None or not self._policy.policy("token").allows(identity, row, "manage"):
                raise NotFound(f"no token {token_id!r}", field="token_id")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            public = _token_public(row)
        self.forget_identities()
        return public

    def list_tokens(self, identity: Identity, username: str) -> list[TokenPublic]:
        """A user's tokens (never their secrets): yourself, or anyone for administrators."""
        self._require_self_or_admin(identity, username)
        with self._catalog.transaction() as session:
            user = UserRepository(session).require(username)
            return [_token_public(t) for t in TokenRepository(session).for_user(user.id)]

    # passwords -----------------------------------------------------------------------------

    def set_password(self, identity: Identity, username: str, password: str) -> UserPublic:
        """Set (or replace) a user's web sign-in password and end the user's web sessions."""
        self._require_self_or_admin(identity, username)
        if not _MIN_PASSWORD <= len(password) <= _MAX_PASSWORD:
            raise InvalidInput(
                f"a password is {_MIN_PASSWORD}-{_MAX_PASSWORD} characters", field="password"
            )
        hashed = self._hasher.hash(password)
        with self._catalog.transaction() as session:
            user = UserRepository(session).require(username)
            user.password_hash = hashed
            # A new password ends every web session of the account (a thief's included).
            SessionRepository(session).end_for_user(user.id)
            return _user_public(user)

    def check_password(self, username: str, password: str) -> Identity:
        """The identity of `username` when `password` is theirs.

        Raises:
            Unauthenticated: unknown user, no password set, wrong password or disabled account
                (one message for all, so sign-in does not reveal which usernames exist).
        """
        with self._catalog.transaction() as session:
            users = UserRepository(session)
            user = users.by_username(username)
            stored = user.password_hash if user is not None else None
            try:
                # Hash even for unknown users so timing does not reveal which names exist.
                self._hasher.verify(stored or self._dummy_hash(), password)
                ok = stored is not None
            except (VerificationError, InvalidHashError):
                ok = False
            if not ok or user is None:
                raise Unauthenticated("wrong username or password")
            if user.disabled_at is not None:
                raise Unauthenticated("this account is disabled")
            if self._hasher.check_needs_rehash(user.password_hash or ""):
                user.password_hash = self._hasher.hash(password)
            return Identity(
                user_id=user.id,
                username=user.username,
                group_ids=users.group_ids(user.id),
                is_admin=user.is_admin,
            )

    def identity_for(self, username: str) -> Identity:
        """The current identity of an enabled user (re-read for each signed-in web request).

        Raises:
            Unauthenticated: the user no longer exists or is disabled.
        """
        with self._catalog.transaction() as session:
            users = UserRepository(session)
            user = users.by_username(username)
            if user is None or user.disabled_at is not None:
                raise Unauthenticated("this account no longer exists or is disabled")
            return Identity(
                user_id=user.id,
                username=user.username,
                group_ids=users.group_ids(user.id),
                is_admin=user.is_admin,
            )

    def principal_names(self, principals: Iterable[str]) -> dict[str, str]:
        """People-readable names of principals: 'everyone', 'user alice', 'group lab'."""
        out: dict[str, str] = {}
        with self._catalog.transaction() as session:
            for principal in principals:
                try:
                    kind, ident = parse_principal(principal)
                except ValueError:
                    out[principal] = principal
                    continue
                if kind == "public":
                    out[principal] = "everyone"
                    continue
                row = session.get(User if kind == "user" else Group, ident)
                name = getattr(row, "username" if kind == "user" else "name", None)
                out[principal] = f"{kind} {name}" if name else f"{kind} {ident}"
        return out

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy

    # authentication ------------------------------------------------------------------------

    def authenticate(self, bearer: str | None) -> Identity:
        """The identity behind a bearer token; no token is anonymous.

        Raises:
            Unauthenticated: the token is malformed, unknown, wrong, revoked or expired.
        """
        if bearer is None:
            return ANONYMOUS
        prefix, _, rest = bearer.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or not token_id or not secret:
            raise Unauthenticated("malformed API token: expected 'mh_<id>_<secret>'")
        digest = hashlib.sha256(bearer.encode()).digest()
        now = utcnow()
        kept = self.kept_identity(bearer)
        if kept is not None:
            return kept
        generation = self._identities_generation
        with self._catalog.transaction() as session:
            row = TokenRepository(session).get(token_id)
            if row is None or not self._secret_matches(row, secret, digest):
                raise Unauthenticated("invalid API token")
            if row.revoked_at is not None:
                raise Unauthenticated(f"this API token was revoked at {_iso(row.revoked_at)}")
            if row.expires_at is not None and row.expires_at <= now:
                raise Unauthenticated(
                    f"this API token expired at {_iso(row.expires_at)}; "
                    "create a new one with `matterhub token create`"
                )
            if row.user.disabled_at is not None:
                raise Unauthenticated("this account is disabled")
            if row.last_used_at is None or now - row.last_used_at > _LAST_USED_RESOLUTION:
                row.last_used_at = now
            identity = Identity(
                user_id=row.user.id,
                username=row.user.username,
                group_ids=UserRepository(session).group_ids(row.user.id),
                is_admin=row.user.is_admin,
            )
            expires_at = row.expires_at
        with self._verified_lock:
            # (a read that overlapped a revocation or membership change is not kept)
            if self._identity_ttl_s > 0 and generation == self._identities_generation:
                if len(self._identities) > _VERIFIED_CACHE_SIZE:
                    self._identities.clear()
                ttl = time.monotonic() + self._identity_ttl_s
                self._identities[digest] = (ttl, expires_at, identity)
        return identity

    def kept_identity(self, bearer: str) -> Identity | None:
        """The identity `authenticate` kept for this token, if still fresh; None otherwise.

        Never reads the catalog, so it may be called on the event loop; on None, call
        `authenticate` (which checks the token and keeps its identity again).
        """
        kept = self._identities.get(hashlib.sha256(bearer.encode()).digest())
        if kept is None or kept[0] <= time.monotonic():
            return None
        if kept[1] is not None and kept[1] <= utcnow():
            return None
        return kept[2]

    def forget_identities(self) -> None:
        """Drop every kept token identity (after a revocation or a membership change)."""
        with self._verified_lock:
            self._identities_generation += 1
            self._identities = {}

    def whoami(self, identity: Identity) -> WhoAmI:
        """Describe the caller."""
        names: list[str] = []
        if identity.group_ids:
            with self._catalog.transaction() as session:
                names = list(
                    session.scalars(
                        select(Group.name)
                        .where(Group.id.in_(sorted(identity.group_ids)))
                        .order_by(Group.name)
                    )
                )
        return WhoAmI(
            authenticated=not identity.is_anonymous,
            username=identity.username,
            user_id=identity.user_id,
            is_admin=identity.bypasses_acl,
            groups=names,
            principals=sorted(identity.principals),
        )

    # helpers -------------------------------------------------------------------------------

    def _secret_matches(self, row: ApiToken, secret: str, digest: bytes) -> bool:
        with self._verified_lock:
            if self._verified.get(digest) == row.id:
                self._verified.move_to_end(digest)
                return True
        try:
            self._hasher.verify(row.secret_hash, secret)
        except (VerificationError, InvalidHashError):
            return False
        with self._verified_lock:
            self._verified[digest] = row.id
            while len(self._verified) > _VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return True

    def _require_self_or_admin(self, identity: Identity, username: str) -> None:
        if identity.bypasses_acl or identity.username == username:
            return
        if identity.is_anonymous:
            raise Unauthenticated("sign in with an API token")
        raise PermissionDenied("only administrators may act for other users")

    def _require_group_manager(
        self, identity: Identity, groups: GroupRepository, group: Group
    ) -> None:
        if identity.bypasses_acl:
            return
        if self.is_role_group(group.name):
            raise PermissionDenied(f"{group.name!r} is a role group; administrators manage it")
        member = groups.membership(group.id, identity.user_id) if identity.user_id else None
        if member is None or member.role != "manager":
            raise PermissionDenied(f"only managers of {group.name!r} may change its members")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
