"""`matterhub`: serve a hub, run the demo, and administer users, groups and tokens."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from matterhub import __version__
from matterhub.cli.access import access_app
from matterhub.cli.client_commands import register_client_commands
from matterhub.cli.datasets import dataset_app
from matterhub.cli.harvest import harvest_app
from matterhub.cli.runs import register_run_commands
from matterhub.cli.scaling import register_scaling_commands
from matterhub.cli.servable_cite import register_servable_cite
from matterhub.cli.servables import servable_app
from matterhub.core.errors import MatterHubError
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.settings import Settings

__all__ = ["app", "main"]

out = Console()
err = Console(stderr=True)


class _Group(TyperGroup):
    """Turns MatterHub and settings errors into one clear line and a non-zero exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MatterHubError as exc:
            setting = exc.field if exc.field in Settings.model_fields else None
            where = f" (setting MATTERHUB_{setting.upper()})" if setting else ""
            err.print(f"[red]error:[/red] {exc.detail}{where}", highlight=False, soft_wrap=True)
            raise typer.Exit(2 if exc.status in (401, 403, 404, 409, 413, 422) else 1) from None
        except ValidationError as exc:
            for problem in exc.errors():
                name = ".".join(str(p) for p in problem["loc"])
                err.print(f"[red]error:[/red] setting MATTERHUB_{name.upper()}: {problem['msg']}")
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Group,
    help="MatterHub: a data and model hub for materials science.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
user_app = typer.Typer(cls=_Group, help="Manage user accounts.", no_args_is_help=True)
group_app = typer.Typer(cls=_Group, help="Manage groups and their members.", no_args_is_help=True)
token_app = typer.Typer(
    cls=_Group, help="Create, list and revoke API tokens.", no_args_is_help=True
)
db_app = typer.Typer(cls=_Group, help="The catalog database schema.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(group_app, name="group")
app.add_typer(token_app, name="token")
app.add_typer(db_app, name="db")
app.add_typer(dataset_app, name="dataset")
app.add_typer(harvest_app, name="harvest")
app.add_typer(servable_app, name="servable")
servable_app.add_typer(access_app, name="access")  # `matterhub servable access …`
index_app = typer.Typer(cls=_Group, help="Search indexes (Discover).", no_args_is_help=True)
app.add_typer(index_app, name="index")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", "-d", help="Data folder (default: $MATTERHUB_DATA_DIR or ./matterhub-data)."
    ),
]


@app.callback()
def _root(
    ctx: typer.Context,
    data_dir: DataDir = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """Settings come from MATTERHUB_* variables; options here override them."""
    if version:
        out.print(__version__)
        raise typer.Exit()
    ctx.obj = {"data_dir": data_dir}


def settings_from(ctx: typer.Context, **overrides: Any) -> Settings:
    """Settings from the environment, with the global and command options on top."""
    root = ctx.find_root().obj or {}
    values = {k: v for k, v in {**root, **overrides}.items() if v is not None}
    return Settings(**values)


def services_from(ctx: typer.Context, **overrides: Any) -> Any:
    """Build the services for a command (imported lazily: the client side needs no server deps)."""
    from matterhub.bootstrap import build_services

    return build_services(settings_from(ctx, **overrides))


def _print_json(value: Any) -> None:
    out.print_json(json.dumps(value, default=str))


# serve, init, demo ---------------------------------------------------------------------------

Host = Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")]
Port = Annotated[int | None, typer.Option(help="Port to listen on (default 8000).")]


@app.command()
def serve(ctx: typer.Context, host: Host = None, port: Port = None) -> None:
    """Run the hub's HTTP server until interrupted."""
    from matterhub.cli.server import announce_admin, run_server

    settings = settings_from(ctx, host=host, port=port)
    services = services_from(ctx, host=host, port=port)
    announce_admin(services, out)
    run_server(settings, services)


@app.command()
def init(
    ctx: typer.Context,
    admin: Annotated[str | None, typer.Option(help="Name of the first administrator.")] = None,
) -> None:
    """Create the data folder, migrate the catalog and create the first administrator."""
    from matterhub.cli.server import announce_admin

    services = services_from(ctx, admin_username=admin)
    out.print(f"Data folder: {services.settings.data_dir}")
    out.print(
        f"Catalog: {services.catalog.backend} at revision {services.catalog.current_revision()}"
    )
    roles = ", ".join(services.accounts.role_groups)
    out.print(f"Role groups: {roles} (reserved; administrators manage their members)")
    if not announce_admin(services, out):
        out.print("An administrator exists already; nothing else to do.")


@app.command()
def demo(
    ctx: typer.Context,
    host: Host = None,
    port: Port = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Set up, print, and exit.")] = False,
) -> None:
    """Start an embedded hub in a local folder, load the demo content, and serve it."""
    from matterhub.cli.demo import run_demo

    root = ctx.find_root().obj or {}
    data_dir = root.get("data_dir") or Path("matterhub-demo")
    settings = settings_from(ctx, data_dir=data_dir, host=host, port=port)
    run_demo(settings, console=out, serve=not no_serve)


@app.command("settings")
def show_settings(ctx: typer.Context) -> None:
    """Print the effective settings, the chosen plugins' included (secrets hidden)."""
    from matterhub.bootstrap import plugin_report

    settings = settings_from(ctx)
    _print_json({**settings.model_dump(mode="json"), "plugins": plugin_report(settings)})


# users, groups, tokens -------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    username: str,
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    full_name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an administrator.")] = False,
) -> None:
    """Create a user account."""
    services = services_from(ctx)
    user = services.accounts.create_user(
        SYSTEM_IDENTITY, username, email=email, full_name=full_name, is_admin=admin
    )
    out.print(f"Created user [bold]{user.username}[/bold] ({user.principal})")


