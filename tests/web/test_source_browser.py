"""Publish from git in a real browser: the form on "My servables" fetches a repository the
operator allows (`git+file://` inside MATTERHUB_CONNECT_ALLOWED_ROOTS), the build page follows
the build, and the servable's page shows the commit and each file's checksum."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_serve import MATTERHUB, free_port, stop, wait_healthy
from tests.hub.conftest import ADD_SOURCE
from tests.hub.git_server import GitRepo
from tests.hub.test_sources import document
from tests.web.conftest import _cli, shot

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
USER = ("maker", "maker-password-1")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, GitRepo]]:
    """`matterhub serve` allowed to collect from one folder, holding a git repository."""
    repo = GitRepo(tmp_path / "src")
    repo.commit({"dlhub.json": json.dumps(document("web-adder")), "adder.py": ADD_SOURCE}, "v1")
    repo.tag("v1")
    data_dir = tmp_path / "hub"
    _cli(data_dir, "user", "add", USER[0])
    _cli(data_dir, "user", "set-password", USER[0], env={"MATTERHUB_NEW_PASSWORD": USER[1]})
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
    env["MATTERHUB_CONNECT_ALLOWED_ROOTS"] = json.dumps([str(repo.base)])
    port = free_port()
    proc = subprocess.Popen(
        [*MATTERHUB, "--data-dir", str(data_dir), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_healthy(base, proc).status_code == 200
        yield base, repo
    finally:
        if proc.poll() is None:
            stop(proc)


def test_publish_from_git_in_the_browser(browser: Any, served: tuple[str, GitRepo]) -> None:
    base, repo = served
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        page.goto("/signin")
        page.get_by_label("Username").fill(USER[0])
        page.get_by_label("Password").fill(USER[1])
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_selector(f"text=Signed in as {USER[0]}")

        # A source the hub cannot fetch: the page says so, naming the field.
        page.goto("/me/servables")
        page.get_by_label("Git repository or URL").fill(f"git+file://{repo.base}/absent.git")
        page.get_by_role("button", name="Fetch and publish").click()
        alert = page.get_by_role("alert").inner_text()
        assert "absent.git" in alert and "(field source)" in alert, alert

        page.goto("/me/servables")
        page.get_by_label("Git repository or URL").fill(f"git+file://{repo.bare}")
        page.get_by_label("Branch, tag or commit").fill("v1")
        shot(page, "publish-from-git")
        page.get_by_role("button", name="Fetch and publish").click()
        page.wait_for_url(re.compile(rf"/servables/{USER[0]}/web-adder/builds/"))
        page.wait_for_function(
            "document.querySelector('#build-status').textContent.trim() === 'succeeded'",
            timeout=240_000,
        )
        page.goto(f"/servables/{USER[0]}/web-adder")
        commit = repo.git("rev-parse", "v1")
        assert page.locator("#source-commit").inner_text() == commit
        sha = hashlib.sha256(ADD_SOURCE.encode()).hexdigest()
        assert (
            page.locator("#source tr", has_text="adder.py").locator("code.muted").inner_text()
            == sha
        )
        shot(page, "servable-source")
    finally:
        context.close()
