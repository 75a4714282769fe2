"""User-side commands over the Python client: login, search, show, download, cite, submit, status.

They talk to a hub over HTTP (the URL and token saved by `matterhub login`), never to services
in-process, so they work from any laptop. Errors print one line and exit non-zero.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from matterhub.client import Client, ClientError
from matterhub.client.config import load_profile, save_profile
from matterhub.client.connect import ConnectClient
from matterhub.client.errors import APIError
from matterhub.client.forge import Forge

__all__ = ["register_client_commands"]

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

ProfileOpt = Annotated[
    str | None, typer.Option("--profile", "-p", help="Saved login profile (default: the default).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _one_line_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            code = 2 if isinstance(exc, APIError) and 400 <= exc.status < 500 else 1
            raise typer.Exit(code) from None
        except ValueError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        finally:
            while _open:
                _open.pop().close()

    return wrapper  # type: ignore[return-value]


_open: list[Client] = []  # closed when the command ends


def _client(profile: str | None) -> Client:
    entry = load_profile(profile)
    client = Client(entry["url"], entry.get("token"))
    _open.append(client)
    return client


def _print_json(value: Any) -> None:
    out.print_json(json.dumps(value, default=str))


def login(
    url: Annotated[
        str, typer.Option("--url", help="The hub's base URL, e.g. http://localhost:8000")
    ],
    token: Annotated[
        str | None,
        typer.Option("--token", help="API token (prompted for when omitted; empty: anonymous)."),
    ] = None,
    profile: ProfileOpt = None,
    default: Annotated[
        bool, typer.Option("--default", help="Make this the default profile.")
    ] = False,
    verify: Annotated[
        bool, typer.Option(help="Check the URL and token with the hub first.")
    ] = True,
) -> None:
    """Save a hub URL and token (file mode 0600) for the client, CLI and Forge."""
    if token is None:
        token = typer.prompt("API token (empty for anonymous)", default="", hide_input=True)
    who = "anonymous"
    if verify:
        with Client(url, token or None, retries=1) as probe:
            me = probe.whoami()
        who = me.get("username") or "anonymous"
    path = save_profile(url, token or None, profile=profile, make_default=default)
    out.print(f"Logged in to {url} as {who}; saved profile '{profile or 'default'}' in {path}")


def search(
    query: Annotated[
        str | None, typer.Argument(help="Query; field:value syntax with --advanced.")
    ] = None,
    advanced: Annotated[
        bool, typer.Option("--advanced", "-a", help="Advanced (query_string) syntax.")
    ] = False,
    elements: Annotated[
        str | None, typer.Option(help="Comma-separated elements, all required.")
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Dataset source_name(s).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Results to show (≤ 10,000).")] = 20,
    facet: Annotated[
        list[str] | None,
        typer.Option("--facet", help="Count values of a field, e.g. material.elements."),
    ] = None,
    index: Annotated[str, typer.Option(help="Search index.")] = "mdf",
    as_json: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Search records and datasets; `--facet` adds value counts computed by the hub."""
    forge = Forge(index, client=_client(profile))
    if query:
        forge.match_term(query)
        forge.advanced = forge.advanced or advanced
    if elements:
        forge.match_elements([e.strip() for e in elements.split(",") if e.strip()])
    if source:
        forge.match_source_names(source)
    if not forge.initialized:
        forge.match_exists("mdf.source_id")
    counts = {f: forge.facets(f, reset_query=False) for f in facet or []}
    results, info = forge.search(limit=limit, info=True)
    if as_json:
        _print_json({"total": info["total_query_matches"], "results": results, "facets": counts})
        return
    table = Table(title=f"{info['total_query_matches']} match(es); showing {len(results)}")
    for column in ("id", "title", "type", "elements"):
        table.add_column(column)
    for r in results:
        mdf = r.get("mdf", {})
        rid = mdf.get("source_id", "") + (f".{mdf['scroll_id']}" if mdf.get("scroll_id") else "")
        titles = r.get("dc", {}).get("titles") or [{}]
        # Datasets have `dc.titles`; records `mdf.title` (a formula and/or file name).
        title = titles[0].get("title") or mdf.get("title") or ""
        elements_ = r.get("material", {}).get("elements") or []
        table.add_row(rid, str(title), mdf.get("resource_type", ""), " ".join(elements_))
    out.print(table)
    for name, buckets in counts.items():
        ft = Table(title=f"facet {name}")
        ft.add_column("value")
        ft.add_column("count", justify="right")
        for value, count in buckets.items():
            ft.add_row(str(value), str(count))
        out.print(ft)


