"""`matterhub harvest …`: follow other OAI-PMH repositories (server side, as the system)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

__all__ = ["harvest_app"]

harvest_app = typer.Typer(
    help="Follow other repositories: harvest their OAI-PMH records into this hub's search.",
    no_args_is_help=True,
)


def _services(ctx: typer.Context) -> Any:
    from matterhub.cli.main import services_from

    return services_from(ctx)


def _print(value: Any) -> None:
    from matterhub.cli.main import out

    out.print_json(json.dumps(value, default=str))


@harvest_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Short name: lowercase letters, digits, _ or -.")],
    url: Annotated[str, typer.Argument(help="The OAI-PMH base URL, e.g. https://x.org/oai.")],
    set_spec: Annotated[str | None, typer.Option("--set", help="Harvest only this set.")] = None,
    metadata_prefix: Annotated[
        str, typer.Option(help="oai_datacite (DataCite kernel 4) or oai_dc.")
    ] = "oai_datacite",
) -> None:
    """Follow a repository (nothing is fetched until `harvest run`)."""
    from matterhub.core.identity import SYSTEM_IDENTITY
    from matterhub.interop.harvest import HarvestSourceCreate

    services = _services(ctx)
    try:
        body = HarvestSourceCreate(
            name=name, url=url, set_spec=set_spec, metadata_prefix=metadata_prefix
        )
        _print(services.harvest.add(SYSTEM_IDENTITY, body).model_dump())
    finally:
        services.close()


@harvest_app.command("list")
def list_sources(ctx: typer.Context) -> None:
    """The repositories this hub follows and how their last runs went."""
    from matterhub.core.identity import SYSTEM_IDENTITY

    services = _services(ctx)
    try:
        _print([s.model_dump() for s in services.harvest.list(SYSTEM_IDENTITY)])
    finally:
        services.close()


@harvest_app.command("run")
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The source to harvest.")],
) -> None:
    """Harvest what changed since the last run.

    Run it with the server stopped (it writes the index); while serving, use
    `POST /api/harvest/<name>/run`.
    """
    from matterhub.core.identity import SYSTEM_IDENTITY

    services = _services(ctx)
    services.search.start()
    try:
        result = services.harvest.run(SYSTEM_IDENTITY, name)
    finally:
        services.close()
    _print(result.model_dump())
    if result.status == "failed":
        raise typer.Exit(1)


@harvest_app.command("remove")
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The source to stop following.")],
) -> None:
    """Stop following a repository and drop its entries from the index."""
    from matterhub.core.identity import SYSTEM_IDENTITY

    services = _services(ctx)
    services.search.start()
    try:
        services.harvest.remove(SYSTEM_IDENTITY, name)
    finally:
        services.close()
