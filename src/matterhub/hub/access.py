"""Access requests: asking a servable's owner for the right to run it, and the owner's decision.

A signed-in user who can see a servable but not run it asks, with a message; the owner (or an
administrator) grants the right to the requester or to a group the requester belongs to, or
declines with a reason. Every step is a row of `access_requests` (who asked, what they wrote,
who decided, when, to whom and why) and each side hears of it through the hub's notifiers
(webhook, e-mail). Who may read and decide is the `access_request` policy of `core.policy`;
listings carry its SQL clause.

A grant adds its principal to the servable's `runnable_by` and never to `visible_to`: it answers
"may I run what I see", it never widens who sees. Granted principals survive new versions:
`ServableService._activate` merges `granted_principals` into the rights each new document sets.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from matterhub.catalog.database import Catalog
from matterhub.catalog.models import (
    AccessRequest,
    Group,
    Servable,
    ServableVersion,
    User,
    utcnow,
)
from matterhub.catalog.models import GroupMember as Membership
from matterhub.catalog.repositories import sql_clause
from matterhub.connect.notify import Notice, Notifier, deliver
from matterhub.core.access_requests import (
    MAX_MESSAGE_CHARS,
    MAX_REASON_CHARS,
    STATUSES,
    AccessRequestPublic,
    check_text,
)
from matterhub.core.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from matterhub.core.identity import (
    PUBLIC,
    Identity,
    group_principal,
    parse_principal,
    user_principal,
)
from matterhub.core.policy import Policy
from matterhub.core.servables import parse_servable_ref

if TYPE_CHECKING:
    from matterhub.hub.service import ServableService

__all__ = ["AccessRequests", "granted_principals", "run_refused", "with_grants"]

log = logging.getLogger(__name__)

# The columns the `access_request` policy's conditions name, in a query joining the servable.
_COLUMNS = SimpleNamespace(
    requester_id=AccessRequest.requester_id, servable_owner_id=Servable.owner_id
)
_Requester = aliased(User)
_Owner = aliased(User)
_Decider = aliased(User)


def granted_principals(session: Session, servable_id: str) -> list[str]:
    """The principals holding a granted (not revoked) right to run this servable."""
    rows = session.scalars(
        select(AccessRequest.granted_to)
        .where(
            AccessRequest.servable_id == servable_id,
            AccessRequest.status == "granted",
            AccessRequest.granted_to.is_not(None),
        )
        .order_by(AccessRequest.decided_at)
    ).all()
    return list(dict.fromkeys(p for p in rows if p))


def run_refused(identity: Identity, ref: str) -> str:
    """The 403 detail for someone who sees `ref` but may not run it: how to ask for access."""
    how = (
        f'POST /api/servables/{ref}/access-requests {{"message": ...}}, '
        f"`matterhub servable access request {ref} --message ...`, or the servable's page"
    )
    if identity.user_id is None:
        return f"you may not run this servable; sign in and request access from its owner ({how})"
    return f"you may not run this servable; request access from its owner ({how})"


def with_grants(session: Session, servable_id: str, declared: Iterable[str]) -> list[str]:
    """A new version's declared run rights plus those granted on access requests."""
    return list(dict.fromkeys([*declared, *granted_principals(session, servable_id)]))


@dataclass(frozen=True, slots=True)
class _Subject:
    """What the policy looks at for one request."""

    requester_id: str
    servable_owner_id: str