@user_app.command("set-password")
def user_set_password(
    ctx: typer.Context,
    username: str,
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            confirmation_prompt=True,
            hide_input=True,
            envvar="MATTERHUB_NEW_PASSWORD",
            help="The new password (prompted when omitted; or MATTERHUB_NEW_PASSWORD).",
        ),
    ],
) -> None:
    """Set a user's password for signing in to the web UI."""
    user = services_from(ctx).accounts.set_password(SYSTEM_IDENTITY, username, password)
    out.print(f"Password set for [bold]{user.username}[/bold]")


@user_app.command("list")
def user_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """List user accounts."""
    users = services_from(ctx).accounts.list_users(SYSTEM_IDENTITY)
    if as_json:
        _print_json([u.model_dump(mode="json") for u in users])
        return
    table = Table("username", "admin", "e-mail", "id", "created")
    for u in users:
        table.add_row(
            u.username, "yes" if u.is_admin else "", u.email or "", u.id, f"{u.created_at:%Y-%m-%d}"
        )
    out.print(table)


@group_app.command("add")
def group_add(
    ctx: typer.Context,
    name: str,
    description: Annotated[str | None, typer.Option(help="What the group is for.")] = None,
) -> None:
    """Create a group."""
    group = services_from(ctx).accounts.create_group(SYSTEM_IDENTITY, name, description=description)
    out.print(f"Created group [bold]{group.name}[/bold] ({group.principal})")


@group_app.command("add-member")
def group_add_member(
    ctx: typer.Context,
    group: str,
    username: str,
    manager: Annotated[
        bool, typer.Option("--manager", help="Let the user manage members.")
    ] = False,
) -> None:
    """Add a user to a group."""
    role = "manager" if manager else "member"
    result = services_from(ctx).accounts.add_member(SYSTEM_IDENTITY, group, username, role=role)
    out.print(f"{username} is now a {role} of {result.name} ({len(result.members)} members)")


@group_app.command("remove-member")
def group_remove_member(ctx: typer.Context, group: str, username: str) -> None:
    """Remove a user from a group."""
    services_from(ctx).accounts.remove_member(SYSTEM_IDENTITY, group, username)
    out.print(f"{username} removed from {group}")


