"""Web sign-in sessions kept in the catalog, so signing out or changing a password ends them.

A browser holds only a random session id (256 bits); the catalog keeps its SHA-256, the user,
the API token it was started with (if any) and when it expires. Each request re-reads the row
with the user's current groups, so a disabled account, a revoked token or a deleted session
stops working at once on every server sharing the catalog.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from matterhub.catalog.database import Catalog
from matterhub.catalog.models import ApiToken, User, UserSession, utcnow
from matterhub.catalog.repositories import UserRepository
from matterhub.core.identity import Identity

__all__ = ["SessionRepository", "SessionService", "session_hash"]


def session_hash(session_id: str) -> str:
    """The catalog key of a session id (the id itself is never stored)."""
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionRepository:
    """The session rows of one unit of work."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def end_for_user(self, user_id: str) -> int:
        """Delete every session of a user (password change, account disabled); returns how many."""
        result = self.session.execute(delete(UserSession).where(UserSession.user_id == user_id))
        return int(getattr(result, "rowcount", 0) or 0)

    def purge_expired(self, now: datetime) -> None:
        """Forget sessions that have expired."""
        self.session.execute(delete(UserSession).where(UserSession.expires_at <= now))


class SessionService:
    """Starts, resolves and ends web sessions."""

    def __init__(self, catalog: Catalog, *, ttl: timedelta) -> None:
        self._catalog = catalog
        self._ttl = ttl

    @property
    def ttl(self) -> timedelta:
        """How long a session lasts from sign-in."""
        return self._ttl

    def start(self, identity: Identity, *, token_id: str | None = None) -> str:
        """A new session for a signed-in user; returns its id, which only the cookie holds.

        A session started with an API token ends no later than the token does.
        """
        if identity.user_id is None:
            raise ValueError("only a user can hold a web session")
        session_id = secrets.token_urlsafe(32)
        now = utcnow()
        expires_at = now + self._ttl
        with self._catalog.transaction() as session:
            repo = SessionRepository(session)
            repo.purge_expired(now)
            if token_id is not None:
                token = session.get(ApiToken, token_id)
                if token is not None and token.expires_at is not None:
                    expires_at = min(expires_at, token.expires_at)
            session.add(
                UserSession(
                    id_hash=session_hash(session_id),
                    user_id=identity.user_id,
                    token_id=token_id,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        return session_id

    def resolve(self, session_id: str) -> Identity | None:
        """The current identity of a live session, or None when it has ended or never existed."""
        now = utcnow()
        query = (
            select(User)
            .join(UserSession, UserSession.user_id == User.id)
            .outerjoin(ApiToken, ApiToken.id == UserSession.token_id)
            .where(
                UserSession.id_hash == session_hash(session_id),
                UserSession.expires_at > now,
                User.disabled_at.is_(None),
                or_(
                    UserSession.token_id.is_(None),
                    (ApiToken.revoked_at.is_(None))
                    & (ApiToken.expires_at.is_(None) | (ApiToken.expires_at > now)),
                ),
            )
        )
        with self._catalog.transaction() as session:
            user = session.scalar(query)
            if user is None:
                return None
            return Identity(
                user_id=user.id,
                username=user.username,
                group_ids=UserRepository(session).group_ids(user.id),
                is_admin=user.is_admin,
            )

    def end(self, session_id: str) -> None:
        """End one session (sign-out)."""
        with self._catalog.transaction() as session:
            session.execute(
                delete(UserSession).where(UserSession.id_hash == session_hash(session_id))
            )

    def end_all(self, user_id: str) -> int:
        """End every session of a user; returns how many there were."""
        with self._catalog.transaction() as session:
            return SessionRepository(session).end_for_user(user_id)

    def count(self, user_id: str) -> int:
        """How many live sessions a user has."""
        query = select(UserSession.id_hash).where(
            UserSession.user_id == user_id, UserSession.expires_at > utcnow()
        )
        with self._catalog.transaction() as session:
            return len(session.scalars(query).all())
