"""`matterhub run owner/name --input file.json`: run a servable on a hub (over the client)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from matterhub.client import Client, ClientError
from matterhub.client.runs import RemoteServableError

__all__ = ["register_run_commands"]


def _value(text: str | None, what: str) -> Any:
    if text is None:
        return None
    if text == "-":
        return json.loads(sys.stdin.read())
    path = Path(text)
    try:
        return json.loads(path.read_text() if path.is_file() else text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{what} is neither a JSON file nor JSON text: {exc}") from exc


def run(
    name: Annotated[str, typer.Argument(help="The servable, owner/name.")],
    input_: Annotated[
        str | None, typer.Option("--input", "-i", help="JSON file, JSON text, or - for stdin.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="A .npy array as the input (sent as binary, not JSON)."),
    ] = None,
    upload: Annotated[
        list[str] | None,
        typer.Option(
            "--upload",
            "-u",
            help="A file input to upload (repeatable): PATH (alone, it is the input) or "
            'PART=PATH, named in --input as {"upload": "PART"}. For a servable whose input '
            "is a structure, the file's text is sent (XYZ, CIF, POSCAR, ASE JSON); with "
            "--batch, one task per file.",
        ),
    ] = None,
    parameters: Annotated[
        str | None, typer.Option("--parameters", help="JSON object (file or text).")
    ] = None,
    asynchronous: Annotated[
        bool, typer.Option("--async", help="Queue it; print the task id and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Also print stdout/stderr/time.")] = False,
    batch: Annotated[
        bool, typer.Option("--batch", help="The input is a list: one task per item; wait.")
    ] = False,
    version: Annotated[str | None, typer.Option("--version", help="A version.")] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="Saved login profile.")
    ] = None,
) -> None:
    """Run a servable and print its output as JSON."""
    given = [flag for flag, v in (("--input", input_), ("--file", file)) if v is not None]
    if len(given) > 1 or not (given or upload):
        raise typer.BadParameter("give one of --input, --file or --upload")
    client = Client.from_config(profile)
    inputs = _value(input_, "--input") if file is None else _npy(file)
    params = _value(parameters, "--parameters")
    files = _uploads(upload or [])
    extra: dict[str, Any] = {"files": files, "binary": file is not None}
    try:
        if files and not given and _takes_structure(client, name, version):
            # A structure is text (XYZ, CIF, POSCAR, ASE JSON): the files' texts are the input.
            texts = [_text(part, path) for part, path in files.items()]
            if len(texts) > 1 and not batch:
                raise typer.BadParameter("several --upload files for one structure: add --batch")
            inputs = texts if batch else texts[0]
            extra["files"] = {}
        if batch:
            done = client.run_batch(name, inputs, params, wait=True, version=version)
            answer: Any = [done["tasks"][i].get("result") for i in done["tasks"]]
        elif asynchronous:
            future = client.run(name, inputs, params, asynchronous=True, version=version, **extra)
            answer = {"task_id": future.task_id}
            future.cancel()
        elif debug:
            value, meta = client.run(name, inputs, params, debug=True, version=version, **extra)
            answer = {"output": value, "metadata": meta}
        else:
            answer = client.run(name, inputs, params, version=version, **extra)
    except RemoteServableError as exc:
        typer.echo(f"error: the servable failed: {exc}", err=True)
        raise typer.Exit(1) from None
    except ClientError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        client.close()
    typer.echo(json.dumps(answer, indent=2, default=_plain))


def _takes_structure(client: Client, name: str, version: str | None) -> bool:
    """Whether the servable's (or pipeline's) declared input is one `structure`."""
    document = client.describe_servable(name, version).get("document") or {}
    run = (document.get("servable", {}).get("methods") or {}).get("run") or {}
    return bool((run.get("input") or {}).get("type") == "structure")


def _text(part: str, path: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise typer.BadParameter(f"--upload {part}: a structure file is text (UTF-8)") from None


def _npy(path: Path) -> Any:
    try:
        import numpy as np
    except ImportError as exc:  # pragma: no cover - numpy comes with the ml/materials extras
        raise typer.BadParameter("--file needs numpy installed") from exc
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"--file {path}: not a .npy array ({exc})") from None


def _uploads(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, value in enumerate(values):
        part, sep, path = value.partition("=")
        if not sep:
            part, path = f"file{i}", value
        if not Path(path).expanduser().is_file():
            raise typer.BadParameter(f"--upload {value}: no such file")
        out[part] = path
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"cannot print {type(value).__name__} as JSON")


def register_run_commands(app: typer.Typer) -> None:
    """Add `matterhub run` to the top-level app."""
    app.command("run")(run)
