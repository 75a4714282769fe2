"""A real `matterhub serve` with the demo's data, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_serve import MATTERHUB, free_port, start, stop, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("MATTERHUB_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts"))
SHOTS = ARTIFACTS / "web"
PASSWORDS = {"admin": "admin-password-1", "alice": "alice-password-1"}


@dataclass(frozen=True)
class Hub:
    """The served hub: its URL, data folder and the demo users' tokens."""

    base: str
    data_dir: Path
    tokens: dict[str, str]


def _cli(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
    result = subprocess.run(
        [*MATTERHUB, "--data-dir", str(data_dir), *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """The demo hub (dcdft and g2 published through Connect), with passwords, served."""
    pytest.importorskip("ase", reason="the demo datasets need matterhub[demo]")
    data_dir = tmp_path_factory.mktemp("web") / "hub"
    _cli(data_dir, "demo", "--no-serve")
    for user, password in PASSWORDS.items():
        _cli(data_dir, "user", "set-password", user, env={"MATTERHUB_NEW_PASSWORD": password})
    tokens = {
        "admin": (data_dir / "demo-admin-token").read_text().strip(),
        "alice": (data_dir / "demo-alice-token").read_text().strip(),
    }
    port = free_port()
    proc = start(["serve"], data_dir, port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_healthy(base, proc).status_code == 200
        yield Hub(base, data_dir, tokens)
    finally:
        if proc.poll() is None:
            stop(proc)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's, not Playwright's download); no sandbox when root."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any, hub: Hub) -> Iterator[Any]:
    """A factory of pages, each in a fresh browser context (its own cookies)."""
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context(
            base_url=hub.base, viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def shot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot of the page under the test artefacts folder."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def sign_in(page: Any, username: str) -> None:
    """Sign in through the form, as a person would."""
    page.goto("/signin")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORDS[username])
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_selector(f"text=Signed in as {username}")
