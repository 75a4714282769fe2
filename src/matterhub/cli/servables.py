"""`matterhub servable …`: describe, publish, list, show and follow builds (over the client).

These talk to a hub over HTTP with the profile saved by `matterhub login`, like the other
user-side commands. `describe` writes a bundle folder (`dlhub.json` + files) that `publish` sends.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from matterhub.client import Client, ClientError
from matterhub.core.errors import MatterHubError

__all__ = ["servable_app"]

out = Console()
err = Console(stderr=True)
servable_app = typer.Typer(
    help="Describe, publish, find and inspect servables (models and functions).",
    no_args_is_help=True,
)
ProfileOpt = Annotated[str | None, typer.Option("--profile", "-p", help="Saved login profile.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _client(profile: str | None) -> Client:
    return Client.from_config(profile)


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _load(text: str | None) -> Any:
    if text is None:
        return None
    path = Path(text)
    return json.loads(path.read_text() if path.is_file() else text)


_DESCRIBE_ERRORS = (ValueError, ImportError, LookupError, MatterHubError, OSError, TypeError)


def _described(
    target: str,
    kind: str,
    *,
    name: str | None = None,
    arch: Path | None = None,
    title: str | None = None,
    author: list[str] | None = None,
    example: str | None = None,
    expected: str | None = None,
    input_shape: str | None = None,
    output_shape: str | None = None,
    dataset: str | None = None,
    doi: str | None = None,
) -> Any:
    """The description of a function (`module.py:function`) or a model file of `kind`."""
    from matterhub.client import describe as d

    if kind == "function":
        path, _, function = target.partition(":")
        if not function:
            raise ValueError("give module.py:function")
        import importlib.util

        spec = importlib.util.spec_from_file_location(Path(path).stem, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        description = d.describe_function(getattr(module, function), name)
    elif kind == "sklearn":
        description = d.describe_sklearn(target, name or Path(target).stem)
    elif kind == "onnx":
        description = d.describe_onnx(target, name or Path(target).stem)
    elif kind == "torch":
        description = d.describe_torch(
            target,
            name or Path(target).stem,
            input_shape=_load(input_shape) or [None],
            output_shape=_load(output_shape) or [None],
        )
    elif kind == "keras":
        # A .keras file, a whole-model .h5, or weights (TARGET) + architecture JSON (--arch).
        description = d.describe_keras(
            target,
            name or Path(target).name.split(".")[0],
            arch=arch,
            output_shape=_load(output_shape),
        )
    else:
        raise ValueError(f"unknown kind {kind!r}")
    description.set_title(title or description.document["dlhub"]["name"])
    description.set_creators(author or [])
    if example is not None:
        description.set_example(_load(example), _load(expected))
    if dataset or doi:
        description.link_dataset(source_id=dataset, doi=doi)
    return description


@servable_app.command("describe")
def describe(
    target: Annotated[str, typer.Argument(help="module.py:function, or a model file.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Bundle folder to write.")],
    name: Annotated[
        str | None, typer.Option(help="Servable name (default: function name).")
    ] = None,
    kind: Annotated[
        str, typer.Option(help="function, sklearn, torch, keras or onnx (model files).")
    ] = "function",
    arch: Annotated[
        Path | None,
        typer.Option(help="keras: the architecture JSON when TARGET holds only the weights."),
    ] = None,
    title: Annotated[str | None, typer.Option(help="Title.")] = None,
    author: Annotated[list[str] | None, typer.Option(help="'Family, Given' (repeatable).")] = None,
    example: Annotated[str | None, typer.Option(help="Example input: JSON text or file.")] = None,
    expected: Annotated[str | None, typer.Option(help="Its expected output (JSON).")] = None,
    input_shape: Annotated[
        str | None, typer.Option(help="torch: JSON shape, e.g. [null,3].")
    ] = None,
    output_shape: Annotated[
        str | None, typer.Option(help="torch (keras: to override): JSON output shape.")
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="Training dataset source_id.")] = None,
    doi: Annotated[str | None, typer.Option(help="Training dataset DOI.")] = None,
) -> None:
    """Describe a function or a model file into a bundle folder (dlhub.json + files)."""
    try:
        description = _described(
            target,
            kind,
            name=name,
            arch=arch,
            title=title,
            author=author,
            example=example,
            expected=expected,
            input_shape=input_shape,
            output_shape=output_shape,
            dataset=dataset,
            doi=doi,
        )
    except _DESCRIBE_ERRORS as exc:
        raise _fail(exc) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "dlhub.json").write_text(json.dumps(description.document, indent=2))
    for rel, local in description.files.items():
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(local, out_dir / rel)
    out.print(f"wrote {out_dir / 'dlhub.json'} and {len(description.files)} file(s)")


def _zip_folder(folder: Path) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


@servable_app.command("publish")
def publish(
    bundle: Annotated[
        str,
        typer.Argument(
            help=(
                "A bundle folder (with dlhub.json) or a zip; with --kind, a model file; "
                "or a source the hub fetches: "
                "git+https://host/owner/repo@ref, git+ssh://…, git+file://…, https://…, "
                "zenodo:<id>, figshare:<id>."
            )
        ),
    ],
    document: Annotated[
        Path | None,
        typer.Option(help="Source only: the document (default: dlhub.json at the source root)."),
    ] = None,
    path: Annotated[
        list[str] | None,
        typer.Option("--path", help="Source only: a file or folder to take (repeatable)."),
    ] = None,
    ref: Annotated[
        str | None, typer.Option(help="Source only: git branch, tag or commit (or url@ref).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the build and print its log.")] = True,
    kind: Annotated[
        str | None,
        typer.Option(help="Describe BUNDLE as this kind first (as `describe --kind`), e.g. keras."),
    ] = None,
    arch: Annotated[
        Path | None, typer.Option(help="keras: the architecture JSON for a weights file.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="With --kind: the servable name.")] = None,
    title: Annotated[str | None, typer.Option(help="With --kind: the title.")] = None,
    author: Annotated[list[str] | None, typer.Option(help="With --kind: 'Family, Given'.")] = None,
    example: Annotated[str | None, typer.Option(help="With --kind: example input (JSON).")] = None,
    expected: Annotated[str | None, typer.Option(help="With --kind: its output (JSON).")] = None,
    profile: ProfileOpt = None,
) -> None:
    """Upload a bundle, a model file described first (--kind), or publish from a git repository
    or URL; a new version when the name is yours already (the same commit and document again:
    the version made before)."""
    from matterhub.cli import servable_sources

    client: Client | None = None
    try:
        client = _client(profile)
        if servable_sources.is_source(bundle):
            body = servable_sources.source_body(
                bundle, document=document, paths=path or [], ref=ref
            )
            build, new = servable_sources.publish(client, body)
        else:
            new = True
            local = Path(bundle)
            if document is not None or path or ref:
                raise ValueError("--document, --path and --ref go with a git or URL source")
            if not local.exists():
                raise ValueError(
                    f"{bundle} is neither a bundle folder or zip nor a source URL "
                    "(git+https://…, https://…, zenodo:…)"
                )
            if kind is not None:
                data = _described(
                    str(local),
                    kind,
                    name=name,
                    arch=arch,
                    title=title,
                    author=author,
                    example=example,
                    expected=expected,
                ).bundle()
            else:
                data = _zip_folder(local) if local.is_dir() else local.read_bytes()
            build = client._json(
                "POST", "/api/servables", files={"bundle": ("bundle.zip", data, "application/zip")}
            )
        if new:
            out.print(f"build {build['id']} of {build['servable']} {build['version']} queued")
        else:
            out.print(f"{build['servable']} {build['version']} was published from this before")
        if wait:
            build = client.wait_for_build(build["servable"], build["id"])
            out.print(build["log"], highlight=False, markup=False)
    except (ClientError, *_DESCRIBE_ERRORS) as exc:
        raise _fail(exc) from None
    finally:
        if client is not None:
            client.close()
    if build["status"] == "failed":
        err.print(f"[red]build failed at {build['step']}[/red]")
        raise typer.Exit(1)
    out.print(f"{build['servable']} {build['version']}: {build['status']}")


@servable_app.command("list")
def list_(
    query: Annotated[str | None, typer.Argument(help="Query string.")] = None,
    name: Annotated[str | None, typer.Option(help="Exact name.")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner's username.")] = None,
    author: Annotated[list[str] | None, typer.Option(help="'Family, Given'.")] = None,
    input_type: Annotated[str | None, typer.Option(help="e.g. ndarray, structure.")] = None,
    all_versions: Annotated[bool, typer.Option(help="Every version, not only the latest.")] = False,
    limit: int = 20,
    as_json: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Search servables (only the latest version of each unless --all-versions)."""
    filters: dict[str, Any] = {
        "name": name,
        "owner": owner,
        "author": author or None,
        "input_type": input_type,
    }
    try:
        found = _client(profile).search(
            query,
            only_latest=not all_versions,
            limit=limit,
            **{k: v for k, v in filters.items() if v},
        )
    except (ClientError, ValueError) as exc:
        raise _fail(exc) from None
    if as_json:
        out.print_json(json.dumps(found))
        return
    table = Table("servable", "version", "title", "input")
    for doc in found:
        title = (doc["datacite"].get("titles") or [{}])[0].get("title", "")
        run = doc["servable"]["methods"]["run"]
        table.add_row(
            doc["dlhub"]["shorthand_name"],
            str(doc["dlhub"]["version"]),
            title,
            run["input"]["type"],
        )
    out.print(table)


@servable_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="owner/name")],
    version: Annotated[str | None, typer.Option(help="A version (default: the latest).")] = None,
    profile: ProfileOpt = None,
) -> None:
    """Describe a servable: document, rights, versions and how to call it."""
    try:
        out.print_json(json.dumps(_client(profile).describe_servable(name, version), default=str))
    except (ClientError, ValueError, MatterHubError) as exc:
        raise _fail(exc) from None


@servable_app.command("builds")
def builds(
    name: Annotated[str, typer.Argument(help="owner/name")],
    build_id: Annotated[str | None, typer.Option("--id", help="One build, with its log.")] = None,
    profile: ProfileOpt = None,
) -> None:
    """The builds of a servable, or one build's status and log."""
    try:
        client = _client(profile)
        if build_id:
            build = client.get_build(name, build_id)
            out.print(f"{build['status']} (step {build['step']})")
            out.print(build["log"], highlight=False, markup=False)
            return
        table = Table("id", "version", "status", "step")
        for build in client.get_builds(name):
            table.add_row(build["id"], build["version"], build["status"], str(build["step"]))
        out.print(table)
    except (ClientError, ValueError, MatterHubError) as exc:
        raise _fail(exc) from None
