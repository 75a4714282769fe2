"""The band-gap simulation (`examples/bandgap/simulate.py`): the composition grid, the bowing
rule, the Tauc edge a fit recovers, colour that agrees with colour-science and with the eye (a
2.2 eV edge is orange), determinism and chunking, shapes and ranges."""

from __future__ import annotations

import math

import numpy as np
import pytest
from examples.bandgap import bandgap as bg
from examples.bandgap import simulate as sim

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def samples() -> dict[str, np.ndarray]:
    return sim.simulate(1500, 7)


def test_grid_enumerates_the_quaternary_simplex() -> None:
    g = sim.grid()
    assert g.shape == (sim.GRID_SIZE, 4) == (176_851, 4)
    assert np.allclose(g.sum(axis=1), 1.0)
    assert g.min() == 0.0 and g.max() == 1.0
    steps = np.rint(g * sim.GRID_STEPS)
    assert np.allclose(g * sim.GRID_STEPS, steps)
    assert len(np.unique(steps, axis=0)) == sim.GRID_SIZE
    # The full set: every composition once, the first FULL_SIZE − GRID_SIZE of the order twice.
    perm = sim.order(1)
    assert np.array_equal(np.sort(perm), np.arange(sim.GRID_SIZE))
    assert sim.FULL_SIZE - sim.GRID_SIZE == 4051


def test_gap_is_linear_in_end_members_minus_bowing() -> None:
    eye = np.eye(4)
    assert np.allclose(sim.band_gap(eye), sim.END_MEMBER_GAP_EV)
    # 50/50 binaries: mean of the end members minus b/4.
    for b, (i, j) in zip(sim.BOWING_EV, sim.PAIRS, strict=True):
        x = np.zeros(4)
        x[i] = x[j] = 0.5
        expected = (sim.END_MEMBER_GAP_EV[i] + sim.END_MEMBER_GAP_EV[j]) / 2 - b / 4
        assert math.isclose(float(sim.band_gap(x)), expected, abs_tol=1e-12)
    x = np.array([0.1, 0.2, 0.3, 0.4])
    hand = x @ sim.END_MEMBER_GAP_EV - sum(
        b * x[i] * x[j] for b, (i, j) in zip(sim.BOWING_EV, sim.PAIRS, strict=True)
    )
    assert math.isclose(float(sim.band_gap(x)), hand, abs_tol=1e-12)


def test_edge_is_direct_tauc_above_and_urbach_below() -> None:
    gap = np.array([2.4])
    energy = np.linspace(2.0, 4.0, 400)
    alpha = sim.absorption_coefficient(gap, sim.HC_EV_NM / energy)[0]
    above = energy > gap[0] + sim.URBACH_EV
    tauc = (alpha * energy) ** 2
    assert np.allclose(tauc[above], sim.TAUC_K**2 * (energy[above] - 2.4), rtol=1e-9)
    below = energy < gap[0]
    slope = np.diff(np.log(alpha[below])) / np.diff(energy[below])
    assert np.allclose(slope, 1 / sim.URBACH_EV, rtol=1e-6)
    assert np.all(np.diff(alpha) > 0)  # monotonic edge, continuous at the joint


def test_tauc_fit_recovers_the_gap(samples) -> None:
    gaps = np.linspace(1.9, 3.3, 29)
    clean = sim.absorption_coefficient(gaps, sim.WAVELENGTH_NM)
    assert np.allclose(bg.tauc_gap(clean, sim.WAVELENGTH_NM), gaps, atol=1e-6)
    assert math.isclose(float(bg.tauc_gap(clean[3], sim.WAVELENGTH_NM)), gaps[3], abs_tol=1e-6)
    noisy = bg.tauc_gap(samples["absorbance"], samples["wavelength_nm"])
    assert np.abs(noisy - samples["gap_ev"]).mean() < 0.02


