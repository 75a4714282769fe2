"""The committed `examples/cdi/cdi.ipynb` is what `examples/cdi/notebook.py`'s cells produce
(regenerate it after editing them), executed on the documented sets with their outputs."""

from __future__ import annotations

import base64
import json

from examples.cdi import notebook


def test_the_committed_notebook_is_the_scripts_cells_executed() -> None:
    document = json.loads(notebook.NOTEBOOK.read_text())
    assert (document["nbformat"], document["nbformat_minor"]) == (4, 5)
    cells = document["cells"]
    assert [c["cell_type"] for c in cells] == [kind for kind, _ in notebook.CELLS]
    for cell, (kind, text) in zip(cells, notebook.CELLS, strict=True):
        expected = text.replace("{quick}", "False") if kind == "code" else text
        assert "".join(cell["source"]) == expected
    code = [c for c in cells if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    printing = [c for c in code if "print(" in "".join(c["source"])]
    assert len(printing) >= 6 and all(c["outputs"] for c in printing)
    assert len({c["id"] for c in cells}) == len(cells)
    # Executed on the whole test set: every image a record, published from git, the figure drawn.
    text = "".join("".join(o.get("text", [])) for c in code for o in c["outputs"])
    assert "500 records;" in text
    assert "500 records from 1500 files" in text
    pushed = next(line for line in text.splitlines() if line.startswith("pushed "))
    commit, pinned = pushed.split()[1], pushed.split()[-1]
    assert len(commit) == 40 and commit == pinned
    assert "served − in-process: CNN ≤ " in text
    figure = code[-2]["outputs"][0]
    assert base64.b64decode(figure["data"]["image/png"]).startswith(b"\x89PNG")
