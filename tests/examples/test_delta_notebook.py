"""`examples/delta_learning/notebook.py`: cells run in one namespace with Jupyter's outputs, and
the committed notebook is what the script's cells produce (regenerate it after editing them)."""

from __future__ import annotations

import base64

import pytest
from examples.delta_learning import data, notebook

from tests.examples.notebooks import check_committed


def test_cells_run_in_one_namespace_with_jupyter_outputs() -> None:
    namespace: dict[str, object] = {}
    printed = notebook.execute("x = 2\nprint('x is', x)\n{'x': x}", namespace, 1)
    assert printed == [
        {"output_type": "stream", "name": "stdout", "text": ["x is 2\n"]},
        {
            "output_type": "execute_result",
            "execution_count": 1,
            "data": {"text/plain": ["{\n", ' "x": 2\n', "}"]},
            "metadata": {},
        },
    ]
    # The next cell sees the last one's names; a statement last shows nothing.
    assert notebook.execute("y = x + 1", namespace, 2) == []
    assert namespace["y"] == 3
    frame = notebook.execute("import pandas as pd\npd.DataFrame({'a': [1]})", namespace, 3)
    assert frame[0]["data"]["text/plain"] == ["   a\n", "0  1"]
    assert "<table" in "".join(frame[0]["data"]["text/html"])
    figure = notebook.execute(
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\nplt.close(fig)\nfig",
        namespace,
        4,
    )
    assert figure[0]["output_type"] == "display_data"
    assert base64.b64decode(figure[0]["data"]["image/png"]).startswith(b"\x89PNG")
    with pytest.raises(ZeroDivisionError):
        notebook.execute("1 / 0", namespace, 5)


def test_the_committed_notebook_is_the_scripts_cells_executed() -> None:
    code, text = check_committed(notebook, printing=8)
    # Executed on the whole data set: every molecule found, the parity plot drawn.
    assert f"{len(data.molecule_names())} records;" in text
    assert "held-out MAE vs experiment" in text
    assert any("image/png" in o.get("data", {}) for o in code[-2]["outputs"])