def test_colour_matches_colour_science_and_the_eye() -> None:
    import colour

    transmittance = np.exp(-sim.absorption_coefficient(np.array([2.2]), sim.WAVELENGTH_NM) * 3e-5)
    shape = colour.SpectralShape(380, 780, 5)
    visible = (sim.WAVELENGTH_NM >= 380) & (sim.WAVELENGTH_NM <= 780)
    sd = colour.SpectralDistribution(
        dict(zip(sim.WAVELENGTH_NM[visible], transmittance[0, visible], strict=True))
    )
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"].copy().align(shape)
    d65 = colour.SDS_ILLUMINANTS["D65"].copy().align(shape)
    # The spectrum is on the CMFs' 5 nm grid: colour-science's own integration.
    reference = colour.sd_to_XYZ(sd, cmfs=cmfs, illuminant=d65, method="Integration") / 100
    xyz = sim.transmitted_xyz(transmittance)[0]
    assert np.allclose(xyz, reference, atol=2e-3)
    rgb = sim.spectra_to_srgb(transmittance)[0]
    assert np.allclose(rgb, np.clip(colour.XYZ_to_sRGB(reference), 0, 1), atol=5e-3)
    assert rgb[0] > rgb[1] > rgb[2]  # a 2.2 eV edge is orange
    assert rgb[0] - rgb[2] > 0.5
    white = sim.spectra_to_srgb(np.ones((1, sim.WAVELENGTH_NM.size)))[0]
    assert np.allclose(white, 1.0, atol=2e-3)  # a bare film transmits white D65
    # A wider gap is paler: more blue gets through.
    wide = np.exp(-sim.absorption_coefficient(np.array([3.0]), sim.WAVELENGTH_NM) * 3e-5)
    assert sim.spectra_to_srgb(wide)[0, 2] > rgb[2] + 0.3


def test_shapes_ranges_and_texture(samples) -> None:
    n, m = 1500, sim.WAVELENGTH_NM.size
    assert samples["composition"].shape == (n, 4)
    assert list(samples["elements"]) == list(sim.ELEMENTS)
    assert samples["image"].shape == (n, 16, 16, 3) and samples["image"].dtype == np.uint8
    assert samples["absorbance"].shape == (n, m) and m == 101
    assert np.array_equal(samples["index"], np.arange(n))
    assert np.allclose(samples["gap_ev"], sim.band_gap(samples["composition"]))
    assert samples["gap_ev"].min() > 2.0 and samples["gap_ev"].max() <= 3.2
    lo, hi = sim.THICKNESS_NM
    assert lo <= samples["thickness_nm"].min() and samples["thickness_nm"].max() <= hi
    assert samples["wavelength_nm"][0] == 300 and samples["wavelength_nm"][-1] == 800
    # Compositions spread over the simplex, each distinct (fewer samples than grid points).
    assert len(np.unique(samples["grid_row"])) == n
    assert np.all(samples["composition"].mean(axis=0) > 0.2)
    # Texture: the thickness field makes pixels of a coloured film differ beyond sensor noise.
    images = samples["image"].astype(float)
    coloured = samples["gap_ev"] < 2.4
    spread = images[coloured].std(axis=(1, 2)).max(axis=1)
    assert np.median(spread) > 3 * sim.SENSOR_NOISE_DN
    # Lower gap → darker blue channel (absorbs more of the visible).
    corr = np.corrcoef(samples["gap_ev"], images[..., 2].mean(axis=(1, 2)))[0, 1]
    assert corr > 0.7


def test_deterministic_and_chunkable(samples) -> None:
    again = sim.simulate(1500, 7)
    for key in ("image", "absorbance", "thickness_nm", "composition"):
        assert np.array_equal(again[key], samples[key])
    part = sim.simulate(300, 7, start=1100)  # crosses a block boundary (1024)
    assert np.array_equal(part["image"], samples["image"][1100:1400])
    assert np.array_equal(part["index"], np.arange(1100, 1400))
    other = sim.simulate(50, 8)
    assert not np.array_equal(other["image"], samples["image"][:50])
    assert sim.simulate(0, 7)["image"].shape == (0, 16, 16, 3)
    with pytest.raises(ValueError):
        sim.simulate(-1, 7)


def test_repeat_prints_beyond_the_grid() -> None:
    tail = sim.simulate(3, 1, start=sim.GRID_SIZE - 1)
    assert list(tail["print"]) == [0, 1, 1]
    head = sim.simulate(2, 1)
    assert np.array_equal(tail["composition"][1:], head["composition"])
    assert not np.array_equal(tail["image"][1:], head["image"])  # another film of the same ink
