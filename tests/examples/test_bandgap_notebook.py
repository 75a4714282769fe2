"""The committed `examples/bandgap/bandgap.ipynb` is what `examples/bandgap/notebook.py`'s cells
produce (regenerate it after editing them), executed with `--quick` (2,000 samples) on a hub of
its own: every code cell has output, none an error, and the outputs are the workflow's.

Running the notebook here would cost as much as `test_bandgap_workflow.py`, which runs the same
functions against a real server; this checks the committed document instead."""

from __future__ import annotations

import base64
import re

from examples.bandgap import notebook, servables
from examples.bandgap.workflow import QUICK_SIZE

from tests.examples.notebooks import check_committed


def test_the_committed_notebook_is_the_scripts_cells_executed() -> None:
    code, text = check_committed(notebook, printing=8, quick=True)
    # Every code cell answered something, and nothing failed.
    for cell in code:
        assert cell["outputs"], "".join(cell["source"])
        for output in cell["outputs"]:
            assert output["output_type"] != "error"
            assert "Traceback" not in "".join(output.get("text", []))
    # 1. One submission: every sample a record, searchable.
    assert f"{QUICK_SIZE} records from {2 * QUICK_SIZE} files" in text
    # 2. The Forge cuts split the whole set.
    cut = re.search(rf"^{QUICK_SIZE} records; train (\d+), test (\d+)$", text, re.M)
    assert cut is not None and int(cut[1]) + int(cut[2]) == QUICK_SIZE and int(cut[2]) > 0
    # 3. Six servables, each with its own identifier.
    names = [servables.ENCODER, *servables.MODEL_NAMES.values(), servables.TAUC]
    identifiers = {
        name: re.search(rf"^  bandgap/{name}: identifier (\S+)$", text, re.M)
        for name in [*names, servables.PIPELINE]
    }
    assert all(identifiers.values()), identifiers
    assert len({m[1] for m in identifiers.values() if m}) == len(identifiers)
    # 4. The served answers are the in-process models' on every test image.
    for name in [servables.ENCODER, *servables.MODEL_NAMES.values()]:
        served = re.search(rf"^  {name}: (\d+) images, .* in-process (\S+)$", text, re.M)
        assert served is not None and int(served[1]) == int(cut[2]), name
        assert float(served[2]) < 1e-4, name
    # The MAE table has every model, the pipeline and the baseline; the two figures are PNGs.
    table = "".join(code[-4]["outputs"][0]["data"]["text/plain"])
    for row in [*servables.MODEL_NAMES.values(), servables.PIPELINE, "baseline (training mean)"]:
        assert re.search(rf"^{re.escape(row)}\s+\d\.\d+$", table, re.M), table
    for cell in code[-3:-1]:
        png = cell["outputs"][-1]["data"]["image/png"]
        assert base64.b64decode(png).startswith(b"\x89PNG")
