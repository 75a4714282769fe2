"""The CDI simulation (`examples/cdi/simulate.py`) obeys physics we can check: Friedel symmetry
for a real object (broken by strain), the photon budget, the twin's identical intensity,
determinism from the seed, the crystal's size, position and phase bounds, and the HDF5 layout."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from examples.cdi import simulate as sim

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def images() -> list[sim.Image]:
    return [sim.simulate(11, i) for i in range(12)]


def test_friedel_symmetry_holds_for_a_real_object_and_strain_breaks_it(images) -> None:
    im = images[0]
    real = np.abs(im.fine)  # the same crystal without its strain phase
    flat = sim.far_field(real)
    assert flat.shape == (32, 32)
    # I(q) = I(−q): with q at half-integers, −q is the point reflection of the array.
    assert np.abs(flat - flat[::-1, ::-1]).max() <= 1e-9 * flat.max()
    strained = sim.far_field(im.fine)
    asymmetry = np.abs(strained - strained[::-1, ::-1]).max() / strained.max()
    assert asymmetry > 1e-3


def test_the_twin_has_the_same_intensity(images) -> None:
    im = images[1]
    a, b = sim.far_field(im.fine), sim.far_field(sim.twin(im.fine))
    assert np.allclose(a, b, rtol=1e-9, atol=1e-9 * a.max())
    assert not np.allclose(im.fine, sim.twin(im.fine))


def test_far_field_is_the_fourier_transform_energy(images) -> None:
    # Parseval on the padded grid: the full |F|² sums to PAD² Σ|o|²; the crop keeps most of it.
    im = images[2]
    padded = np.zeros((sim.PAD, sim.PAD), complex)
    padded[: sim.FINE, : sim.FINE] = im.fine
    full = (np.abs(np.fft.fft2(padded)) ** 2).sum()
    assert math.isclose(full, sim.PAD**2 * (np.abs(im.fine) ** 2).sum(), rel_tol=1e-9)
    kept = sim.far_field(im.fine).sum() / full
    assert 0.9 < kept < 1.0


def test_photon_budget(images) -> None:
    for im in images:
        assert math.isclose(float(im.expected.sum()), sim.PHOTONS, rel_tol=1e-6)
        # Poisson total: mean PHOTONS, standard deviation √PHOTONS = 1000.
        assert abs(float(im.intensity.sum()) - sim.PHOTONS) < 5 * math.sqrt(sim.PHOTONS)
        assert im.intensity.min() >= 0
        assert np.array_equal(im.intensity, np.round(im.intensity))
    quiet = sim.simulate(11, 0, photons=1e3)
    assert abs(float(quiet.intensity.sum()) - 1e3) < 5 * math.sqrt(1e3)


def test_noise_free_is_the_expected_intensity() -> None:
    clean = sim.simulate(11, 3, noise=False)
    noisy = sim.simulate(11, 3)
    assert np.allclose(clean.intensity, noisy.expected, rtol=1e-6)
    assert not np.array_equal(clean.intensity, noisy.intensity)


def test_determinism_from_the_seed() -> None:
    a, b, c = sim.simulate(5, 7), sim.simulate(5, 7), sim.simulate(5, 8)
    assert np.array_equal(a.intensity, b.intensity)
    assert np.array_equal(a.phase, b.phase)
    assert a.params == b.params
    assert not np.array_equal(a.intensity, c.intensity)


def test_support_size_position_and_oversampling(images) -> None:
    n = sim.OUT
    axis = np.arange(n)
    for im in images:
        support = im.support
        # The size rule is on the amplitude alone; phase inside a 2×2 block can only lower |o|.
        assert (sim.block_mean(np.abs(im.fine)) >= 0.5 - 1e-9).sum() >= sim.MIN_SUPPORT
        assert support.sum() >= 0.8 * sim.MIN_SUPPORT
        assert np.array_equal(support, im.amplitude >= 0.5)
        # Centroid at the grid centre (15.5, 15.5), between the central pixels.
        w = im.amplitude
        cy = (w.sum(axis=1) * axis).sum() / w.sum()
        cx = (w.sum(axis=0) * axis).sum() / w.sum()
        assert abs(cy - 15.5) < 0.05 and abs(cx - 15.5) < 0.05
        # Everything (amplitude > 0) within a 15-pixel-wide disc: oversampling ≥ 32/16 = 2.
        ys, xs = np.nonzero(w > 0)
        assert np.sqrt((ys - 15.5) ** 2 + (xs - 15.5) ** 2).max() <= 8.0
        assert w.min() >= 0.0 and w.max() <= 1.0 + 1e-6


def test_phase_bounds_zero_mean_and_twin_convention(images) -> None:
    spread = []
    for im in images:
        phase, support = im.phase, im.support
        assert np.all(phase[~support] == 0)
        assert np.abs(phase[support]).max() <= sim.PHASE_LIMIT + 1e-6
        assert (phase[support] ** 3).sum() >= 0
        mean = np.angle((im.amplitude * np.exp(1j * phase))[support].sum())
        assert abs(mean) < 1e-5
        spread.append(np.ptp(phase[support]))
        # Smooth: neighbouring pixels inside the crystal differ by well under π.
        inner = support[1:, :] & support[:-1, :]
        assert np.abs(np.diff(phase, axis=0)[inner]).max() < 1.5
    assert max(spread) > 1.0  # the strain is not negligible


def test_hdf5_round_trip(tmp_path: Path, images) -> None:
    path = tmp_path / "set.h5"
    sim.write(path, images[:4], name="test", seed=11)
    back = sim.load(path)
    assert back["intensity"].shape == (4, 32, 32)
    assert np.array_equal(back["phase"][2], images[2].phase)
    assert np.array_equal(back["support"][1], images[1].support)
    assert back["attrs"]["photons_per_pattern"] == sim.PHOTONS
    row = back["params"][3]
    assert row["seed"] == [11, 3]
    assert row["family"] == images[3].params.family
    assert row["sources"] == images[3].params.sources
    assert math.isclose(row["total_counts"], float(images[3].intensity.sum()))
