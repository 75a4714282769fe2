"""Web sessions are server-side: sign-out and a password change end them; no token in a cookie.

Issue #14: a password session survived sign-out (a stateless 14-day cookie), signing in with an
API token put the raw token into the cookie, and anyone holding the server secret could sign an
administrator's cookie. These tests drive the real web routes in-process, as a browser would.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from matterhub.api import create_app
from matterhub.bootstrap import Services, build_services
from matterhub.catalog.models import User, UserSession, utcnow
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.settings import Settings
from matterhub.web.sessions import COOKIE

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def services(database_url: str, settings: Settings) -> Iterator[Services]:
    hub = Settings(data_dir=settings.data_dir, database_url=database_url)
    services = build_services(hub)
    services.accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    for name, admin in (("alice", False), ("admin", True)):
        services.accounts.create_user(SYSTEM_IDENTITY, name, is_admin=admin)
        services.accounts.set_password(SYSTEM_IDENTITY, name, PASSWORD)
    yield services
    services.close()


@pytest.fixture
async def browsers(services: Services) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two browsers, each with its own cookie jar."""
    app = create_app(services.settings, services=services)
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub.test")
        for _ in range(2)
    ]
    yield clients
    for client in clients:
        await client.aclose()


async def csrf(browser: httpx.AsyncClient) -> str:
    response = await browser.get("/signin")
    assert response.status_code == 200
    match = _CSRF.search(response.text)
    assert match
    return match.group(1)


async def sign_in(browser: httpx.AsyncClient, username: str = "alice") -> str:
    """Sign in with the password form; returns the session cookie the server set."""
    form = {"username": username, "password": PASSWORD, "csrf_token": await csrf(browser)}
    response = await browser.post("/signin", data=form)
    assert response.status_code == 303, response.text
    assert await signed_in_as(browser) == username
    return browser.cookies[COOKIE]


async def signed_in_as(browser: httpx.AsyncClient, cookie: str | None = None) -> str | None:
    """Who the home page says is signed in (with `cookie` instead of the jar's, if given)."""
    if cookie is None:
        response = await browser.get("/")
    else:
        jarless = httpx.AsyncClient(transport=browser._transport, base_url="http://hub.test")
        async with jarless:
            response = await jarless.get("/", headers={"Cookie": f"{COOKIE}={cookie}"})
    assert response.status_code == 200
    match = re.search(r"Signed in as <strong>([^<]+)</strong>", response.text)
    return match.group(1) if match else None


async def test_sign_out_ends_the_session_on_the_server(
    browsers: list[httpx.AsyncClient], services: Services
) -> None:
    browser = browsers[0]
    cookie = await sign_in(browser)
    page = await browser.get("/")
    token = _CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    response = await browser.post("/signout", data={"csrf_token": token})
    assert response.status_code == 303
    assert await signed_in_as(browser) is None
    # The old cookie, replayed (a copy kept by an attacker), no longer signs anyone in.
    assert await signed_in_as(browser, cookie) is None
    alice = services.accounts.get_user(SYSTEM_IDENTITY, "alice")
    assert services.sessions.count(alice.id) == 0


async def test_a_token_sign_in_keeps_no_token_in_the_cookie(
    browsers: list[httpx.AsyncClient], services: Services
) -> None:
    browser = browsers[0]
    token = services.accounts.create_token(SYSTEM_IDENTITY, "alice", name="web").token
    secret = token.rsplit("_", 1)[1]
    form = {"token": token, "csrf_token": await csrf(browser)}
    assert (await browser.post("/signin/token", data=form)).status_code == 303
    assert await signed_in_as(browser) == "alice"
    cookie = browser.cookies[COOKIE]
    decoded = ""
    for part in re.split(r"[.:]", cookie):
        with contextlib.suppress(ValueError):
            decoded += base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("latin-1")
    assert secret not in cookie and secret not in decoded
    assert "alice" not in cookie and "alice" not in decoded
    assert re.fullmatch(r"s\.[A-Za-z0-9_-]{43}", cookie), cookie


