"""Access requests end to end: ask, see pending, grant or decline, notify, run at once, keep.

Real catalog (SQLite and PostgreSQL), real builds and runs in the sandbox, the real notifiers
(an SMTP fake on loopback receives the mails), the SDK over the in-process app.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path

import pytest
from sqlalchemy import select

from matterhub.catalog.models import AccessRequest, User
from matterhub.client.errors import APIError
from matterhub.core.identity import SYSTEM_IDENTITY
from tests.fakes.smtp import FakeSMTP
from tests.hub.conftest import Hub, function_servable, hub_settings, start_hub


@pytest.fixture
def smtp() -> Iterator[FakeSMTP]:
    server = FakeSMTP()
    yield server
    server.close()


@pytest.fixture
def mailhub(tmp_path: Path, database_url: str, smtp: FakeSMTP) -> Iterator[Hub]:
    """A hub whose users have e-mail addresses and whose notifier mails through the fake."""
    settings = hub_settings(
        tmp_path / "hub", database_url, smtp_url=smtp.url, base_url="http://hub.test"
    )
    for hub in start_hub(settings):
        with hub.services.catalog.transaction() as session:
            for user in session.scalars(select(User)).all():
                user.email = f"{user.username}@example.org"
        yield hub


def _publish(hub: Hub, tmp_path: Path, name: str, visible: list[str], runnable: list[str]) -> None:
    description = function_servable(tmp_path / name, name).set_visibility(visible, runnable)
    build = hub.client("alice").publish_servable(description, wait=True, timeout=600)
    assert build["status"] == "succeeded", build["log"]


def _error(call: Callable[[], object]) -> APIError:
    with pytest.raises(APIError) as caught:
        call()
    return caught.value


def _mail(smtp: FakeSMTP, to: str, event: str, timeout: float = 10.0) -> Message:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in smtp.messages:
            if message["To"] == to and message["Subject"].endswith(event):
                return message
        time.sleep(0.05)
    raise AssertionError(f"no {event} mail to {to}: {[m['Subject'] for m in smtp.messages]}")


def test_request_grant_run_keep_and_revoke(mailhub: Hub, tmp_path: Path, smtp: FakeSMTP) -> None:
    hub = mailhub
    _publish(
        hub, tmp_path, "restricted", ["public"], ["user:alice"]
    )  # everyone sees, only alice runs
    carol, alice, dave = hub.client("carol"), hub.client("alice"), hub.client("dave")
    ref = "alice/restricted"

    # carol sees it but may not run it, and the refusal says how to ask.
    assert carol.describe_servable(ref)["name"] == "restricted"
    refused = _error(lambda: carol.run(ref, [1.0, 2.0, 3.0]))
    assert refused.status == 403
    assert "request access" in refused.detail
    assert f"/api/servables/{ref}/access-requests" in refused.detail

    asked = carol.request_access(ref, "  for my thesis on alloys  ")
    assert asked["status"] == "pending" and asked["requester"] == "carol"
    assert asked["message"] == "for my thesis on alloys" and asked["servable"] == ref
    mail = _mail(smtp, "alice@example.org", "access.requested")
    assert "carol asks for the right to run alice/restricted" in mail.get_payload()
    assert "for my thesis on alloys" in mail.get_payload()
    assert "http://hub.test/me/access-requests" in mail.get_payload()

    duplicate = _error(lambda: carol.request_access(ref, "again"))
    assert (duplicate.status, duplicate.field) == (409, "servable")
    assert asked["id"] in duplicate.detail

    # alice sees it pending; carol sees her own; dave (sees the servable) sees none of it.
    pending = alice.access_requests(ref, status="pending")
    assert [(r["id"], r["requester"]) for r in pending] == [(asked["id"], "carol")]
    assert [r["id"] for r in alice.access_requests(role="owner")] == [asked["id"]]
    assert alice.access_requests() == []  # alice asked nobody
    assert [r["id"] for r in carol.access_requests()] == [asked["id"]]
    assert [r["id"] for r in carol.access_requests(ref)] == [asked["id"]]
    assert dave.access_requests(ref) == [] and dave.access_requests(role="owner") == []
    assert alice.access_requests(ref, status="granted") == []

    # Only the owner decides: the requester is refused, a stranger finds nothing.
    assert _error(lambda: carol.grant_access(asked["id"])).status == 403
    assert _error(lambda: dave.grant_access(asked["id"])).status == 404
    assert _error(lambda: dave.decline_access(asked["id"], "no")).status == 404
    assert _error(lambda: dave.access_request(asked["id"])).status == 404
    assert _error(lambda: alice.grant_access("no-such-request")).status == 404

    granted = alice.grant_access(asked["id"])
    assert granted["status"] == "granted" and granted["granted_to"] == "user:carol"
    assert granted["decided_by"] == "alice" and granted["decided_at"] is not None
    assert _mail(smtp, "carol@example.org", "access.granted")
    # The very next run sees the right (no stale resolution kept).
    assert carol.run(ref, [1.0, 2.0, 3.0]) == 6.0
    assert _error(lambda: alice.grant_access(asked["id"])).status == 409
    assert _error(lambda: carol.request_access(ref)).detail.endswith("its runnable_by lists you")
    assert dave.run is not None and _error(lambda: dave.run(ref, [1.0])).status == 403

    # A new version (whose document still says "owner only") keeps carol's granted right.
    _publish(hub, tmp_path / "v2", "restricted", ["public"], ["user:alice"])
    described = carol.describe_servable(ref)
    assert len(described["versions"]) == 2
    carol_urn = f"urn:matterhub:user:{hub.services.accounts.identity_for('carol').user_id}"
    assert carol_urn in described["runnable_by"]
    assert carol.run(ref, [1.0, 2.0, 3.0]) == 6.0

    # Revoking takes the right back for the next run, although carol's resolution was cached.
    revoked = alice.revoke_access(asked["id"], "the course ended")
    assert revoked["status"] == "revoked" and revoked["reason"] == "the course ended"
    assert _error(lambda: carol.run(ref, [1.0, 2.0, 3.0])).status == 403
    assert carol_urn not in carol.describe_servable(ref)["runnable_by"]
    assert "the course ended" in _mail(smtp, "carol@example.org", "access.revoked").get_payload()

    # Every decision is a row.
    with hub.services.catalog.transaction() as session:
        row = session.get(AccessRequest, asked["id"])
        assert row is not None
        assert (row.status, row.granted_to, row.reason) == (
            "revoked",
            carol_urn,
            "the course ended",
        )
        assert row.decided_by == hub.services.accounts.identity_for("alice").user_id


def test_decline_groups_bounds_and_refusals(mailhub: Hub, tmp_path: Path, smtp: FakeSMTP) -> None:
    hub = mailhub
    _publish(hub, tmp_path, "gated", ["public"], ["user:alice"])
    _publish(hub, tmp_path, "open", ["public"], ["public"])
    _publish(hub, tmp_path, "hidden", ["group:lab"], ["user:alice"])
    alice, bob, carol, dave = (hub.client(u) for u in ("alice", "bob", "carol", "dave"))
    ref = "alice/gated"

    # Bounds name the field.
    too_long = _error(lambda: carol.request_access(ref, "x" * 2001))
    assert (too_long.status, too_long.field) == (422, "message")
    # Refusals: unseen is missing; nobody to grant to; already runnable (saying why).
    assert _error(lambda: carol.request_access("alice/hidden")).status == 404
    assert _error(lambda: carol.request_access("alice/nothing")).status == 404
    assert _error(lambda: hub.client(None).request_access(ref)).status == 401
    own = _error(lambda: alice.request_access(ref))
    assert (own.status, own.detail) == (409, f"you can already run {ref}: you own it")
    assert _error(lambda: carol.request_access("alice/open")).detail.endswith("everyone may run it")
    anonymous = _error(lambda: hub.client(None).run(ref, [1.0]))
    assert anonymous.status == 403 and "sign in and request access" in anonymous.detail
    bad_status = _error(lambda: alice.access_requests(ref, status="maybe"))
    assert (bad_status.status, bad_status.field) == (422, "status")

    # Decline: a reason is required and bounded; carol hears it and still cannot run.
    asked = carol.request_access(ref, "please")
    missing = _error(lambda: alice.decline_access(asked["id"], "  "))
    assert (missing.status, missing.field) == (422, "reason")
    long_reason = _error(lambda: alice.decline_access(asked["id"], "y" * 2001))
    assert (long_reason.status, long_reason.field) == (422, "reason")
    declined = alice.decline_access(asked["id"], "only for the lab's members")
    assert declined["status"] == "declined" and declined["reason"] == "only for the lab's members"
    mail = _mail(smtp, "carol@example.org", "access.declined")
    assert "only for the lab's members" in mail.get_payload()
    assert _error(lambda: carol.run(ref, [1.0])).status == 403
    assert _error(lambda: alice.grant_access(asked["id"])).status == 409  # decided already
    assert carol.access_requests(ref)[0]["status"] == "declined"
    # A declined request does not block asking again (one pending at a time).
    again = carol.request_access(ref, "I joined the lab")
    assert carol.withdraw_access_request(again["id"])["status"] == "withdrawn"
    assert _error(lambda: alice.grant_access(again["id"])).status == 409

    # Group grants: only to a group the owner belongs to, and which holds the requester.
    asked = bob.request_access(ref, "for the lab")
    not_mine = _error(lambda: alice.grant_access(asked["id"], to="group:lab"))
    assert (not_mine.status, not_mine.field) == (422, "to")
    assert _error(lambda: alice.grant_access(asked["id"], to="public")).field == "to"
    assert _error(lambda: alice.grant_access(asked["id"], to="user:dave")).field == "to"
    hub.services.accounts.create_group(SYSTEM_IDENTITY, "others")
    hub.services.accounts.add_member(SYSTEM_IDENTITY, "others", "alice")
    outside = _error(lambda: alice.grant_access(asked["id"], to="group:others"))
    assert (outside.status, outside.field) == (
        422,
        "to",
    ) and "bob is not a member" in outside.detail
    hub.services.accounts.add_member(SYSTEM_IDENTITY, "lab", "alice")
    granted = alice.grant_access(asked["id"], to="group:lab")
    assert granted["granted_to"] == "group:lab"
    assert bob.run(ref, [1.0, 2.0, 3.0]) == 6.0  # a member of the group runs
    assert _error(lambda: carol.run(ref, [1.0])).status == 403  # an outsider still does not
    assert _error(lambda: dave.run(ref, [1.0])).status == 403
