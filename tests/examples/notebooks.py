"""What every committed example notebook must be: its script's cells, executed in order."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any


def check_committed(
    script: ModuleType, *, printing: int, quick: bool = False
) -> tuple[list[dict[str, Any]], str]:
    """Check `script.NOTEBOOK` against `script.CELLS` (the code as run with `{quick}` = `quick`,
    counts 1…n, every cell with `print(` has output, at least `printing` of them, unique ids);
    the code cells and all their printed text."""
    document = json.loads(script.NOTEBOOK.read_text())
    assert (document["nbformat"], document["nbformat_minor"]) == (4, 5)
    cells = document["cells"]
    assert [c["cell_type"] for c in cells] == [kind for kind, _ in script.CELLS]
    for cell, (kind, text) in zip(cells, script.CELLS, strict=True):
        expected = text.replace("{quick}", str(quick)) if kind == "code" else text
        assert "".join(cell["source"]) == expected
    code = [c for c in cells if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    printed = [c for c in code if "print(" in "".join(c["source"])]
    assert len(printed) >= printing and all(c["outputs"] for c in printed)
    assert len({c["id"] for c in cells}) == len(cells)
    text = "".join("".join(o.get("text", [])) for c in code for o in c["outputs"])
    return code, text
