"""Accounts, groups and tokens over the catalog, on every database backend present."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from matterhub.catalog import open_catalog
from matterhub.catalog.accounts import AccountService
from matterhub.catalog.models import ApiToken
from matterhub.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from matterhub.core.identity import ANONYMOUS, SYSTEM_IDENTITY, group_principal, user_principal
from matterhub.core.policy import Policy

# Cheap hashing parameters keep the suite fast; production uses argon2's defaults.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def accounts(database_url: str) -> Iterator[AccountService]:
    catalog = open_catalog(database_url)
    yield AccountService(catalog, Policy(), hasher=FAST)
    catalog.close()


def test_token_authenticates_as_its_user_with_groups(accounts: AccountService) -> None:
    user = accounts.create_user(SYSTEM_IDENTITY, "alice", email="alice@example.org")
    group = accounts.create_group(SYSTEM_IDENTITY, "lab")
    accounts.add_member(SYSTEM_IDENTITY, "lab", "alice")
    token = accounts.create_token(SYSTEM_IDENTITY, "alice", name="laptop")
    assert token.token.startswith(f"mh_{token.id}_")
    identity = accounts.authenticate(token.token)
    assert identity.username == "alice" and identity.user_id == user.id
    assert identity.principals == {"public", user_principal(user.id), group_principal(group.id)}
    assert not identity.is_admin
    # second call takes the verified-token path and must give the same answer
    assert accounts.authenticate(token.token) == identity


def test_only_the_hash_is_stored(accounts: AccountService) -> None:
    accounts.create_user(SYSTEM_IDENTITY, "bob")
    token = accounts.create_token(SYSTEM_IDENTITY, "bob")
    secret = token.token.split("_", 2)[2]
    with accounts._catalog.transaction() as session:
        stored = session.scalar(select(ApiToken.secret_hash).where(ApiToken.id == token.id))
    assert stored is not None and stored.startswith("$argon2id$") and secret not in stored
    listed = accounts.list_tokens(SYSTEM_IDENTITY, "bob")
    assert [t.id for t in listed] == [token.id]
    assert "token" not in listed[0].model_dump()


def test_revoked_token_stops_working_at_once(accounts: AccountService) -> None:
    accounts.create_user(SYSTEM_IDENTITY, "carol")
    token = accounts.create_token(SYSTEM_IDENTITY, "carol")
    accounts.authenticate(token.token)  # warm the verified cache: revocation must still win
    carol = accounts.authenticate(token.token)
    revoked = accounts.revoke_token(carol, token.id)
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthenticated, match="revoked"):
        accounts.authenticate(token.token)


def test_expired_token_is_refused(accounts: AccountService) -> None:
    accounts.create_user(SYSTEM_IDENTITY, "dave")
    token = accounts.create_token(SYSTEM_IDENTITY, "dave", expires_in=timedelta(microseconds=1))
    with pytest.raises(Unauthenticated, match="expired"):
        accounts.authenticate(token.token)


def test_never_expiring_token(accounts: AccountService) -> None:
    accounts.create_user(SYSTEM_IDENTITY, "erin")
    token = accounts.create_token(SYSTEM_IDENTITY, "erin", never_expires=True)
    assert token.expires_at is None
    assert accounts.authenticate(token.token).username == "erin"


@pytest.mark.parametrize("bad", ["nonsense", "mh_", "mh_abc", "xx_0011_secret"])
def test_malformed_tokens(accounts: AccountService, bad: str) -> None:
    with pytest.raises(Unauthenticated, match="malformed"):
        accounts.authenticate(bad)


def test_wrong_secret_and_unknown_id(accounts: AccountService) -> None:
    accounts.create_user(SYSTEM_IDENTITY, "frank")
    token = accounts.create_token(SYSTEM_IDENTITY, "frank")
    with pytest.raises(Unauthenticated, match="invalid"):
        accounts.authenticate(f"mh_{token.id}_not-the-secret")
    with pytest.raises(Unauthenticated, match="invalid"):
        accounts.authenticate("mh_0000000000000000_whatever")


def test_no_token_is_anonymous(accounts: AccountService) -> None:
    assert accounts.authenticate(None) == ANONYMOUS


def test_only_admins_create_users(accounts: AccountService) -> None:
    accounts.create_user(SYSTEM_IDENTITY, "gina")
    gina = accounts.authenticate(accounts.create_token(SYSTEM_IDENTITY, "gina").token)
    with pytest.raises(PermissionDenied):
        accounts.create_user(gina, "intruder")
    with pytest.raises(PermissionDenied):
        accounts.list_users(gina)
    with pytest.raises(PermissionDenied):
        accounts.create_token(gina, "someone-else")


def test_users_manage_their_own_tokens_only(accounts: AccountService) -> None:
    accounts.create_user(SYSTEM_IDENTITY, "hana")
    accounts.create_user(SYSTEM_IDENTITY, "ivan")
    hana = accounts.authenticate(accounts.create_token(SYSTEM_IDENTITY, "hana").token)
    ivan_token = accounts.create_token(SYSTEM_IDENTITY, "ivan")
    with pytest.raises(NotFound):
        accounts.revoke_token(hana, ivan_token.id)
    own = accounts.create_token(hana, "hana", name="second")
    assert {t.name for t in accounts.list_tokens(hana, "hana")} == {"api", "second"}
    assert accounts.revoke_token(hana, own.id).revoked_at is not None


def test_group_managers_add_members_others_cannot(accounts: AccountService) -> None:
    for name in ("mgr", "member", "outsider"):
        accounts.create_user(SYSTEM_IDENTITY, name)
    mgr = accounts.authenticate(accounts.create_token(SYSTEM_IDENTITY, "mgr").token)
    outsider = accounts.authenticate(accounts.create_token(SYSTEM_IDENTITY, "outsider").token)
    group = accounts.create_group(mgr, "team")
    assert group.members == ["mgr"]
    assert accounts.add_member(mgr, "team", "member").members == ["member", "mgr"]
    with pytest.raises(PermissionDenied):
        accounts.add_member(outsider, "team", "outsider")
    assert accounts.remove_member(mgr, "team", "member").members == ["mgr"]
    with pytest.raises(NotFound):
        accounts.get_group(outsider, "team")


def test_names_are_validated_and_unique(accounts: AccountService) -> None:
    with pytest.raises(InvalidInput) as caught:
        accounts.create_user(SYSTEM_IDENTITY, "bad name!")
    assert caught.value.field == "username"
    with pytest.raises(InvalidInput) as caught:
        accounts.create_user(SYSTEM_IDENTITY, "okname", email="not-an-email")
    assert caught.value.field == "email"
    accounts.create_user(SYSTEM_IDENTITY, "taken")
    with pytest.raises(Conflict):
        accounts.create_user(SYSTEM_IDENTITY, "taken")
    accounts.create_group(SYSTEM_IDENTITY, "g")
    with pytest.raises(Conflict):
        accounts.create_group(SYSTEM_IDENTITY, "g")


def test_ensure_admin_runs_once(accounts: AccountService) -> None:
    assert not accounts.has_admin()
    created = accounts.ensure_admin("root")
    assert created is not None
    user, token = created
    assert user.is_admin
    assert accounts.authenticate(token.token).is_admin
    assert accounts.ensure_admin("root") is None


def test_whoami_lists_group_names(accounts: AccountService) -> None:
    accounts.create_user(SYSTEM_IDENTITY, "jo")
    accounts.create_group(SYSTEM_IDENTITY, "crystal-lab")
    accounts.add_member(SYSTEM_IDENTITY, "crystal-lab", "jo")
    jo = accounts.authenticate(accounts.create_token(SYSTEM_IDENTITY, "jo").token)
    me = accounts.whoami(jo)
    assert me.authenticated and me.username == "jo" and me.groups == ["crystal-lab"]
    anon = accounts.whoami(ANONYMOUS)
    assert not anon.authenticated and anon.principals == ["public"]