def show(
    source_id: Annotated[str, typer.Argument(help="A dataset (latest version) or source_id.")],
    files: Annotated[bool, typer.Option("--files", help="List the files too.")] = False,
    as_json: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Show a dataset version: title, creators, version, identifier, files."""
    client = _client(profile)
    version = client.dataset(source_id)
    listing = client.manifest(version["source_id"]).get("files", []) if files else []
    if as_json:
        _print_json({**version, **({"files": listing} if files else {})})
        return
    dc = version.get("dc", {})
    table = Table(show_header=False, title=version["source_id"])
    rows = {
        "title": "; ".join(t.get("title", "") for t in dc.get("titles", [])),
        "creators": "; ".join(c.get("creatorName", "") for c in dc.get("creators", [])),
        "year": str(dc.get("publicationYear", "")),
        "version": f"{version['version']} ({version['state']})",
        "identifier": version.get("pid") or "",
        "files": f"{version['file_count']} ({version['total_bytes']:,} bytes)",
    }
    for key, value in rows.items():
        table.add_row(key, value)
    out.print(table)
    for f in listing:
        out.print(f"  {f['path']}  {f['size']:,} B  sha512:{f['sha512'][:12]}…", highlight=False)


def download(
    source_id: Annotated[str, typer.Argument(help="Dataset or source_id to download.")],
    dest: Annotated[Path, typer.Option("--dest", "-o", help="Destination folder.")] = Path("."),
    archive: Annotated[
        bool | None, typer.Option("--archive/--files", help="Force archive.zip or per-file.")
    ] = None,
    workers: Annotated[int, typer.Option(help="Parallel downloads.")] = 4,
    profile: ProfileOpt = None,
) -> None:
    """Download a dataset: parallel, resumable, SHA-512-checked, with a progress bar."""
    report = _client(profile).download(
        source_id, dest, archive=archive, workers=workers, progress=True
    )
    how = "archive.zip" if report.via_archive else f"{report.resumed_bytes:,} bytes resumed"
    out.print(f"{len(report.files)} file(s) in {dest} ({report.downloaded_bytes:,} bytes; {how})")


def cite(
    source_id: Annotated[str, typer.Argument(help="Dataset or source_id.")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="bibtex, ris, datacite-json, …")
    ] = "bibtex",
    profile: ProfileOpt = None,
) -> None:
    """Print a citation."""
    print(_client(profile).cite(source_id, format).rstrip("\n"))


def export(
    source_id: Annotated[str, typer.Argument(help="A published source_id (or dataset name).")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="ro-crate, croissant or schema.org.")
    ] = "ro-crate",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: print).")
    ] = None,
    profile: ProfileOpt = None,
) -> None:
    """Print (or save) a version's RO-Crate metadata, Croissant or schema.org JSON-LD."""
    client = _client(profile)
    try:
        text = json.dumps(client.dataset_export(source_id, format), indent=2, ensure_ascii=False)
    finally:
        client.close()
    if output is None:
        print(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        out.print(f"{format} of {source_id} written to {output}")


def _manifest(path: Path) -> dict[str, Any]:
    try:
        import yaml
    except ImportError:  # pragma: no cover
        raise ValueError(
            "reading matterhub.yaml needs PyYAML: pip install 'matterhub[client]'"
        ) from None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must be a mapping (title, authors, data_sources, …)")
    return data


def _render_steps(block: dict[str, Any]) -> Table:
    table = Table(title=f"{block.get('source_id')} — {block.get('state', '')}")
    for column in ("step", "code", "meaning", "detail"):
        table.add_column(column)
    for step in block.get("status_list", []):
        table.add_row(
            step["description"], step["code"], step["meaning"], str(step.get("detail") or "")
        )
    return table


def _watch(client: Client, source_id: str, interval: float = 1.0) -> dict[str, Any]:
    block = client.status(source_id)
    with Live(_render_steps(block), console=out, refresh_per_second=4) as live:
        while block.get("active"):
            time.sleep(interval)
            block = client.status(source_id)
            live.update(_render_steps(block))
    return block


def submit(
    manifest: Annotated[Path | None, typer.Argument(help="A matterhub.yaml manifest.")] = None,
    title: Annotated[str | None, typer.Option(help="Dataset title.")] = None,
    author: Annotated[
        list[str] | None, typer.Option("--author", help="Author (repeatable).")
    ] = None,
    data: Annotated[
        list[str] | None, typer.Option("--data", help="Data source: path or URL (repeatable).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Description.")] = None,
    test: Annotated[bool, typer.Option("--test", help="Test submission.")] = False,
    curation: Annotated[bool, typer.Option("--curation", help="Hold for a curator.")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Show the steps live until done.")] = False,
    hub_paths: Annotated[
        bool,
        typer.Option(
            "--hub-paths",
            help="Local paths name files on the hub's machine (its allowed roots); "
            "by default they are uploaded.",
        ),
    ] = False,
    profile: ProfileOpt = None,
) -> None:
    """Submit a dataset from a matterhub.yaml manifest and/or flags; local files are uploaded."""
    spec = _manifest(manifest) if manifest else {}
    client = _client(profile)
    sub = ConnectClient(client, test=bool(spec.get("test", False)) or test)
    authors = author or spec.get("authors") or []
    if not (title or spec.get("title")) or not authors:
        raise ValueError(
            "a title and at least one author are required (manifest or --title/--author)"
        )
    sub.create_dc_block(
        title=title or spec["title"], authors=authors, affiliations=spec.get("affiliations"),
        description=description or spec.get("description"), subjects=spec.get("tags"),
    )  # fmt: skip
    base = manifest.parent if manifest else Path(".")
    for source in data or spec.get("data_sources") or []:
        local = (base / source) if "://" not in source else None
        sub.add_data_source(
            str(local.resolve()) if local is not None and local.exists() else source
        )
    sub.set_curation(curation or bool(spec.get("curation")))
    if spec.get("source_name"):
        sub.set_source_name(spec["source_name"])
    for project, block in (spec.get("projects") or {}).items():
        sub.set_project_block(project, block)
    result = sub.submit_dataset(upload_local=not hub_paths)
    if not result["success"]:
        err.print(f"[red]error:[/red] {result['error']}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    out.print(f"Submitted: {result['source_id']}")
    if watch:
        block = _watch(client, result["source_id"])
        if block.get("state") in ("failed", "cancelled"):
            raise typer.Exit(1)


def status(
    source_id: Annotated[
        str | None, typer.Argument(help="Submission (all of yours when omitted).")
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Follow until done.")] = False,
    as_json: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """A submission's steps, or the list of your submissions."""
    client = _client(profile)
    if source_id is None:
        subs = client.submissions()
        if as_json:
            _print_json(subs)
            return
        table = Table(title=f"{len(subs)} submission(s)")
        for column in ("source_id", "state", "codes", "submitted"):
            table.add_column(column)
        for s in subs:
            table.add_row(
                s["source_id"],
                s.get("state", ""),
                s.get("status_code", ""),
                s.get("submission_time", ""),
            )
        out.print(table)
        return
    block = _watch(client, source_id) if watch else client.status(source_id)
    if as_json:
        _print_json(block)
    elif not watch:
        out.print(_render_steps(block))


def curate(
    source_id: Annotated[
        str | None, typer.Argument(help="Submission to decide (queue when omitted).")
    ] = None,
    accept: Annotated[bool, typer.Option("--accept", help="Accept it.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject it.")] = False,
    reason: Annotated[str, typer.Option(help="Why (shown to the submitter).")] = "",
    profile: ProfileOpt = None,
) -> None:
    """The curation queue, or accept/reject one submission."""
    client = _client(profile)
    if source_id is None:
        tasks = client.curation_tasks()
        for t in tasks:
            out.print(t.get("source_id", t), highlight=False)
        if not tasks:
            out.print("Nothing waiting for curation.")
        return
    if accept == reject:
        raise ValueError("give exactly one of --accept or --reject")
    if reject and not reason:
        raise ValueError("--reason is required to reject")
    client.curate(source_id, "accept" if accept else "reject", reason or "accepted")
    out.print(f"{source_id}: {'accepted' if accept else 'rejected'}")


def register_client_commands(app: typer.Typer) -> None:
    """Add the user-side commands to the `matterhub` app."""
    for fn in (login, search, show, download, cite, export, submit, status, curate):
        app.command(fn.__name__)(_one_line_errors(fn))
