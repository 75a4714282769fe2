"""Executed notebooks without Jupyter: cells run in this process, outputs stored as nbformat 4.5.

`notebook(cells, quick)` runs the (kind, source) cells in order in one namespace — as a Jupyter
kernel would run them, but in this process, so no Jupyter packages are needed — and stores each
code cell's printed output, its last expression (a DataFrame as a table, a matplotlib figure as
a PNG, a dict as JSON) as outputs. A cell that raises stops the run; nothing is written.
`main(cells, path, description)` is the command line of a notebook script (`--quick`,
`--output`). Used by `examples/delta_learning/notebook.py` and `examples/cdi/notebook.py`.
"""

from __future__ import annotations

import argparse
import ast
import base64
import contextlib
import hashlib
import io
import json
import sys
import traceback
from pathlib import Path
from typing import Any

__all__ = ["execute", "main", "notebook"]


def _source(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    return lines


def _stream(name: str, text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": _source(text)}


def _result(value: Any, count: int) -> dict[str, Any] | None:
    if value is None:
        return None
    if hasattr(value, "savefig"):  # a matplotlib figure: a PNG, as Jupyter's inline backend
        png = io.BytesIO()
        value.savefig(png, format="png", dpi=100)
        data = {"image/png": base64.b64encode(png.getvalue()).decode(), "text/plain": [repr(value)]}
        return {"output_type": "display_data", "data": data, "metadata": {}}
    if isinstance(value, dict):
        text = json.dumps(value, indent=1, default=str)
    else:
        text = value.to_string() if hasattr(value, "to_string") else repr(value)
    data = {"text/plain": _source(text)}
    if hasattr(value, "_repr_html_"):
        data["text/html"] = _source(value._repr_html_())
    return {"output_type": "execute_result", "execution_count": count, "data": data, "metadata": {}}


def execute(code: str, namespace: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """Run one cell; its outputs as nbformat dicts. Raises what the cell raises."""
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    out, err = io.StringIO(), io.StringIO()
    value = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        exec(compile(tree, f"<cell {count}>", "exec"), namespace)
        if last is not None:
            expression = ast.Expression(last.value)
            value = eval(compile(expression, f"<cell {count}>", "eval"), namespace)
    outputs = [
        _stream(n, s.getvalue()) for n, s in (("stdout", out), ("stderr", err)) if s.getvalue()
    ]
    result = _result(value, count)
    return outputs + ([result] if result else [])


def notebook(cells_: list[tuple[str, str]], quick: bool) -> dict[str, Any]:
    """`cells_` (kind, source) executed in order in one namespace: the notebook (nbformat 4.5).

    "{quick}" in a code cell becomes the run's setting. A cell that raises stops the run."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    cells: list[dict[str, Any]] = []
    count = 0
    for i, (kind, text) in enumerate(cells_):
        cell_id = hashlib.sha256(f"{i}:{text}".encode()).hexdigest()[:8]
        if kind == "markdown":
            cells.append(
                {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": _source(text)}
            )
            continue
        count += 1
        code = text.replace("{quick}", str(quick))
        try:
            outputs = execute(code, namespace, count)
        except Exception:
            traceback.print_exc()
            raise SystemExit(f"cell {count} failed; the notebook was not written") from None
        cells.append({
            "cell_type": "code", "id": cell_id, "metadata": {}, "execution_count": count,
            "source": _source(code), "outputs": outputs,
        })  # fmt: skip
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python", "version": sys.version.split()[0]},
        },
        "cells": cells,
    }


def main(cells: list[tuple[str, str]], path: Path, description: str) -> int:
    """Execute the cells (`--quick`: "{quick}" becomes True) and write the notebook."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="the quick run's settings")
    parser.add_argument("--output", default=str(path), help="where to write the notebook")
    args = parser.parse_args()
    document = notebook(cells, args.quick)
    Path(args.output).write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.output}")
    return 0
