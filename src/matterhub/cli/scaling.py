"""`matterhub servable workers` and `matterhub servable scale` (over the client; owners, admins)."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from matterhub.client import Client, ClientError
from matterhub.core.errors import MatterHubError

__all__ = ["register_scaling_commands", "workers_table"]

out = Console()
err = Console(stderr=True)
ProfileOpt = Annotated[str | None, typer.Option("--profile", "-p", help="Saved login profile.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def _bounds(bounds: dict[str, Any] | None) -> str:
    if not bounds:
        return "defaults"
    text = f"min {bounds.get('min_replicas')} · max {bounds.get('max_replicas')}"
    text += f" · queue {bounds.get('target_queue')}"
    for name in ("target_p50_ms", "target_p99_ms"):
        if bounds.get(name) is not None:
            text += f" · {name[7:10]} {bounds[name]:g} ms"
    return text


def workers_table(view: dict[str, Any]) -> list[Table]:
    """The workers view as tables: one per running version."""
    tables = []
    for pool in view["pools"]:
        title = (
            f"{view['servable']} v{pool['version']}: {pool['replicas']} replicas "
            f"(target {pool['target']}), {pool['in_flight']} running, "
            f"{pool['queue_depth']} waiting, p50 {_ms(pool['p50_ms'])} ms, "
            f"p99 {_ms(pool['p99_ms'])} ms"
            + ("; CPU-bound: at most one replica per core" if pool.get("cpu_bound") else "")
        )
        table = Table(
            "worker", "state", "calls", "p50 ms", "p99 ms", "MiB", "pid", "up s", title=title
        )
        now = time.time()
        for worker in pool["workers"]:
            started = worker.get("started_at")
            table.add_row(
                worker["id"] + (f" @{worker['node'][:8]}" if worker.get("node") else ""),
                worker["state"],
                str(worker["calls"]),
                _ms(worker["p50_ms"]),
                _ms(worker["p99_ms"]),
                _mib(worker["memory_bytes"]),
                str(worker["pid"] or "-"),
                f"{now - started:.0f}" if started else "-",
            )
        tables.append(table)
    return tables


def workers(
    name: Annotated[str, typer.Argument(help="owner/name")],
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A servable's workers: state, calls, p50/p99, memory, per running version."""
    try:
        client = Client.from_config(profile)
        try:
            view = client.servable_workers(name)
        finally:
            client.close()
    except (ClientError, ValueError, MatterHubError) as exc:
        raise _fail(exc) from None
    if as_json:
        out.print_json(json.dumps(view))
        return
    out.print(
        f"bounds: {_bounds(view['bounds'])} (hub cap {view['max_replicas_cap']}; "
        f"set: {_bounds(view['scaling']) if view['scaling'] else 'nothing'})"
    )
    if not view["pools"]:
        out.print("no workers running")
    for table in workers_table(view):
        out.print(table)


def scale(
    name: Annotated[str, typer.Argument(help="owner/name")],
    min_replicas: Annotated[int | None, typer.Option("--min", help="Replicas kept warm.")] = None,
    max_replicas: Annotated[int | None, typer.Option("--max", help="Replicas at most.")] = None,
    target_queue: Annotated[
        float | None, typer.Option("--target-queue", help="Waiting calls per replica.")
    ] = None,
    target_p50_ms: Annotated[
        float | None, typer.Option("--target-p50-ms", help="Median latency goal, ms.")
    ] = None,
    target_p99_ms: Annotated[
        float | None, typer.Option("--target-p99-ms", help="p99 latency goal, ms.")
    ] = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a servable's replica bounds while it serves (owners and admins)."""
    try:
        client = Client.from_config(profile)
        try:
            view = client.scale_servable(
                name,
                min_replicas=min_replicas,
                max_replicas=max_replicas,
                target_queue=target_queue,
                target_p50_ms=target_p50_ms,
                target_p99_ms=target_p99_ms,
            )
        finally:
            client.close()
    except (ClientError, ValueError, MatterHubError) as exc:
        raise _fail(exc) from None
    if as_json:
        out.print_json(json.dumps(view))
        return
    out.print(f"{name}: {_bounds(view['bounds'])}")


def register_scaling_commands(app: typer.Typer) -> None:
    """Add `workers` and `scale` to `matterhub servable`."""
    app.command("workers")(workers)
    app.command("scale")(scale)
