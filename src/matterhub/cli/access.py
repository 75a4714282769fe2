"""`matterhub servable access …`: ask for the right to run a servable; its owner grants or declines.

User-side commands over the client (the profile saved by `matterhub login`, or
`$MATTERHUB_URL` / `$MATTERHUB_TOKEN`), like the other `matterhub servable` commands.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from matterhub.client import Client, ClientError
from matterhub.core.errors import MatterHubError

__all__ = ["access_app"]

out = Console()
err = Console(stderr=True)
access_app = typer.Typer(
    help="Ask for the right to run a servable you can see; grant or decline requests for yours.",
    no_args_is_help=True,
)
ProfileOpt = Annotated[str | None, typer.Option("--profile", "-p", help="Saved login profile.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _call(profile: str | None, method: str, *args: Any, **kwargs: Any) -> Any:
    """One client call; a refusal is one line on stderr and exit code 2, never a traceback."""
    try:
        with Client.from_config(profile) as client:
            return getattr(client, method)(*args, **kwargs)
    except (ClientError, ValueError, MatterHubError) as exc:
        raise _fail(exc) from None


def _show(request: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(request))
        return
    line = f"request {request['id']} by {request['requester']} for {request['servable']}: "
    line += request["status"]
    if request.get("granted_to"):
        line += f" to {request['granted_to']}"
    if request.get("decided_by"):
        line += f" by {request['decided_by']} at {request['decided_at']}"
    if request.get("reason"):
        line += f" — {request['reason']}"
    out.print(line, highlight=False, markup=False, soft_wrap=True)


@access_app.command("request")
def request(
    name: Annotated[str, typer.Argument(help="owner/name of a servable you can see.")],
    message: Annotated[
        str, typer.Option("--message", "-m", help="Why you need to run it (the owner reads it).")
    ] = "",
    as_json: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Ask the owner of a servable for the right to run it."""
    _show(_call(profile, "request_access", name, message), as_json)


@access_app.command("list")
def list_(
    name: Annotated[
        str | None, typer.Argument(help="owner/name: only the requests on this servable.")
    ] = None,
    pending: Annotated[bool, typer.Option("--pending", help="Only those awaiting a decision.")] = (
        False
    ),
    mine: Annotated[
        bool,
        typer.Option("--mine", help="Only the requests you made (default: both kinds)."),
    ] = False,
    owned: Annotated[
        bool, typer.Option("--owned", help="Only the requests on your servables.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many of each.")] = 100,
    as_json: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Requests on your servables (to decide) and the requests you made, newest first."""
    status = "pending" if pending else None
    sections: list[tuple[str, list[dict[str, Any]]]] = []
    if name is not None:
        found = _call(profile, "access_requests", name, status=status, limit=limit)
        sections.append((f"Requests on {name}", found))
    else:
        if not mine:
            found = _call(profile, "access_requests", status=status, role="owner", limit=limit)
            sections.append(("Requests on your servables", found))
        if not owned:
            found = _call(profile, "access_requests", status=status, role="requester", limit=limit)
            sections.append(("Your requests", found))
    if as_json:
        out.print_json(json.dumps([r for _title, rows in sections for r in rows]))
        return
    for title, rows in sections:
        table = Table(
            "id", "servable", "requester", "status", "asked", "message", "decision", title=title
        )
        for r in rows:
            decision = ""
            if r.get("decided_by"):
                decision = f"{r['status']} by {r['decided_by']} {r['decided_at'][:16]}"
                if r.get("granted_to"):
                    decision += f" to {r['granted_to']}"
                if r.get("reason"):
                    decision += f": {r['reason']}"
            table.add_row(
                r["id"],
                r["servable"],
                r["requester"],
                r["status"],
                r["created_at"][:16],
                r["message"],
                decision,
            )
        out.print(table if rows else f"{title}: none")


@access_app.command("show")
def show(
    request_id: Annotated[str, typer.Argument(help="The request's id.")],
    as_json: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """One request and the decision on it."""
    _show(_call(profile, "access_request", request_id), as_json)


@access_app.command("grant")
def grant(
    request_id: Annotated[str, typer.Argument(help="The request's id.")],
    group: Annotated[
        str | None,
        typer.Option(help="Grant to this group of yours (the requester must be in it)."),
    ] = None,
    as_json: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Grant a request on your servable: the requester (or --group) may run it at once."""
    to = f"group:{group}" if group else None
    _show(_call(profile, "grant_access", request_id, to), as_json)


@access_app.command("decline")
def decline(
    request_id: Annotated[str, typer.Argument(help="The request's id.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (the requester reads it).")],
    as_json: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Decline a request on your servable, saying why."""
    _show(_call(profile, "decline_access", request_id, reason), as_json)


@access_app.command("withdraw")
def withdraw(
    request_id: Annotated[str, typer.Argument(help="The request's id.")],
    as_json: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Withdraw a pending request you made."""
    _show(_call(profile, "withdraw_access_request", request_id), as_json)


@access_app.command("revoke")
def revoke(
    request_id: Annotated[str, typer.Argument(help="The request's id.")],
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Why (optional).")] = None,
    as_json: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Take back a right you granted."""
    _show(_call(profile, "revoke_access", request_id, reason), as_json)