class AccessRequests:
    """Request, list, grant, decline, withdraw and revoke the right to run a servable."""

    def __init__(
        self,
        catalog: Catalog,
        policy: Policy,
        servables: ServableService,
        *,
        notifiers: list[Notifier] | None = None,
        secret: str = "",
        base_url: str = "",
        max_pending: int = 20,
        max_per_day: int = 50,
    ) -> None:
        self._catalog = catalog
        self._policy = policy
        self._servables = servables
        self._notifiers = list(notifiers or [])
        self._secret = secret
        self._base_url = base_url.rstrip("/")
        self.max_pending = max_pending
        self.max_per_day = max_per_day

    # asking ----------------------------------------------------------------------------------

    def request(self, identity: Identity, ref: str, *, message: Any = "") -> AccessRequestPublic:
        """Ask the owner of `ref` for the right to run it.

        Raises:
            Unauthenticated: anonymous callers (there is nobody to grant the right to).
            NotFound: the caller cannot see the servable.
            Conflict: the caller can already run it (the detail says why), already has a pending
                request for it, or has too many pending or recent requests.
            InvalidInput: the message is not text or too long (`message`).
        """
        if identity.user_id is None:
            raise Unauthenticated("sign in to request access to a servable")
        text = check_text(message, "message", limit=MAX_MESSAGE_CHARS, required=False)
        with self._catalog.transaction() as session:
            servable = self._find(session, identity, ref, lock=True)
            if self._policy.allows(identity, servable, "run"):
                why = self._why_runnable(session, identity, servable)
                raise Conflict(f"you can already run {ref}: {why}", field="servable")
            mine = AccessRequest.requester_id == identity.user_id
            pending = session.scalar(
                select(AccessRequest.id).where(
                    mine,
                    AccessRequest.servable_id == servable.id,
                    AccessRequest.status == "pending",
                )
            )
            if pending is not None:
                raise Conflict(
                    f"you already asked for access to {ref} (request {pending}); "
                    "wait for the owner's decision or withdraw it",
                    field="servable",
                )
            count = select(func.count()).select_from(AccessRequest)
            open_ = session.scalar(count.where(mine, AccessRequest.status == "pending")) or 0
            if open_ >= self.max_pending:
                raise Conflict(
                    f"you have {open_} pending access requests; at most {self.max_pending} "
                    "may wait at once",
                    field="servable",
                )
            since = utcnow() - timedelta(days=1)
            recent = session.scalar(count.where(mine, AccessRequest.created_at >= since)) or 0
            if recent >= self.max_per_day:
                raise Conflict(
                    f"you made {recent} access requests in the last 24 hours; "
                    f"at most {self.max_per_day}",
                    field="servable",
                )
            row = AccessRequest(
                servable_id=servable.id,
                requester_id=identity.user_id,
                message=text,
                status="pending",
            )
            session.add(row)
            session.flush()
            public = self._public_of(session, row.id)
            owner = session.get(User, servable.owner_id)
            assert owner is not None
            notice = self._notice(
                "access.requested",
                public,
                owner,
                f"{public.requester} asks for the right to run {public.servable}"
                + (f": {text}" if text else "."),
                None,
            )
        self._deliver(notice)
        return public

    def withdraw(self, identity: Identity, request_id: str) -> AccessRequestPublic:
        """The requester takes back a pending request."""
        with self._catalog.transaction() as session:
            row, _servable = self._load(session, identity, request_id, "withdraw")
            self._require_pending(row)
            row.status, row.decided_at, row.decided_by = "withdrawn", utcnow(), identity.user_id
            session.flush()
            return self._public_of(session, row.id)

    # reading ---------------------------------------------------------------------------------

    def get(self, identity: Identity, request_id: str) -> AccessRequestPublic:
        """One request, for its requester, the servable's owner and administrators."""
        with self._catalog.transaction() as session:
            row, _servable = self._load(session, identity, request_id, "read")
            return self._public_of(session, row.id)

    def list_requests(
        self,
        identity: Identity,
        ref: str | None = None,
        *,
        status: str | None = None,
        role: str = "requester",
        limit: int = 100,
        offset: int = 0,
    ) -> list[AccessRequestPublic]:
        """Requests the caller may read, newest first.

        With `ref`: that servable's requests (all of them for its owner and administrators,
        the caller's own for anybody else who sees it). Without: the caller's own requests
        (`role="requester"`) or those on the caller's servables (`role="owner"`).

        Raises:
            InvalidInput: an unknown `status` or `role`, or a page out of bounds.
            NotFound: `ref` names a servable the caller cannot see.
        """
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
        if role not in ("requester", "owner"):
            raise InvalidInput("role must be 'requester' or 'owner'", field="role")
        if not 1 <= limit <= 500:
            raise InvalidInput("limit must be 1-500", field="limit")
        if not 0 <= offset <= 10_000:
            raise InvalidInput("offset must be 0-10000", field="offset")
        rule = self._policy.policy("access_request").condition(identity, "read")
        query = self._query().where(sql_clause(rule, _COLUMNS))
        with self._catalog.transaction() as session:
            if ref is not None:
                servable = self._find(session, identity, ref)
                query = query.where(AccessRequest.servable_id == servable.id)
            elif identity.user_id is None:
                raise Unauthenticated("sign in to see your access requests")
            elif role == "owner":
                query = query.where(Servable.owner_id == identity.user_id)
            else:
                query = query.where(AccessRequest.requester_id == identity.user_id)
            if status is not None:
                query = query.where(AccessRequest.status == status)
            query = query.order_by(AccessRequest.created_at.desc(), AccessRequest.id)
            rows = session.execute(query.limit(limit).offset(offset)).all()
            names = self._names(session, [r[0].granted_to for r in rows])
            return [self._public(*r, names=names) for r in rows]

    # deciding --------------------------------------------------------------------------------

    def grant(
        self, identity: Identity, request_id: str, *, to: str | None = None
    ) -> AccessRequestPublic:
        """Give the requester (or a group she belongs to) the right to run the servable.

        `to` is `user` (the default: the requester), `user:<requester>`, or `group:<name>` /
        a group URN, where the group must be one the caller belongs to (an administrator: any)
        and must include the requester. The right applies to the very next run.

        Raises:
            NotFound: the caller cannot read the request.
            PermissionDenied: the caller may read but not decide it (the requester).
            Conflict: it is not pending any more.
            InvalidInput: `to` names nobody acceptable (`to`).
        """
        with self._catalog.transaction() as session:
            row, servable = self._load(session, identity, request_id, "decide")
            self._require_pending(row)
            requester = session.get(User, row.requester_id)
            assert requester is not None
            principal = self._grantee(session, identity, requester, to)
            servable.runnable_by = list(dict.fromkeys([*servable.runnable_by, principal]))
            row.status, row.granted_to = "granted", principal
            row.decided_by, row.decided_at = identity.user_id, utcnow()
            session.flush()
            public = self._public_of(session, row.id)
            notice = self._notice(
                "access.granted",
                public,
                requester,
                f"You may now run {public.servable} (granted to {public.granted_to}).",
                None,
            )
        self._servables.generation += 1  # committed: cached resolutions see the new right
        self._deliver(notice)
        return public

    def decline(self, identity: Identity, request_id: str, *, reason: Any) -> AccessRequestPublic:
        """Refuse a pending request, saying why (the requester reads the reason)."""
        text = check_text(reason, "reason", limit=MAX_REASON_CHARS, required=True)
        with self._catalog.transaction() as session:
            row, _servable = self._load(session, identity, request_id, "decide")
            self._require_pending(row)
            row.status, row.reason = "declined", text
            row.decided_by, row.decided_at = identity.user_id, utcnow()
            session.flush()
            public = self._public_of(session, row.id)
            requester = session.get(User, row.requester_id)
            assert requester is not None
            notice = self._notice(
                "access.declined",
                public,
                requester,
                f"Your request to run {public.servable} was declined: {text}",
                text,
            )
        self._deliver(notice)
        return public

    def revoke(
        self, identity: Identity, request_id: str, *, reason: Any = None
    ) -> AccessRequestPublic:
        """Take back a granted right (unless the servable's own document grants it too)."""
        text = check_text(reason, "reason", limit=MAX_REASON_CHARS, required=False) or None
        with self._catalog.transaction() as session:
            row, servable = self._load(session, identity, request_id, "decide")
            if row.status != "granted":
                raise Conflict(f"only a granted request can be revoked; it is {row.status}")
            principal = row.granted_to
            row.status, row.reason = "revoked", text
            row.decided_by, row.decided_at = identity.user_id, utcnow()
            session.flush()
            kept = {*self._declared(session, servable), *granted_principals(session, servable.id)}
            servable.runnable_by = [p for p in servable.runnable_by if p != principal or p in kept]
            public = self._public_of(session, row.id)
            requester = session.get(User, row.requester_id)
            assert requester is not None
            notice = self._notice(
                "access.revoked",
                public,
                requester,
                f"Your right to run {public.servable} was revoked" + (f": {text}" if text else "."),
                text,
            )
        self._servables.generation += 1
        self._deliver(notice)
        return public

    # helpers ---------------------------------------------------------------------------------

    def _find(
        self, session: Session, identity: Identity, ref: str, *, lock: bool = False
    ) -> Servable:
        """The servable `ref`, if the caller sees it (NotFound otherwise)."""
        owner, name = parse_servable_ref(ref)
        query = (
            select(Servable)
            .join(User, User.id == Servable.owner_id)
            .where(User.username == owner, Servable.name == name)
        )
        # Serialises concurrent requests for one servable on PostgreSQL (SQLite has one writer).
        servable = session.scalar(query.with_for_update(of=Servable) if lock else query)
        if servable is None:
            raise NotFound(f"no servable {owner}/{name}", field="servable")
        self._policy.require(identity, servable, "read", what="servable")
        return servable

    def _load(
        self, session: Session, identity: Identity, request_id: str, action: str
    ) -> tuple[AccessRequest, Servable]:
        row = session.get(AccessRequest, request_id) if len(request_id) <= 36 else None
        servable = session.get(Servable, row.servable_id) if row is not None else None
        if row is None or servable is None:
            raise NotFound(f"no access request {request_id!r}", field="request_id")
        subject = _Subject(row.requester_id, servable.owner_id)
        self._policy.require_rule(
            identity,
            "access_request",
            subject,
            action,
            what="access request",
            message=f"only the servable's owner may {action} this access request"
            if action == "decide"
            else None,
        )
        return row, servable

    @staticmethod
    def _require_pending(row: AccessRequest) -> None:
        if row.status != "pending":
            raise Conflict(f"this access request is already {row.status}", field="request_id")

    def _grantee(
        self, session: Session, identity: Identity, requester: User, to: str | None
    ) -> str:
        """The principal a grant gives the right to (see `grant`)."""
        mine = user_principal(requester.id)
        if to is None or to in ("user", f"user:{requester.username}", mine):
            return mine
        if not isinstance(to, str) or len(to) > 200:
            raise InvalidInput("to must be 'user' or 'group:<name>'", field="to")
        group: Group | None = None
        if to.startswith("group:"):
            group = session.scalar(select(Group).where(Group.name == to[6:]))
        elif to.startswith("urn:matterhub:group:"):
            try:
                _kind, gid = parse_principal(to)
            except ValueError:
                gid = None
            group = session.get(Group, gid) if gid else None
        else:
            raise InvalidInput(
                f"to must be 'user' (the requester, {requester.username}) or 'group:<name>'",
                field="to",
            )
        # Group members are private to members: a group the caller is not in is "no group",
        # so a grant can never probe who belongs to a group one cannot read.
        if group is None or not self._policy.policy("group").allows(identity, group, "read"):
            raise InvalidInput(f"no group {to!r} among your groups", field="to")
        member = session.get(Membership, (group.id, requester.id))
        if member is None:
            raise InvalidInput(
                f"{requester.username} is not a member of group {group.name}; grant to the "
                "user or to a group they belong to",
                field="to",
            )
        return group_principal(group.id)

    @staticmethod
    def _declared(session: Session, servable: Servable) -> list[str]:
        """The run rights the live version's document declares (what grants add to)."""
        ready = session.execute(
            select(ServableVersion.version, ServableVersion.document).where(
                ServableVersion.servable_id == servable.id, ServableVersion.state == "ready"
            )
        ).all()
        if not ready:
            return []
        _version, document = max(ready, key=lambda r: int(r[0]) if r[0].isdigit() else 0)
        return list(document["dlhub"]["runnable_by"])

    def _why_runnable(self, session: Session, identity: Identity, servable: Servable) -> str:
        if identity.user_id == servable.owner_id:
            return "you own it"
        if identity.bypasses_acl:
            return "you are an administrator"
        rights = list(servable.runnable_by)
        if PUBLIC in rights:
            return "everyone may run it"
        if identity.user_id and user_principal(identity.user_id) in rights:
            return "its runnable_by lists you"
        for gid in sorted(identity.group_ids):
            if group_principal(gid) in rights:
                group = session.get(Group, gid)
                return f"your group {group.name if group else gid} may run it"
        return "you hold a principal of its runnable_by"

    @staticmethod
    def _query() -> Any:
        return (
            select(AccessRequest, _Owner.username, Servable.name, _Requester.username)
            .add_columns(_Decider.username)
            .join(Servable, Servable.id == AccessRequest.servable_id)
            .join(_Owner, _Owner.id == Servable.owner_id)
            .join(_Requester, _Requester.id == AccessRequest.requester_id)
            .outerjoin(_Decider, _Decider.id == AccessRequest.decided_by)
        )

    def _public_of(self, session: Session, request_id: str) -> AccessRequestPublic:
        row = session.execute(self._query().where(AccessRequest.id == request_id)).one()
        return self._public(*row, names=self._names(session, [row[0].granted_to]))

    @staticmethod
    def _names(session: Session, principals: Iterable[str | None]) -> dict[str, str]:
        """`user:<name>` / `group:<name>` for each granted principal (looked up once each)."""
        out: dict[str, str] = {}
        for principal in dict.fromkeys(p for p in principals if p):
            try:
                kind, ident = parse_principal(principal)
            except ValueError:
                continue
            obj = session.get(User if kind == "user" else Group, ident) if ident else None
            label = getattr(obj, "username", None) or getattr(obj, "name", None) or ident
            out[principal] = f"{kind}:{label}" if kind != "public" else principal
        return out

    @staticmethod
    def _public(
        row: AccessRequest,
        owner: str,
        name: str,
        requester: str,
        decider: str | None,
        *,
        names: dict[str, str],
    ) -> AccessRequestPublic:
        return AccessRequestPublic(
            id=row.id,
            servable=f"{owner}/{name}",
            requester=requester,
            message=row.message or "",
            status=row.status,
            granted_to=names.get(row.granted_to, row.granted_to) if row.granted_to else None,
            reason=row.reason,
            decided_by=decider,
            created_at=row.created_at,
            decided_at=row.decided_at,
        )

    def _notice(
        self, event: str, public: AccessRequestPublic, to: User, summary: str, reason: str | None
    ) -> Notice:
        return Notice(
            event=event,
            source_id=public.servable,
            submitter=to.username,
            email=to.email,
            reason=reason,
            status_url=f"{self._base_url}/me/access-requests",
            summary=summary,
        )

    def _deliver(self, notice: Notice) -> None:
        """After commit; a notice that cannot be delivered is logged and changes nothing."""
        if self._notifiers:
            deliver(self._notifiers, notice, secret=self._secret)