@group_app.command("list")
def group_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """List groups with their members."""
    groups = services_from(ctx).accounts.list_groups(SYSTEM_IDENTITY)
    if as_json:
        _print_json([g.model_dump(mode="json") for g in groups])
        return
    table = Table("name", "members", "principal")
    for g in groups:
        table.add_row(g.name, ", ".join(g.members), g.principal)
    out.print(table)


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    username: str,
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "cli",
    expires_days: Annotated[
        int | None, typer.Option(min=1, help="Lifetime in days (default: the server setting).")
    ] = None,
    never_expires: Annotated[bool, typer.Option("--never-expires", help="No expiry.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the token.")] = False,
) -> None:
    """Create an API token for a user; it is printed once."""
    expires = timedelta(days=expires_days) if expires_days else None
    token = services_from(ctx).accounts.create_token(
        SYSTEM_IDENTITY, username, name=name, expires_in=expires, never_expires=never_expires
    )
    if quiet:
        typer.echo(token.token)
        return
    expiry = f"expires {token.expires_at:%Y-%m-%d}" if token.expires_at else "never expires"
    out.print(f"Token [bold]{token.id}[/bold] for {username} ({expiry}). Shown once; store it now:")
    typer.echo(token.token)


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: str) -> None:
    """Revoke a token by its id; it stops working at once."""
    token = services_from(ctx).accounts.revoke_token(SYSTEM_IDENTITY, token_id)
    out.print(f"Revoked token {token.id} of {token.username}")


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    username: str,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """List a user's tokens (never their secrets)."""
    tokens = services_from(ctx).accounts.list_tokens(SYSTEM_IDENTITY, username)
    if as_json:
        _print_json([t.model_dump(mode="json") for t in tokens])
        return
    table = Table("id", "name", "created", "expires", "revoked")
    for t in tokens:
        table.add_row(
            t.id,
            t.name,
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.expires_at:%Y-%m-%d}" if t.expires_at else "never",
            f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "",
        )
    out.print(table)


# database ----------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Migrate the catalog schema to the newest revision."""
    from matterhub.catalog import open_catalog

    catalog = open_catalog(settings_from(ctx).database_url, migrate=True)
    out.print(f"Catalog ({catalog.backend}) at revision {catalog.current_revision()}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Show the schema revision of the catalog and the newest one this version knows."""
    from matterhub.catalog import open_catalog

    catalog = open_catalog(settings_from(ctx).database_url, migrate=False)
    out.print(f"current: {catalog.current_revision()}  head: {catalog.head_revision()}")


# search indexes ------------------------------------------------------------------------------


@index_app.command("list")
def index_list(ctx: typer.Context) -> None:
    """List the search indexes with their ids and sizes."""
    services = services_from(ctx)
    table = Table("name", "id", "entries", "writers")
    for info in services.search.list_indexes(SYSTEM_IDENTITY):
        table.add_row(info.name, info.id, str(info.num_entries), ", ".join(info.writers))
    out.print(table)


@index_app.command("create")
def index_create(
    ctx: typer.Context,
    name: str,
    description: Annotated[str | None, typer.Option(help="What the index holds.")] = None,
    writer: Annotated[
        list[str] | None, typer.Option(help="A principal allowed to ingest (repeatable).")
    ] = None,
) -> None:
    """Create a search index."""
    info = services_from(ctx).search.create_index(
        SYSTEM_IDENTITY, name, description=description, writers=writer or []
    )
    out.print(f"Created index [bold]{info.name}[/bold] ({info.id})")


@app.command()
def reindex(
    ctx: typer.Context,
    index: Annotated[str, typer.Argument(help="Index name or id, e.g. mdf.")],
) -> None:
    """Rebuild a search index from the writes recorded in the catalog (stop the server first)."""
    count = services_from(ctx).search.reindex(SYSTEM_IDENTITY, index)
    out.print(f"Rebuilt {index}: {count} entries")


register_client_commands(app)  # user-side: login, search, show, download, cite, submit, …
register_run_commands(app)  # `matterhub run owner/name --input file.json`
register_scaling_commands(servable_app)  # `matterhub servable workers|scale owner/name`
register_servable_cite(servable_app)  # `matterhub servable cite owner/name --format bibtex`


_SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def main() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    completion = ("--show-completion", "--install-completion")
    if len(argv) >= 2 and argv[0] in completion and argv[1] in _SHELLS:
        # `--show-completion bash`: Typer's own switch to take the shell named, not detect it
        os.environ["_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION"] = "1"
    app(prog_name="matterhub")
