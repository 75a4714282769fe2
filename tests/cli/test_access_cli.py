"""`matterhub servable access …` over real HTTP: request, list, grant (user or group), decline.

The app runs under uvicorn on a loopback port in this process (a real build of a real servable,
the real notifiers mailing through the SMTP fake); the commands run through Typer's runner with
`MATTERHUB_URL` / `MATTERHUB_TOKEN` set per user, as in a user's terminal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from matterhub.cli.main import app
from matterhub.client.errors import PermissionDeniedError
from tests.fakes.smtp import FakeSMTP
from tests.hub.conftest import function_servable, hub_settings
from tests.hub.served import Served, body, mail, serve

runner = CliRunner()


@pytest.fixture
def smtp() -> Iterator[FakeSMTP]:
    server = FakeSMTP()
    yield server
    server.close()


@pytest.fixture
def served(tmp_path: Path, smtp: FakeSMTP) -> Iterator[Served]:
    settings = hub_settings(tmp_path / "hub", smtp_url=smtp.url, base_url="http://hub.test")
    with serve(settings) as hub:
        yield hub


@pytest.fixture
def cli(served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """`cli(user, *args)`: run `matterhub …` as `user` against the served hub."""
    monkeypatch.setenv("MATTERHUB_CLIENT_CONFIG", str(tmp_path / "cfg" / "client.json"))
    monkeypatch.setenv("COLUMNS", "250")

    def run(user: str, *args: str) -> Any:
        env = {"MATTERHUB_URL": served.base, "MATTERHUB_TOKEN": served.tokens[user]}
        return runner.invoke(app, list(args), env=env)

    return run


def test_request_list_grant_decline_through_the_cli(
    served: Served, cli: Callable[..., Any], smtp: FakeSMTP, tmp_path: Path
) -> None:
    ref = "alice/restricted"
    description = function_servable(tmp_path / "s", "restricted")
    description.set_visibility(["public"], runnable_by=["user:alice"])
    with served.client("alice") as alice:
        build = alice.publish_servable(description, wait=True, timeout=600)
    assert build["status"] == "succeeded", build["log"]
    with served.client("carol") as carol, pytest.raises(PermissionDeniedError) as refused:
        carol.run(ref, [1.0, 2.0])
    assert f"matterhub servable access request {ref}" in refused.value.detail

    # carol asks; alice is mailed (with carol's message) and sees it pending.
    asked = cli("carol", "servable", "access", "request", ref, "--message", "for my thesis")
    assert asked.exit_code == 0, asked.output
    assert f"by carol for {ref}: pending" in asked.output
    notice = mail(smtp, "alice@example.org", "access.requested")
    assert "carol asks for the right to run alice/restricted: for my thesis" in body(notice)
    assert "http://hub.test/me/access-requests" in body(notice)
    again = cli("carol", "servable", "access", "request", ref, "--message", "again")
    assert again.exit_code == 2 and "already asked" in again.output
    assert "Traceback" not in again.output

    listed = cli("alice", "servable", "access", "list", "--pending", "--json")
    assert listed.exit_code == 0, listed.output
    (pending,) = json.loads(listed.output)
    assert (pending["requester"], pending["status"], pending["message"]) == (
        "carol",
        "pending",
        "for my thesis",
    )
    table = cli("alice", "servable", "access", "list", "--pending")
    assert "Requests on your servables" in table.output and pending["id"] in table.output
    assert "Your requests: none" in table.output
    # Only the owner decides: carol cannot grant her own request.
    self_grant = cli("carol", "servable", "access", "grant", pending["id"])
    assert self_grant.exit_code == 2 and "only the servable's owner" in self_grant.output

    granted = cli("alice", "servable", "access", "grant", pending["id"])
    assert granted.exit_code == 0, granted.output
    assert "granted to user:carol by alice" in granted.output
    assert "You may now run alice/restricted" in body(mail(smtp, "carol@example.org", "granted"))
    with served.client("carol") as carol:
        assert carol.run(ref, [1.0, 2.0]) == 3.0
    mine = json.loads(cli("carol", "servable", "access", "list", "--mine", "--json").output)
    assert [(r["status"], r["decided_by"], r["granted_to"]) for r in mine] == [
        ("granted", "alice", "user:carol")
    ]
    assert mine[0]["decided_at"] >= mine[0]["created_at"]

    # bob asks; alice declines with a reason; bob reads it in the list and in his mail.
    bob_asked = json.loads(
        cli("bob", "servable", "access", "request", ref, "-m", "please", "--json").output
    )
    no_reason = cli("alice", "servable", "access", "decline", bob_asked["id"])
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    too_long = cli("alice", "servable", "access", "decline", bob_asked["id"], "-r", "x" * 2001)
    assert too_long.exit_code == 2 and "422" in too_long.output
    assert "reason is 2001 characters long; at most 2000" in too_long.output
    declined = cli("alice", "servable", "access", "decline", bob_asked["id"], "-r", "ask Dr. X")
    assert declined.exit_code == 0, declined.output
    assert "declined by alice" in declined.output and "ask Dr. X" in declined.output
    assert "declined: ask Dr. X" in body(mail(smtp, "bob@example.org", "access.declined"))
    bobs = cli("bob", "servable", "access", "list", "--mine")
    assert "declined by alice" in bobs.output and "ask Dr. X" in bobs.output
    with served.client("bob") as bob, pytest.raises(PermissionDeniedError):
        bob.run(ref, [1.0])

    # bob asks again (the decline is on record); alice grants to their group lab instead.
    long_message = cli("bob", "servable", "access", "request", ref, "-m", "y" * 2001)
    assert long_message.exit_code == 2 and "message is 2001 characters long" in long_message.output
    second = json.loads(cli("bob", "servable", "access", "request", ref, "--json").output)
    to_group = cli("alice", "servable", "access", "grant", second["id"], "--group", "lab")
    assert to_group.exit_code == 0 and "granted to group:lab" in to_group.output
    with served.client("bob") as bob:
        assert bob.run(ref, [2.0]) == 2.0
    history = json.loads(cli("alice", "servable", "access", "list", ref, "--json").output)
    assert [(r["requester"], r["status"]) for r in history] == [
        ("bob", "granted"),
        ("bob", "declined"),
        ("carol", "granted"),
    ]
    shown = cli("bob", "servable", "access", "show", bob_asked["id"])
    assert "declined by alice" in shown.output and "ask Dr. X" in shown.output
