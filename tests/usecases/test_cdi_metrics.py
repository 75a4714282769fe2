"""The CDI error metrics (`examples/cdi/metrics.py`) on constructed cases: identical → 0, a
global phase offset and the twin are forgiven, a shifted or wrong shape and a wrong phase are not."""

from __future__ import annotations

import math

import numpy as np
import pytest
from examples.cdi import metrics as met
from examples.cdi import simulate as sim

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def truth() -> sim.Image:
    return sim.simulate(21, 0)


def test_identical_is_zero_error(truth: sim.Image) -> None:
    s = met.score(truth.amplitude, truth.phase, truth.support, truth.phase)
    assert s.shape_error == 0.0
    assert s.phase_error == pytest.approx(0.0, abs=1e-6)


def test_a_global_phase_offset_is_forgiven_even_across_the_wrap(truth: sim.Image) -> None:
    for offset in (0.7, math.pi - 0.1, -2.5):
        shifted = np.angle(np.exp(1j * (truth.phase + offset)))  # wrapped into (−π, π]
        s = met.score(truth.amplitude, shifted, truth.support, truth.phase)
        assert s.phase_error == pytest.approx(0.0, abs=1e-5)
        assert s.shape_error == 0.0


def test_the_twin_is_forgiven_only_when_asked(truth: sim.Image) -> None:
    amp, phase = met.twin_pair(truth.amplitude, truth.phase)
    s = met.score(amp, phase + 1.0, truth.support, truth.phase)
    assert s.twin
    assert s.shape_error == 0.0 and s.phase_error == pytest.approx(0.0, abs=1e-5)
    strict = met.score(amp, phase, truth.support, truth.phase, forgive_twin=False)
    assert strict.phase_error > 0.1  # the strained crystal is not its own twin
    # The twin construction matches the simulation's (conjugate point reflection).
    back = sim.block_mean(sim.twin(truth.fine))
    assert np.allclose(np.abs(back), amp, atol=1e-6)


def test_a_shifted_shape_is_not_forgiven(truth: sim.Image) -> None:
    moved = np.roll(truth.amplitude, 2, axis=1)
    s = met.score(moved, np.roll(truth.phase, 2, axis=1), truth.support, truth.phase)
    assert s.shape_error > 0.2
    assert s.phase_error > 0.05


def test_a_wrong_shape_and_a_wrong_phase_are_not_forgiven(truth: sim.Image) -> None:
    square = np.zeros((32, 32), np.float32)
    square[10:22, 10:22] = 1
    s = met.score(square, truth.phase, truth.support, truth.phase)
    union = (square.astype(bool) | truth.support).sum()
    inter = (square.astype(bool) & truth.support).sum()
    assert s.shape_error == pytest.approx(1 - inter / union)
    assert s.shape_error > 0.1
    flat = met.score(truth.amplitude, np.zeros_like(truth.phase), truth.support, truth.phase)
    expected = met.phase_error(np.zeros_like(truth.phase), truth.phase, truth.support)
    assert flat.phase_error == pytest.approx(expected)
    assert flat.phase_error > 0.2


def test_known_values() -> None:
    true = np.zeros((4, 4), bool)
    true[1:3, 1:3] = True
    pred = np.zeros((4, 4), bool)
    pred[1:3, 1:4] = True
    assert met.shape_error(pred, true) == pytest.approx(1 - 4 / 6)
    assert met.shape_error(np.zeros((4, 4)), np.zeros((4, 4))) == 0.0
    # Phase differences ±0.3 around the offset: RMS 0.3.
    t = np.zeros((4, 4))
    p = np.where(np.arange(16).reshape(4, 4) % 2 == 0, 1.3, 0.7)
    assert met.phase_error(p, t, np.ones((4, 4), bool)) == pytest.approx(0.3, abs=1e-9)
    with pytest.raises(ValueError, match="empty"):
        met.phase_error(p, t, np.zeros((4, 4), bool))
