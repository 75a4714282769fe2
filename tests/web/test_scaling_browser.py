"""The workers section of a servable page in a real browser: owners and admins only."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from tests.web.conftest import Hub, _cli, shot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REF = "alice/bulk_modulus_delta"


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_owner_sees_workers_and_sets_bounds_others_do_not(new_page: Any, hub: Hub) -> None:
    # A call with a fresh input (not from the result cache) leaves a warm worker behind.
    ran = httpx.post(
        f"{hub.base}/api/servables/{REF}/run",
        json={"inputs": 100.0 + time.time() % 1000},
        headers=_bearer(hub.tokens["alice"]),
        timeout=120,
    )
    assert ran.status_code == 200, ran.text

    page = new_page()
    sign_in(page, "alice")
    page.goto(f"/servables/{REF}")
    section = page.locator("section#workers")
    assert section.get_by_role("heading", name="Workers").is_visible()
    rows = section.locator("table.workers-table tr.worker")
    assert rows.count() >= 1
    first = rows.first
    assert first.locator("td.state").inner_text() in ("idle", "busy")
    assert int(first.locator("td.calls").inner_text()) >= 1
    assert float(first.locator("td.memory").inner_text()) > 1.0  # MiB of the sandboxed tree
    shot(page, "servable-workers")

    # Set the bounds through the form: stored, in force, and what the API shows.
    form = section.locator("form#scaling-form")
    form.get_by_label("Min replicas").fill("1")
    form.get_by_label("Max replicas").fill("2")
    form.get_by_label("Target queue").fill("0.5")
    form.get_by_role("button", name="Set bounds").click()
    page.wait_for_url(re.compile(rf"/servables/{REF}#workers-h$"))
    assert page.locator("#bounds-in-force").inner_text().startswith("min 1 · max 2 · queue 0.5")
    view = httpx.get(
        f"{hub.base}/api/servables/{REF}/workers", headers=_bearer(hub.tokens["alice"])
    ).json()
    assert view["scaling"] == {"min_replicas": 1, "max_replicas": 2, "target_queue": 0.5}

    # Past the hub's cap: refused beside the form, naming the field; nothing stored.
    form = page.locator("form#scaling-form")
    form.get_by_label("Max replicas").fill("99")
    form.get_by_role("button", name="Set bounds").click()
    error = page.locator("#scaling-error")
    assert "max_replicas" in error.inner_text() and "cap" in error.inner_text()
    assert page.locator("#bounds-in-force").inner_text().startswith("min 1 · max 2")
    form = page.locator("form#scaling-form")
    form.get_by_label("Min replicas").fill("0")
    form.get_by_label("Max replicas").fill("1")
    form.get_by_label("Target queue").fill("1")
    form.get_by_role("button", name="Set bounds").click()
    page.wait_for_url(re.compile(r"#workers-h$"))
    assert page.locator("#bounds-in-force").inner_text().startswith("min 0 · max 1 · queue 1")

    # Anyone else sees the page without the section, and cannot post the form.
    anonymous = new_page()
    anonymous.goto(f"/servables/{REF}")
    assert anonymous.get_by_role("heading", level=1).is_visible()
    assert anonymous.locator("section#workers").count() == 0
    made = httpx.post(
        f"{hub.base}/api/users",
        json={"username": "erin", "email": "erin@example.org"},
        headers=_bearer(hub.tokens["admin"]),
    )
    assert made.status_code in (200, 201), made.text
    _cli(
        hub.data_dir,
        "user",
        "set-password",
        "erin",
        env={"MATTERHUB_NEW_PASSWORD": "erin-pw-12345"},
    )
    other = new_page()
    other.goto("/signin")
    other.get_by_label("Username").fill("erin")
    other.get_by_label("Password").fill("erin-pw-12345")
    other.get_by_role("button", name="Sign in", exact=True).click()
    other.wait_for_selector("text=Signed in as erin")
    other.goto(f"/servables/{REF}")
    assert other.get_by_role("heading", level=1).is_visible()
    assert other.locator("section#workers").count() == 0
    forbidden = httpx.put(
        f"{hub.base}/api/servables/{REF}/scaling",
        json={"max_replicas": 2},
        headers=_bearer(hub.tokens["admin"]),
    )
    assert forbidden.status_code == 200  # an admin may
    admin = new_page()
    sign_in(admin, "admin")
    admin.goto(f"/servables/{REF}")
    assert admin.locator("#bounds-in-force").inner_text().startswith("min 0 · max 2")
    httpx.put(
        f"{hub.base}/api/servables/{REF}/scaling", json={}, headers=_bearer(hub.tokens["alice"])
    ).raise_for_status()
