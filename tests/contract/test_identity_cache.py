"""The kept identities of verified tokens: one catalog read per burst, never a stale decision here."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import event

from matterhub.catalog import Catalog, open_catalog
from matterhub.catalog.accounts import AccountService
from matterhub.core.errors import Unauthenticated
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.core.policy import Policy
from tests.contract.test_accounts import FAST


@pytest.fixture
def catalog(database_url: str) -> Iterator[Catalog]:
    catalog = open_catalog(database_url)
    yield catalog
    catalog.close()


def statements(catalog: Catalog) -> list[str]:
    """A list that collects every SQL statement the catalog runs from now on."""
    seen: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        seen.append(sql)

    event.listen(catalog.engine, "before_cursor_execute", count)
    return seen


def test_a_kept_identity_costs_no_catalog_read(catalog: Catalog) -> None:
    accounts = AccountService(catalog, Policy(), hasher=FAST, identity_ttl_s=60)
    accounts.create_user(SYSTEM_IDENTITY, "alice")
    token = accounts.create_token(SYSTEM_IDENTITY, "alice").token
    first = accounts.authenticate(token)
    seen = statements(catalog)
    for _ in range(5):
        assert accounts.authenticate(token) == first
    assert seen == []


def test_revoking_a_kept_token_refuses_it_at_once(catalog: Catalog) -> None:
    accounts = AccountService(catalog, Policy(), hasher=FAST, identity_ttl_s=60)
    accounts.create_user(SYSTEM_IDENTITY, "alice")
    token = accounts.create_token(SYSTEM_IDENTITY, "alice")
    assert accounts.authenticate(token.token).username == "alice"
    accounts.revoke_token(SYSTEM_IDENTITY, token.id)
    with pytest.raises(Unauthenticated, match="revoked"):
        accounts.authenticate(token.token)


def test_membership_changes_reach_a_kept_identity_at_once(catalog: Catalog) -> None:
    accounts = AccountService(catalog, Policy(), hasher=FAST, identity_ttl_s=60)
    accounts.create_user(SYSTEM_IDENTITY, "bob")
    group = accounts.create_group(SYSTEM_IDENTITY, "lab")
    token = accounts.create_token(SYSTEM_IDENTITY, "bob").token
    assert group.id not in accounts.authenticate(token).group_ids
    accounts.add_member(SYSTEM_IDENTITY, "lab", "bob")
    assert group.id in accounts.authenticate(token).group_ids
    accounts.remove_member(SYSTEM_IDENTITY, "lab", "bob")
    assert group.id not in accounts.authenticate(token).group_ids


def test_a_revocation_by_another_process_takes_effect_within_the_ttl(catalog: Catalog) -> None:
    server = AccountService(catalog, Policy(), hasher=FAST, identity_ttl_s=0.3)
    cli = AccountService(catalog, Policy(), hasher=FAST)  # e.g. `matterhub token revoke`
    server.create_user(SYSTEM_IDENTITY, "alice")
    token = server.create_token(SYSTEM_IDENTITY, "alice")
    server.authenticate(token.token)
    cli.revoke_token(SYSTEM_IDENTITY, token.id)
    time.sleep(0.35)
    with pytest.raises(Unauthenticated, match="revoked"):
        server.authenticate(token.token)


def test_a_kept_identity_ends_with_its_token(catalog: Catalog) -> None:
    accounts = AccountService(catalog, Policy(), hasher=FAST, identity_ttl_s=60)
    accounts.create_user(SYSTEM_IDENTITY, "alice")
    token = accounts.create_token(SYSTEM_IDENTITY, "alice", expires_in=timedelta(seconds=1))
    accounts.authenticate(token.token)
    time.sleep(1.1)
    with pytest.raises(Unauthenticated, match="expired"):
        accounts.authenticate(token.token)
