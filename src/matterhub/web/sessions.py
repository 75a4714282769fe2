"""Web sessions: a cookie signed with the server secret, CSRF tokens, and the caller's identity.

The cookie holds `{n: nonce, u: username | None, k: token | None, iat: issued}` as base64 JSON plus
an HMAC-SHA256 of it under the server secret. Nothing in it is trusted without the signature, and
the identity is re-read from the catalog on every request, so disabling a user or revoking a token
ends their web session at once. Forms carry `HMAC(secret, "csrf" + nonce)`; signing in or out
starts a new nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.responses import Response

from matterhub.api.deps import ServicesDep
from matterhub.bootstrap import Services
from matterhub.core.errors import MatterHubError, PermissionDenied
from matterhub.core.identity import ANONYMOUS, Identity

__all__ = [
    "COOKIE",
    "CurrentSession",
    "WebSession",
    "get_session",
    "require_csrf",
]

COOKIE = "matterhub_session"
MAX_AGE_S = 14 * 24 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def sign(secret: str, data: dict[str, Any]) -> str:
    """The cookie value for `data`."""
    payload = _b64(json.dumps(data, separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, payload)}"


def unsign(secret: str, value: str | None, *, now: float | None = None) -> dict[str, Any] | None:
    """The data of a cookie this server signed and that has not expired, else None."""
    if not value or "." not in value:
        return None
    payload, _, mac = value.rpartition(".")
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        return None
    try:
        data = json.loads(_unb64(payload))
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("n"), str):
        return None
    issued = data.get("iat")
    if not isinstance(issued, int) or (now or time.time()) - issued > MAX_AGE_S:
        return None
    return data


@dataclass
class WebSession:
    """One browser's session: who it is signed in as, and its CSRF token."""

    secret: str = field(repr=False)
    nonce: str
    username: str | None = None
    token: str | None = field(default=None, repr=False)
    identity: Identity = ANONYMOUS
    changed: bool = False
    secure: bool = False

    @property
    def csrf(self) -> str:
        """The CSRF token forms of this session must send back."""
        return _mac(self.secret, "csrf" + self.nonce)

    def sign_in(self, identity: Identity, *, token: str | None = None) -> None:
        """Start a signed-in session (a new nonce, so old form tokens stop working)."""
        self.nonce = secrets.token_urlsafe(18)
        self.username = identity.username
        self.token = token
        self.identity = identity
        self.changed = True

    def sign_out(self) -> None:
        """End the session."""
        self.nonce = secrets.token_urlsafe(18)
        self.username = None
        self.token = None
        self.identity = ANONYMOUS
        self.changed = True

    def save(self, response: Response) -> None:
        """Set the cookie on `response` when the session is new or changed."""
        if not self.changed:
            return
        data = {"n": self.nonce, "u": self.username, "k": self.token, "iat": int(time.time())}
        response.set_cookie(
            COOKIE,
            sign(self.secret, data),
            max_age=MAX_AGE_S,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )


def _identity(services: Services, data: dict[str, Any]) -> Identity | None:
    """The identity a signed cookie names, or None when it no longer holds."""
    try:
        if isinstance(data.get("k"), str):
            return services.accounts.authenticate(data["k"])
        if isinstance(data.get("u"), str):
            return services.accounts.identity_for(data["u"])
    except MatterHubError:
        return None
    return ANONYMOUS


def get_session(request: Request, services: ServicesDep) -> WebSession:
    """This request's session (a fresh anonymous one when the cookie is missing or invalid)."""
    secure = services.settings.base_url.startswith("https://")
    data = unsign(services.secret, request.cookies.get(COOKIE))
    if data is not None:
        identity = _identity(services, data)
        if identity is not None:
            return WebSession(
                secret=services.secret,
                nonce=data["n"],
                username=identity.username,
                token=data.get("k") if isinstance(data.get("k"), str) else None,
                identity=identity,
                secure=secure,
            )
    return WebSession(
        secret=services.secret, nonce=secrets.token_urlsafe(18), changed=True, secure=secure
    )


CurrentSession = Annotated[WebSession, Depends(get_session)]


def require_csrf(session: WebSession, token: str | None) -> None:
    """Refuse a form post whose CSRF token is not this session's."""
    if not token or not hmac.compare_digest(token, session.csrf):
        raise PermissionDenied(
            "the form expired or came from another site; reload the page and try again",
            field="csrf_token",
        )