async def test_revoking_the_token_ends_the_session_it_started(
    browsers: list[httpx.AsyncClient], services: Services
) -> None:
    browser = browsers[0]
    token = services.accounts.create_token(SYSTEM_IDENTITY, "alice", name="web")
    form = {"token": token.token, "csrf_token": await csrf(browser)}
    assert (await browser.post("/signin/token", data=form)).status_code == 303
    cookie = browser.cookies[COOKIE]
    assert await signed_in_as(browser, cookie) == "alice"
    services.accounts.revoke_token(SYSTEM_IDENTITY, token.id)
    assert await signed_in_as(browser, cookie) is None


async def test_a_password_change_ends_every_session_of_the_user(
    browsers: list[httpx.AsyncClient], services: Services
) -> None:
    laptop, phone = browsers
    laptop_cookie = await sign_in(laptop)
    phone_cookie = await sign_in(phone)
    assert laptop_cookie != phone_cookie
    async with httpx.AsyncClient(transport=laptop._transport, base_url="http://hub.test") as desk:
        admin_cookie = await sign_in(desk, "admin")
    services.accounts.set_password(SYSTEM_IDENTITY, "alice", "a brand new password")
    assert await signed_in_as(laptop, laptop_cookie) is None
    assert await signed_in_as(phone, phone_cookie) is None
    # Other users' sessions are untouched.
    assert await signed_in_as(laptop, admin_cookie) == "admin"


async def test_a_disabled_account_is_signed_out(
    browsers: list[httpx.AsyncClient], services: Services
) -> None:
    cookie = await sign_in(browsers[0])
    with services.catalog.transaction() as session:
        session.execute(update(User).where(User.username == "alice").values(disabled_at=utcnow()))
    assert await signed_in_as(browsers[0], cookie) is None


async def test_expiry_is_enforced_by_the_server(
    browsers: list[httpx.AsyncClient], services: Services
) -> None:
    cookie = await sign_in(browsers[0])
    with services.catalog.transaction() as session:
        row = session.scalars(select(UserSession)).one()
        assert timedelta(days=13) < row.expires_at - utcnow() <= timedelta(days=14)
        row.expires_at = utcnow() - timedelta(seconds=1)
    # The browser still sends the cookie; the server no longer knows it.
    assert await signed_in_as(browsers[0], cookie) is None


async def test_the_catalog_keeps_only_a_hash_of_the_session_id(
    browsers: list[httpx.AsyncClient], services: Services
) -> None:
    cookie = await sign_in(browsers[0])
    session_id = cookie.removeprefix("s.")
    with services.catalog.transaction() as session:
        stored = session.scalars(select(UserSession.id_hash)).all()
    assert stored == [hashlib.sha256(session_id.encode()).hexdigest()]
    assert session_id not in stored


async def test_csrf_tokens_are_bound_to_one_session(browsers: list[httpx.AsyncClient]) -> None:
    first, second = browsers
    await sign_in(first)
    await sign_in(second)
    theirs = _CSRF.search((await second.get("/")).text).group(1)  # type: ignore[union-attr]
    response = await first.post("/signout", data={"csrf_token": theirs})
    assert response.status_code == 403
    assert await signed_in_as(first) == "alice"
    # A form token from before sign-in does not work after it.
    fresh = httpx.AsyncClient(transport=first._transport, base_url="http://hub.test")
    async with fresh:
        before = await csrf(fresh)
        await sign_in(fresh)
        assert (await fresh.post("/signout", data={"csrf_token": before})).status_code == 403


async def test_a_planted_cookie_never_becomes_signed_in(
    browsers: list[httpx.AsyncClient], services: Services
) -> None:
    browser = browsers[0]
    await csrf(browser)
    planted = browser.cookies[COOKIE]
    await sign_in(browser)
    assert browser.cookies[COOKIE] != planted
    assert await signed_in_as(browser, planted) is None


async def test_the_server_secret_does_not_sign_a_session(
    browsers: list[httpx.AsyncClient], services: Services
) -> None:
    # What the audit's servable did with a stolen secret: sign a cookie naming the admin.
    data = {"n": "x" * 24, "u": "admin", "k": None, "iat": int(time.time())}
    payload = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    mac = hmac.new(services.secret.encode(), payload.encode(), hashlib.sha256).digest()
    forged = f"{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert await signed_in_as(browsers[0], forged) is None
    # A well-formed but unknown session id is not signed in either.
    assert await signed_in_as(browsers[0], "s." + "A" * 43) is None
