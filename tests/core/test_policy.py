"""Identities, principals and the access policy."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matterhub.core.errors import NotFound, PermissionDenied
from matterhub.core.identity import (
    ANONYMOUS,
    PUBLIC,
    SYSTEM_IDENTITY,
    Identity,
    group_principal,
    parse_principal,
    user_principal,
)
from matterhub.core.policy import Policy


@dataclass
class Thing:
    visible_to: list[str]
    runnable_by: list[str] = field(default_factory=list)
    owner_id: str | None = None


ALICE = Identity(user_id="a1", username="alice", group_ids=frozenset({"g1"}))
BOB = Identity(user_id="b2", username="bob")
ADMIN = Identity(user_id="ad", username="root", is_admin=True)
policy = Policy()


def test_principals_of_each_kind() -> None:
    assert ANONYMOUS.principals == {PUBLIC}
    assert ANONYMOUS.is_anonymous
    assert ALICE.principals == {PUBLIC, user_principal("a1"), group_principal("g1")}
    assert not SYSTEM_IDENTITY.is_anonymous
    assert SYSTEM_IDENTITY.bypasses_acl


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("public", ("public", None)),
        ("urn:matterhub:user:42", ("user", "42")),
        ("urn:matterhub:group:lab", ("group", "lab")),
    ],
)
def test_parse_principal(text: str, parsed: tuple[str, str | None]) -> None:
    assert parse_principal(text) == parsed


@pytest.mark.parametrize("text", ["", "urn:matterhub:user:", "user:1", "PUBLIC"])
def test_parse_principal_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a principal"):
        parse_principal(text)


def test_visibility_by_user_group_and_public() -> None:
    private = Thing(visible_to=[user_principal("a1")])
    lab = Thing(visible_to=[group_principal("g1")])
    open_ = Thing(visible_to=[PUBLIC])
    assert policy.allows(ALICE, private) and policy.allows(ALICE, lab)
    assert not policy.allows(BOB, private) and not policy.allows(BOB, lab)
    assert not policy.allows(ANONYMOUS, lab)
    assert policy.allows(ANONYMOUS, open_)
    assert policy.allows(ADMIN, private) and policy.allows(SYSTEM_IDENTITY, lab)


def test_run_needs_both_visibility_and_run_right() -> None:
    thing = Thing(visible_to=[PUBLIC], runnable_by=[group_principal("g1")])
    assert policy.allows(ANONYMOUS, thing, "read")
    assert not policy.allows(ANONYMOUS, thing, "run")
    assert policy.allows(ALICE, thing, "run")
    hidden = Thing(visible_to=[user_principal("b2")], runnable_by=[PUBLIC])
    assert not policy.allows(ALICE, hidden, "run")


def test_manage_is_for_the_owner() -> None:
    thing = Thing(visible_to=[PUBLIC], owner_id="b2")
    assert policy.allows(BOB, thing, "manage")
    assert not policy.allows(ALICE, thing, "manage")


def test_require_hides_what_cannot_be_seen() -> None:
    hidden = Thing(visible_to=[user_principal("b2")])
    with pytest.raises(NotFound):
        policy.require(ALICE, hidden, what="dataset")
    seen = Thing(visible_to=[PUBLIC], runnable_by=[])
    with pytest.raises(PermissionDenied, match="run"):
        policy.require(ALICE, seen, "run", what="servable")


principal = st.one_of(
    st.just(PUBLIC),
    st.sampled_from(["a1", "b2", "c3"]).map(user_principal),
    st.sampled_from(["g1", "g2"]).map(group_principal),
)
identity = st.builds(
    Identity,
    user_id=st.sampled_from(["a1", "b2", "c3"]) | st.none(),
    group_ids=st.frozensets(st.sampled_from(["g1", "g2"])),
    is_admin=st.booleans(),
)


@given(identity=identity, access=st.lists(principal, max_size=4))
def test_object_check_and_search_filter_agree(identity: Identity, access: list[str]) -> None:
    """The per-object rule and the search filter can never disagree."""
    thing = Thing(visible_to=access)
    assert policy.allows(identity, thing) == policy.search_filter(identity).matches(access)
