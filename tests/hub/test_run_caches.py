"""The run path's kept decisions over HTTP: changes of versions, rights and tokens apply at once.

The kept targets live for an hour here, so every change below is seen through invalidation,
never through expiry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from matterhub.client.describe import describe_function
from matterhub.core.identity import SYSTEM_IDENTITY
from tests.hub.conftest import Hub, hub_settings, import_function, running_hub, write_module
from tests.hub.test_run_api import post

pytestmark = pytest.mark.timeout(600)

SOURCE = '''
def shift(x: int) -> int:
    """Add {offset}."""
    return x + {offset}
'''


@pytest.fixture(scope="module")
def cache_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub whose run service keeps resolved targets for an hour and identities for a minute."""
    root = tmp_path_factory.mktemp("cachehub")
    with running_hub(hub_settings(root / "hub")) as hub:
        hub.services.runs.resolve_ttl_s = 3600.0
        hub.services.accounts._identity_ttl_s = 60.0
        yield hub


def publish(hub: Hub, folder: Path, name: str, offset: int, runnable_by: list[str]) -> None:
    """Publish `alice/<name>` (x + offset, memoization off) runnable by `runnable_by`."""
    module = write_module(folder / f"{name}{offset}", "shiftmod", SOURCE.format(offset=offset))
    description = describe_function(import_function(module, "shift"), name)
    description.set_title("Shift").set_creators(["Doe, Jane"]).set_example(1, 1 + offset)
    description.set_visibility(["public"], runnable_by=runnable_by)
    description.document["servable"]["options"] = {"memoize": False}
    build = hub.client("alice").publish_servable(description, wait=True, timeout=300)
    assert build["status"] == "succeeded", build["log"]


def run(hub: Hub, name: str, user: str | None = None) -> tuple[int, object]:
    answer = post(hub, f"/servables/alice/{name}/run", {"inputs": 1}, user)
    return answer.status_code, answer.json()


def test_a_new_version_runs_from_the_next_request(cache_hub: Hub, tmp_path: Path) -> None:
    publish(cache_hub, tmp_path, "shift", 10, ["public"])
    assert run(cache_hub, "shift") == (200, 11)
    assert run(cache_hub, "shift") == (200, 11)  # kept now
    publish(cache_hub, tmp_path, "shift", 20, ["public"])
    assert run(cache_hub, "shift") == (200, 21)


def test_rights_taken_away_by_a_new_version_apply_at_once(cache_hub: Hub, tmp_path: Path) -> None:
    publish(cache_hub, tmp_path, "guarded", 1, ["public"])
    assert run(cache_hub, "guarded", "carol") == (200, 2)
    assert run(cache_hub, "guarded") == (200, 2)
    publish(cache_hub, tmp_path, "guarded", 2, ["group:lab"])
    assert run(cache_hub, "guarded", "carol")[0] == 403
    assert run(cache_hub, "guarded")[0] == 403
    assert run(cache_hub, "guarded", "bob") == (200, 3)


def test_a_revoked_token_is_refused_by_the_next_run(cache_hub: Hub, tmp_path: Path) -> None:
    publish(cache_hub, tmp_path, "open", 0, ["public"])
    accounts = cache_hub.services.accounts
    token = accounts.create_token(SYSTEM_IDENTITY, "dave", name="short")
    cache_hub.tokens["dave-short"] = token.token
    assert run(cache_hub, "open", "dave-short") == (200, 1)
    assert accounts.kept_identity(token.token) is not None  # the fast path's identity
    accounts.revoke_token(SYSTEM_IDENTITY, token.id)
    status, body = run(cache_hub, "open", "dave-short")
    assert status == 401 and "revoked" in str(body)


def test_leaving_a_group_takes_its_run_rights_at_once(cache_hub: Hub, tmp_path: Path) -> None:
    publish(cache_hub, tmp_path, "labonly", 5, ["group:lab"])
    cache_hub.services.accounts.add_member(SYSTEM_IDENTITY, "lab", "dave")
    assert run(cache_hub, "labonly", "dave") == (200, 6)
    assert run(cache_hub, "labonly", "dave") == (200, 6)
    cache_hub.services.accounts.remove_member(SYSTEM_IDENTITY, "lab", "dave")
    assert run(cache_hub, "labonly", "dave")[0] == 403
