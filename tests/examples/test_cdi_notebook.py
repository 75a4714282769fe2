"""The committed `examples/cdi/cdi.ipynb` is what `examples/cdi/notebook.py`'s cells produce
(regenerate it after editing them), executed on the documented sets with their outputs."""

from __future__ import annotations

import base64

from examples.cdi import notebook

from tests.examples.notebooks import check_committed


def test_the_committed_notebook_is_the_scripts_cells_executed() -> None:
    code, text = check_committed(notebook, printing=6)
    # Executed on the whole test set: every image a record, published from git, the figure drawn.
    assert "500 records;" in text
    assert "500 records from 1500 files" in text
    pushed = next(line for line in text.splitlines() if line.startswith("pushed "))
    commit, pinned = pushed.split()[1], pushed.split()[-1]
    assert len(commit) == 40 and commit == pinned
    assert "served − in-process: CNN ≤ " in text
    figure = code[-2]["outputs"][0]
    assert base64.b64decode(figure["data"]["image/png"]).startswith(b"\x89PNG")
