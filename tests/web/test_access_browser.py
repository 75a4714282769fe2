"""Access requests in a real browser: ask on the servable's page, the owner declines with a
reason, the requester asks again, the owner grants, and the requester runs it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from matterhub import Client
from tests.hub.conftest import function_servable
from tests.web.conftest import Hub, _cli, shot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REF = "alice/gated_adder"
READER = ("reader", "reader-password-1")


def _sign_in_reader(page: Any) -> None:
    page.goto("/signin")
    page.get_by_label("Username").fill(READER[0])
    page.get_by_label("Password").fill(READER[1])
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_selector(f"text=Signed in as {READER[0]}")


def test_request_decline_ask_again_grant_and_run(new_page: Any, hub: Hub, tmp_path: Path) -> None:
    description = function_servable(tmp_path / "s", "gated_adder")
    description.set_visibility(["public"], runnable_by=["user:alice"])
    with Client(hub.base, hub.tokens["alice"]) as alice:
        build = alice.publish_servable(description, wait=True, timeout=240)
    assert build["status"] == "succeeded", build["log"]
    _cli(hub.data_dir, "user", "add", READER[0])
    _cli(
        hub.data_dir,
        "user",
        "set-password",
        READER[0],
        env={"MATTERHUB_NEW_PASSWORD": READER[1]},
    )

    # Anonymous: told to sign in to ask; no form.
    anonymous = new_page()
    anonymous.goto(f"/servables/{REF}")
    assert (
        "Sign in to request access from alice" in anonymous.locator("#access-signin").inner_text()
    )
    assert anonymous.locator("#access-form").count() == 0

    # The reader sees it, may not run it, and asks with a message.
    reader = new_page()
    _sign_in_reader(reader)
    reader.goto(f"/servables/{REF}")
    assert reader.get_by_role("button", name="Run", exact=True).is_disabled()
    reader.get_by_label("Why you need to run it").fill("To add up my lattice constants.")
    reader.get_by_role("button", name="Request access").click()
    reader.wait_for_url(re.compile(rf"/servables/{REF}#access$"))
    assert "pending" in reader.locator("#access-status").inner_text()
    assert reader.locator("#access-form").count() == 0  # one pending request at a time
    shot(reader, "access-requested")

    # The owner sees it waiting on the servable's page and on her requests page; declines.
    owner = new_page()
    sign_in(owner, "alice")
    owner.goto(f"/servables/{REF}")
    assert "1 pending access request" in owner.locator("#access-pending").inner_text()
    owner.locator("#access-pending a").click()
    owner.wait_for_url(re.compile(r"/me/access-requests$"))
    row = owner.locator("table.pending tr", has_text="reader")
    assert "To add up my lattice constants." in row.locator(".message").inner_text()
    shot(owner, "access-requests-owner")
    row.get_by_label("Reason").fill("Tell me which lab you are in first.")
    row.get_by_role("button", name="Decline").click()
    owner.wait_for_url(re.compile(r"/me/access-requests#request-"))
    assert owner.locator("#no-pending").is_visible()
    decided = owner.locator("table.decided tr", has_text="reader").locator(".decision")
    assert re.match(
        r"declined by alice \d{4}-\d\d-\d\d \d\d:\d\d: Tell me which lab you are in first\.$",
        decided.inner_text(),
    )

    # The reader reads the decision and its reason, and asks again.
    reader.goto(f"/servables/{REF}")
    status = reader.locator("#access-status").inner_text()
    assert "declined by alice" in status
    assert reader.locator("#access-reason").inner_text() == "Tell me which lab you are in first."
    reader.get_by_label("Why you need to run it").fill("Materials lab, group of Dr. X.")
    reader.get_by_role("button", name="Request access").click()
    reader.wait_for_url(re.compile(rf"/servables/{REF}#access$"))
    reader.get_by_role("link", name="Access requests").click()
    mine = reader.locator("table.mine").inner_text()
    assert "pending" in mine and "declined by alice" in mine

    # The owner grants it to the user.
    owner.goto("/me/access-requests")
    row = owner.locator("table.pending tr", has_text="reader")
    assert row.get_by_label("Grant to").input_value() == "user"
    row.get_by_role("button", name="Grant").click()
    owner.wait_for_url(re.compile(r"/me/access-requests#request-"))
    assert "granted by alice" in owner.locator("table.decided").inner_text()
    assert "to user:reader" in owner.locator("table.decided").inner_text()

    # The reader may now run it, from the page, at once.
    reader.goto(f"/servables/{REF}")
    assert "granted by alice" in reader.locator("#access-status").inner_text()
    assert (
        reader.locator("#cannot-run").count() == 0 and reader.locator("#access-form").count() == 0
    )
    reader.locator("#try-inputs").fill("[1.5, 2.5]")
    reader.get_by_role("button", name="Run", exact=True).click()
    reader.wait_for_selector("#try-output")
    assert reader.locator("#try-output").inner_text() == "4.0"
    shot(reader, "access-granted-run")

    # A form post without the session's CSRF token decides nothing.
    owner.goto("/me/access-requests")
    forged = owner.request.post(
        "/me/access-requests/none/decline", form={"reason": "x", "csrf_token": "wrong"}
    )
    assert forged.status == 403
