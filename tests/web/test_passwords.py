"""Web sign-in passwords: AccountService.set_password / check_password and the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from matterhub.catalog import open_catalog
from matterhub.catalog.accounts import AccountService
from matterhub.core.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from matterhub.core.identity import ANONYMOUS, SYSTEM_IDENTITY
from matterhub.core.policy import Policy

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def accounts(database_url: str) -> Iterator[AccountService]:
    catalog = open_catalog(database_url)
    yield AccountService(catalog, Policy(), hasher=FAST)
    catalog.close()


def test_password_signs_in_with_groups(accounts: AccountService) -> None:
    accounts.create_user(SYSTEM_IDENTITY, "alice")
    accounts.create_group(SYSTEM_IDENTITY, "lab")
    accounts.add_member(SYSTEM_IDENTITY, "lab", "alice")
    accounts.set_password(SYSTEM_IDENTITY, "alice", "correct horse")
    identity = accounts.check_password("alice", "correct horse")
    assert identity.username == "alice"
    assert len(identity.group_ids) == 1
    assert accounts.identity_for("alice") == identity


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong password"), ("nobody", "correct horse"), ("bob", "correct horse")],
)
def test_wrong_unknown_or_unset_passwords_are_one_error(
    accounts: AccountService, username: str, password: str
) -> None:
    accounts.create_user(SYSTEM_IDENTITY, "alice")
    accounts.create_user(SYSTEM_IDENTITY, "bob")  # no password: tokens only
    accounts.set_password(SYSTEM_IDENTITY, "alice", "correct horse")
    with pytest.raises(Unauthenticated, match="wrong username or password"):
        accounts.check_password(username, password)


def test_only_yourself_or_an_admin_sets_a_password(accounts: AccountService) -> None:
    accounts.create_user(SYSTEM_IDENTITY, "alice")
    accounts.create_user(SYSTEM_IDENTITY, "bob")
    alice = accounts.identity_for("alice")
    accounts.set_password(alice, "alice", "alice's secret")
    with pytest.raises(PermissionDenied):
        accounts.set_password(alice, "bob", "bob's new secret")
    with pytest.raises(Unauthenticated):
        accounts.set_password(ANONYMOUS, "bob", "bob's new secret")
    with pytest.raises(NotFound):
        accounts.set_password(SYSTEM_IDENTITY, "carol", "carol's secret")


def test_short_passwords_are_refused_naming_the_field(accounts: AccountService) -> None:
    accounts.create_user(SYSTEM_IDENTITY, "alice")
    with pytest.raises(InvalidInput) as info:
        accounts.set_password(SYSTEM_IDENTITY, "alice", "short")
    assert info.value.field == "password"


def test_disabled_accounts_cannot_sign_in(accounts: AccountService, database_url: str) -> None:
    from sqlalchemy import update

    from matterhub.catalog.models import User, utcnow

    accounts.create_user(SYSTEM_IDENTITY, "alice")
    accounts.set_password(SYSTEM_IDENTITY, "alice", "correct horse")
    catalog = open_catalog(database_url)
    try:
        with catalog.transaction() as session:
            session.execute(update(User).values(disabled_at=utcnow()))
    finally:
        catalog.close()
    with pytest.raises(Unauthenticated, match="disabled"):
        accounts.check_password("alice", "correct horse")
    with pytest.raises(Unauthenticated):
        accounts.identity_for("alice")


def test_cli_sets_a_password_that_signs_in(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from matterhub.bootstrap import build_services
    from matterhub.cli.main import app
    from matterhub.settings import Settings

    data_dir = tmp_path
    runner = CliRunner()
    base = ["--data-dir", str(data_dir)]
    assert runner.invoke(app, [*base, "user", "add", "alice"]).exit_code == 0
    result = runner.invoke(
        app, [*base, "user", "set-password", "alice"], input="correct horse\ncorrect horse\n"
    )
    assert result.exit_code == 0, result.output
    assert "Password set for alice" in result.output
    result = runner.invoke(
        app,
        [*base, "user", "set-password", "alice"],
        env={"MATTERHUB_NEW_PASSWORD": "short"},
    )
    assert result.exit_code == 2
    assert "password" in result.output
    services = build_services(Settings(data_dir=data_dir))
    try:
        assert services.accounts.check_password("alice", "correct horse").username == "alice"
    finally:
        services.close()
