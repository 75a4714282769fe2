"""`matterhub servable cite owner/name`: a servable version's citation (over the client)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from matterhub.client import Client, ClientError
from matterhub.core.citations import FORMATS
from matterhub.core.errors import MatterHubError

__all__ = ["register_servable_cite"]

err = Console(stderr=True)


def cite(
    name: Annotated[str, typer.Argument(help="owner/name")],
    version: Annotated[
        str | None, typer.Option("--version", help="A version (default: the live one).")
    ] = None,
    format: Annotated[
        str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMATS)}.")
    ] = "bibtex",
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="Saved login profile.")
    ] = None,
) -> None:
    """Print the citation of a servable version (with its DOI or hub identifier)."""
    if format not in FORMATS:
        raise typer.BadParameter(f"use one of {', '.join(FORMATS)}", param_hint="--format")
    try:
        client = Client.from_config(profile)
        try:
            text = client.cite_servable(name, format=format, version=version)
        finally:
            client.close()
    except (ClientError, ValueError, MatterHubError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    typer.echo(text, nl=not text.endswith("\n"))


def register_servable_cite(servable_app: typer.Typer) -> None:
    """Add `cite` to `matterhub servable`."""
    servable_app.command("cite")(cite)
