"""Phase retrieval (`examples/cdi/phase_retrieval.py`): it recovers a simple noise-free strained
crystal (shape and phase, to thresholds a bad reconstruction fails), refuses bad input, and its
servable entry point answers amplitude and phase on the 32×32 grid."""

from __future__ import annotations

import numpy as np
import pytest
from examples.cdi import metrics as met
from examples.cdi import phase_retrieval as pr
from examples.cdi import simulate as sim

pytestmark = pytest.mark.timeout(60)


def _hexagon() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A centred hexagon with an off-centre strain bump: intensity, true support and phase."""
    angles = np.arange(6) * np.pi / 3 + 0.2
    normals = np.stack([np.sin(angles), np.cos(angles)], axis=1)
    amplitude = sim._rasterise(normals, np.full(6, 11.0))
    phi = 1.6 * np.exp(-((sim._Y - 4) ** 2 + (sim._X - 3) ** 2) / (2 * 6.0**2))
    fine = amplitude * np.exp(1j * phi)
    coarse = sim.block_mean(fine)
    support = np.abs(coarse) >= 0.5
    phase = np.where(support, np.angle(coarse * np.exp(-1j * np.angle(coarse[support].sum()))), 0)
    intensity = sim.far_field(fine)
    return intensity * (1e6 / intensity.sum()), support, phase


def test_recovers_a_noise_free_crystal() -> None:
    intensity, support, phase = _hexagon()
    # A flat phase on the true shape is far off: the threshold below means something.
    assert met.phase_error(np.zeros_like(phase), phase, support) > 0.4
    result = pr.reconstruct(intensity, seed=1)
    assert result.amplitude.shape == result.phase.shape == (32, 32)
    assert result.error < 0.05
    score = met.score(result.amplitude, result.phase, support, phase)
    assert score.shape_error < 0.1
    assert score.phase_error < 0.2


def test_the_servable_entry_point_and_bad_input() -> None:
    intensity, _, _ = _hexagon()
    out = pr.retrieve_phase(intensity.tolist())
    assert out.shape == (2, 32, 32)
    amplitude, phase = out
    assert amplitude.min() >= 0 and np.abs(phase).max() <= np.pi + 1e-6
    assert np.all(phase[amplitude < 0.5] == 0)
    with pytest.raises(ValueError, match="32x32"):
        pr.reconstruct(np.ones((16, 16)))
    with pytest.raises(ValueError, match="finite"):
        pr.reconstruct(np.full((32, 32), np.nan))
