"""Web sessions: a random id in a cookie, the session itself in the catalog, and CSRF tokens.

The cookie holds `s.<id>` for a signed-in browser, where `<id>` is 256 random bits whose SHA-256
keys a row of `user_sessions` (catalog.sessions); nothing else — no username, no API token.
Signing out deletes the row, a password change deletes all of the user's rows, and the row's
expiry is enforced by the server. A browser that is not signed in holds `a.<nonce>` (random,
never stored), so its sign-in form still has a CSRF token. Forms carry
`HMAC(secret, "csrf" + cookie)`: a token is bound to one session and dies with it, and signing
in or out starts a new cookie, so a planted cookie (session fixation) never becomes signed in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Protocol

from fastapi import Depends, Request
from starlette.responses import Response

from matterhub.api.deps import ServicesDep
from matterhub.core.errors import PermissionDenied
from matterhub.core.identity import ANONYMOUS, Identity

__all__ = [
    "COOKIE",
    "CurrentSession",
    "WebSession",
    "get_session",
    "require_csrf",
]

COOKIE = "matterhub_session"
_ANONYMOUS, _SIGNED_IN = "a.", "s."
_VALUE = re.compile(r"[as]\.[A-Za-z0-9_-]{43}")


class SessionStore(Protocol):
    """Where sessions live (catalog.sessions.SessionService, reached through Services)."""

    @property
    def ttl(self) -> timedelta:
        """How long a session lasts."""
        ...

    def start(self, identity: Identity, *, token_id: str | None = None) -> str:
        """A new session's id."""
        ...

    def resolve(self, session_id: str) -> Identity | None:
        """The identity of a live session."""
        ...

    def end(self, session_id: str) -> None:
        """Forget a session."""
        ...


def _random() -> str:
    return secrets.token_urlsafe(32)  # 43 characters


@dataclass
class WebSession:
    """One browser's session: who it is signed in as, and its CSRF token."""

    secret: str = field(repr=False)
    nonce: str = field(repr=False)  # the cookie's value
    identity: Identity = ANONYMOUS
    store: SessionStore | None = field(default=None, repr=False)
    changed: bool = False
    secure: bool = False
    max_age: int | None = None

    @property
    def username(self) -> str | None:
        """The signed-in user's name, if any."""
        return self.identity.username

    @property
    def csrf(self) -> str:
        """The CSRF token forms of this session must send back."""
        mac = hmac.new(self.secret.encode(), ("csrf" + self.nonce).encode(), hashlib.sha256)
        return mac.hexdigest()

    def sign_in(self, identity: Identity, *, token_id: str | None = None) -> None:
        """Start a server-side session (a new id, so the old cookie and form tokens stop working).

        Args:
            identity: the user who proved who they are.
            token_id: the API token they signed in with; revoking it ends the session.
        """
        if self.store is None:
            raise RuntimeError("this session cannot sign in (no session store)")
        self._end_server_side()
        self.nonce = _SIGNED_IN + self.store.start(identity, token_id=token_id)
        self.identity = identity
        self.max_age = int(self.store.ttl.total_seconds())
        self.changed = True

    def sign_out(self) -> None:
        """End the session on the server and give the browser a fresh anonymous cookie."""
        self._end_server_side()
        self.nonce = _ANONYMOUS + _random()
        self.identity = ANONYMOUS
        self.max_age = None
        self.changed = True

    def _end_server_side(self) -> None:
        if self.store is not None and self.nonce.startswith(_SIGNED_IN):
            self.store.end(self.nonce.removeprefix(_SIGNED_IN))

    def save(self, response: Response) -> None:
        """Set the cookie on `response` when the session is new or changed."""
        if not self.changed:
            return
        response.set_cookie(
            COOKIE,
            self.nonce,
            max_age=self.max_age,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )


def get_session(request: Request, services: ServicesDep) -> WebSession:
    """This request's session (a fresh anonymous one when the cookie is missing or has ended)."""
    secure = services.settings.base_url.startswith("https://")
    value = request.cookies.get(COOKIE) or ""
    session = WebSession(
        secret=services.secret, nonce=value, store=services.sessions, secure=secure
    )
    if not _VALUE.fullmatch(value):
        session.nonce, session.changed = _ANONYMOUS + _random(), True
    elif value.startswith(_SIGNED_IN):
        identity = services.sessions.resolve(value.removeprefix(_SIGNED_IN))
        if identity is None:  # signed out, expired, password changed, token revoked
            session.nonce, session.changed = _ANONYMOUS + _random(), True
        else:
            session.identity = identity
    return session


CurrentSession = Annotated[WebSession, Depends(get_session)]


def require_csrf(session: WebSession, token: str | None) -> None:
    """Refuse a form post whose CSRF token is not this session's."""
    if not token or not hmac.compare_digest(token, session.csrf):
        raise PermissionDenied(
            "the form expired or came from another site; reload the page and try again",
            field="csrf_token",
        )
