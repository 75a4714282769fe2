"""The CDI scripts end to end on tiny sets, as a user runs them: simulate --small, train one
epoch, evaluate four test images — the table, the per-image JSON and the figure come out."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from examples.cdi import evaluate, simulate

os.environ.setdefault("KERAS_BACKEND", "torch")
from examples.cdi import model as cnn

pytestmark = [
    pytest.mark.timeout(180),
    # Keras's own variables (fit's restore_best_weights) call np.array(variable) under numpy 2.
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
]


def test_simulate_train_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, trained, figure = tmp_path / "data", tmp_path / "trained", tmp_path / "fig.png"
    assert simulate.main(["--small", "--out", str(data)]) == 0
    assert simulate.load(data / "test.h5")["intensity"].shape == (32, 32, 32)
    assert cnn.main(["--epochs", "1", "--data", str(data), "--out", str(trained)]) == 0
    history = json.loads((trained / "history.json").read_text())
    assert history["n_train"] == 256 and history["n_validation"] == 64
    argv = ["--data", str(data), "--model", str(trained), "--n", "4", "--figure", str(figure)]
    assert evaluate.main(argv) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows[1:]] == [
        "CNN",
        "phase retrieval",
        "flat phase on the true shape (reference)",
    ]
    result = json.loads((trained / "evaluation.json").read_text())
    assert result["n"] == 4
    for name in ("CNN", "phase retrieval"):
        scores = result["rows"][name]
        assert len(scores["shape"]) == len(scores["phase"]) == 4
        assert all(0.0 <= s <= 1.0 for s in scores["shape"])
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Phase retrieval's results are kept and reused for the same intensities.
    assert (trained / evaluate.PR_CACHE).exists()
