"""`matterhub dataset …`: the dataset repository from the server side (as the system or a user)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from matterhub.blobs.base import iter_chunks

__all__ = ["dataset_app"]

dataset_app = typer.Typer(
    help="Create, upload, publish, list, cite and download datasets.", no_args_is_help=True
)

AsUser = Annotated[
    str | None,
    typer.Option("--as", help="Act as this user (default: the system, which bypasses access)."),
]


def _context(ctx: typer.Context, as_user: str | None) -> tuple[Any, Any]:
    """(services, identity) for a command; imported lazily to keep `--help` fast."""
    from matterhub.cli.main import services_from
    from matterhub.core.identity import SYSTEM_IDENTITY, Identity

    services = services_from(ctx)
    if as_user is None:
        return services, SYSTEM_IDENTITY
    with services.catalog.transaction() as session:
        from matterhub.catalog.repositories import UserRepository

        users = UserRepository(session)
        user = users.require(as_user)
        identity = Identity(
            user_id=user.id,
            username=user.username,
            group_ids=users.group_ids(user.id),
            is_admin=user.is_admin,
        )
    return services, identity


def _print(value: Any) -> None:
    from matterhub.cli.main import out

    out.print_json(json.dumps(value, default=str))


@dataset_app.command("create")
def create(
    ctx: typer.Context,
    dc_file: Annotated[Path, typer.Argument(help="JSON file with the dc block (or {dc, …}).")],
    source_name: Annotated[str | None, typer.Option(help="Stable name (default: derived).")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner's username (as the system).")] = None,
    visible_to: Annotated[
        list[str] | None, typer.Option(help="Who sees it once published (repeatable).")
    ] = None,
    as_user: AsUser = None,
) -> None:
    """Create a dataset; its v1.0 starts as a private draft."""
    services, identity = _context(ctx, as_user)
    doc = json.loads(dc_file.read_text())
    dc = doc.get("dc", doc)
    version = services.datasets.create(
        identity,
        dc=dc,
        source_name=source_name,
        owner=owner,
        visible_to=visible_to or ["public"],
    )
    _print(version.model_dump(exclude={"document"}))


@dataset_app.command("upload")
def upload(
    ctx: typer.Context,
    source_id: Annotated[str, typer.Argument(help="The draft's source_id.")],
    files: Annotated[list[Path], typer.Argument(help="Files or folders to upload.")],
    as_user: AsUser = None,
) -> None:
    """Upload files (folders recursively, keeping relative paths) into a draft."""
    services, identity = _context(ctx, as_user)
    for item in files:
        pairs = (
            [
                (p, p.relative_to(item.parent).as_posix())
                for p in sorted(item.rglob("*"))
                if p.is_file()
            ]
            if item.is_dir()
            else [(item, item.name)]
        )
        for path, name in pairs:
            with path.open("rb") as handle:
                entry = services.datasets.put_file(identity, source_id, name, iter_chunks(handle))
            typer.echo(f"{entry.path}\t{entry.size}\t{entry.sha512[:16]}…")


@dataset_app.command("publish")
def publish(
    ctx: typer.Context,
    source_id: Annotated[str, typer.Argument(help="The version to publish.")],
    as_user: AsUser = None,
) -> None:
    """Publish a draft: freeze it and register its identifier."""
    services, identity = _context(ctx, as_user)
    version = services.datasets.publish(identity, source_id)
    typer.echo(f"Published {version.source_id} as {version.pid}")


@dataset_app.command("list")
def list_datasets(ctx: typer.Context, as_user: AsUser = None) -> None:
    """List datasets (and their versions)."""
    services, identity = _context(ctx, as_user)
    for ds in services.datasets.list_datasets(identity, limit=1000):
        typer.echo(f"{ds.source_name}\tlatest={ds.latest}\tversions={','.join(ds.versions)}")


@dataset_app.command("show")
def show(
    ctx: typer.Context,
    source_id: Annotated[str, typer.Argument(help="A source_id or a source_name.")],
    as_user: AsUser = None,
) -> None:
    """Show a version and its files."""
    services, identity = _context(ctx, as_user)
    version = services.datasets.get(identity, source_id)
    files = services.datasets.manifest(identity, version.source_id)
    _print({**version.model_dump(exclude={"document"}), "files": [f.model_dump() for f in files]})


@dataset_app.command("cite")
def cite(
    ctx: typer.Context,
    source_id: Annotated[str, typer.Argument(help="A source_id or a source_name.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="bibtex, ris, datacite-json, datacite-xml, …")
    ] = "bibtex",
    as_user: AsUser = None,
) -> None:
    """Print a citation."""
    services, identity = _context(ctx, as_user)
    typer.echo(services.datasets.cite(identity, source_id, fmt)[1], nl=False)


@dataset_app.command("export")
def export(
    ctx: typer.Context,
    source_id: Annotated[str, typer.Argument(help="A published source_id or a source_name.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="ro-crate, croissant or schema.org.")
    ] = "ro-crate",
    as_user: AsUser = None,
) -> None:
    """Print a published version's RO-Crate metadata, Croissant or schema.org JSON-LD."""
    from matterhub.interop.exports import Exports, dumps_jsonld

    services, identity = _context(ctx, as_user)
    exports = Exports(services.datasets, services.blobs, base_url=services.settings.base_url)
    typer.echo(dumps_jsonld(exports.export(identity, source_id, fmt)).decode(), nl=False)


@dataset_app.command("download")
def download(
    ctx: typer.Context,
    source_id: Annotated[str, typer.Argument(help="A source_id or a source_name.")],
    dest: Annotated[Path, typer.Option(help="Folder to write into.")] = Path("."),
    as_user: AsUser = None,
) -> None:
    """Download every file of a version you may read, checking each SHA-512."""
    import hashlib

    services, identity = _context(ctx, as_user)
    version = services.datasets.get(identity, source_id)
    for entry in services.datasets.manifest(identity, version.source_id):
        handle = services.datasets.open_file(identity, version.source_id, entry.path)
        target = dest / version.source_id / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha512()
        with target.open("wb") as out_file:
            for chunk in services.blobs.stream(handle.key):
                digest.update(chunk)
                out_file.write(chunk)
        if digest.hexdigest() != entry.sha512:
            typer.echo(f"checksum mismatch for {entry.path}", err=True)
            raise typer.Exit(1)
        typer.echo(str(target))
