"""The CDI network (`examples/cdi/model.py`, Keras 3 on PyTorch): it trains an epoch on a tiny
simulated set, its outputs have the right shapes and ranges, and both saved forms (architecture
JSON + weights, `.keras`) load in this process to the same predictions."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from examples.cdi import simulate as sim

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
from examples.cdi import model as cnn

pytestmark = [
    pytest.mark.timeout(120),
    # Keras's own variables (fit's restore_best_weights) call np.array(variable) under numpy 2.
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
]


def _as_set(images: list[sim.Image]) -> dict[str, np.ndarray]:
    return {
        "intensity": np.stack([im.intensity for im in images]),
        "amplitude": np.stack([im.amplitude for im in images]),
        "phase": np.stack([im.phase for im in images]),
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, dict, Path, dict]:
    train = _as_set(sim.simulate_set(31, 48))
    validation = _as_set(sim.simulate_set(32, 16))
    untrained = cnn.weights(cnn.build(seed=0))
    model, history = cnn.train(train, validation, epochs=1, batch_size=16, verbose=0)
    folder = tmp_path_factory.mktemp("cdi_model")
    cnn.save(model, folder)
    changed = any(
        not np.array_equal(a, b) for a, b in zip(untrained, cnn.weights(model), strict=True)
    )
    return model, history, folder, {"changed": changed, "validation": validation}


def test_prepare_scales_counts_into_zero_one() -> None:
    counts = np.zeros((2, 32, 32), np.float32)
    counts[0, 16, 16] = 1e5
    counts[1] = 7.0
    x = cnn.prepare(counts)
    assert x.shape == (2, 32, 32, 1) and x.dtype == np.float32
    assert x[0].max() == pytest.approx(1.0) and x[0].min() == 0.0
    assert np.allclose(x[1], 1.0)
    assert cnn.prepare(counts[0]).shape == (1, 32, 32, 1)


def test_one_epoch_trains_and_the_outputs_have_the_right_shapes_and_ranges(trained) -> None:
    model, history, _, extra = trained
    assert extra["changed"]
    assert len(history["loss"]) == 1 and math.isfinite(history["val_loss"][0])
    assert history["parameters"] == model.count_params() < 300_000
    amplitude, phase = cnn.predict(model, extra["validation"]["intensity"])
    assert amplitude.shape == phase.shape == (16, 32, 32)
    assert amplitude.min() >= 0.0 and amplitude.max() <= 1.0
    assert -math.pi <= phase.min() and phase.max() <= math.pi


def test_saved_forms_load_to_the_same_predictions(trained) -> None:
    model, _, folder, extra = trained
    x = extra["validation"]["intensity"][:4]
    expected = cnn.predict(model, x)
    for form in ("json", "keras"):
        loaded = cnn.load(folder, form=form)
        # What is saved is the inference form: batch normalisation folded into the convolutions.
        assert not any(
            isinstance(layer, keras.layers.BatchNormalization) for layer in loaded.layers
        )
        assert loaded.count_params() < model.count_params()
        got = cnn.predict(loaded, x)
        for a, b in zip(expected, got, strict=True):
            assert np.allclose(a, b, atol=1e-5), form  # float32 rounding of the folded weights
    arch = json.loads((folder / cnn.ARCH).read_text())
    assert arch["class_name"] == "Functional"
    # Weights only (no optimizer state): ~0.2 MB for ~50 k float32 parameters.
    for name in (cnn.WEIGHTS, cnn.KERAS):
        assert (folder / name).stat().st_size < 1.2e6


def test_folding_batch_norm_keeps_the_answers_of_a_model_whose_statistics_moved() -> None:
    model = cnn.build(3)
    rng = np.random.default_rng(0)
    # Statistics and scales far from the initial (0, 1), as after training.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 0.3, n),
                               rng.normal(0, 0.5, n), rng.uniform(0.2, 3, n)])  # fmt: skip
    x = rng.uniform(0, 1, size=(8, 32, 32, 1)).astype(np.float32)
    folded = cnn.fold_batch_norm(model)
    assert cnn.fold_batch_norm(folded) is folded  # nothing left to fold
    for a, b in zip(model.predict_on_batch(x), folded.predict_on_batch(x), strict=True):
        assert np.abs(a - b).max() < 1e-5
