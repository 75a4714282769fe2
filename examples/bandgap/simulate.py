"""Simulated printed metal-oxide films: composition → band gap → absorption spectrum → colour image.

The MDF/DLHub paper's first use case (Stein et al.) used optical images and absorption spectra of
metal oxides printed at high throughput. This module makes such samples from physics; every
number below is a module constant.

1. **Composition**: fractions of four cations ``ELEMENTS`` = (Bi, V, Fe, Ce) on the quaternary
   simplex with step 1/``GRID_STEPS`` (1/100): ``GRID_SIZE`` = C(103, 3) = 176,851 compositions
   (``grid()``). The paper's data set has 180,902 records; here sample i of a set with seed s is
   composition ``grid()[order(s)[i mod GRID_SIZE]]`` with ``order(s)`` a seeded permutation, so a
   set of any size n covers the whole simplex evenly, and the full set (``FULL_SIZE`` = 180,902)
   holds every grid composition once plus 4,051 compositions printed a second time (``print`` =
   1: another film of the same ink, with its own thickness field and noise). The composition grid
   itself does not depend on the seed; which compositions are repeated does.
2. **Band gap** (eV) from the end-member gaps with quadratic bowing,
   E_g(x) = Σ_i x_i E_i − Σ_{i<j} b_ij x_i x_j, with ``END_MEMBER_GAP_EV`` the optical gaps of
   α-Bi2O3 2.8, V2O5 2.3, α-Fe2O3 2.1 and CeO2 3.2 eV (typical thin-film values reported in the
   literature, rounded) and ``BOWING_EV`` six bowing parameters drawn once with
   ``numpy.random.default_rng(18).uniform(0.2, 0.8, 6)`` and rounded to 0.01 eV (fixed constants:
   the gap is a function of composition only). Over the grid E_g runs from 2.10 (α-Fe2O3) to
   3.20 eV (CeO2): every edge lies inside the spectral range.
3. **Absorption coefficient** α(E), E = hc/λ (``HC_EV_NM`` = 1239.84 eV nm), a **direct** allowed
   Tauc edge, α(E) = K·√(E − E_g)/E with K = ``TAUC_K`` = 3×10⁵ cm⁻¹ eV^½ (so (αE)² = K²(E − E_g)
   is exactly linear: a Tauc plot recovers E_g), joined at E_t = E_g + E_U/2 — where the two
   logarithmic slopes agree — to an **Urbach tail** α(E) = α(E_t)·exp((E − E_t)/E_U) below it,
   E_U = ``URBACH_EV`` = 0.07 eV.
4. **Thickness**: each film has a mean thickness d̄ ~ U(``THICKNESS_NM``) = U(150, 400) nm and a
   smooth relative thickness field over its ``IMAGE_SIZE``×``IMAGE_SIZE`` (16×16) image: a dome
   (printed drops are thicker in the middle) of random height plus three random low-frequency
   plane waves (0.3–1.5 cycles per image), squashed into ±``THICKNESS_SPREAD`` (±30 %) with tanh.
   This field is the image's texture.
5. **Spectrum**: stored is the **decadic absorbance at the mean thickness**,
   A(λ) = α(λ)·d̄ / ln 10 on ``WAVELENGTH_NM`` = 300, 305, …, 800 nm (101 points), plus Gaussian
   noise of σ = ``ABSORBANCE_NOISE`` = 0.005 (as a spectrometer's). The gap is independent of the
   scale d̄ (the Tauc intercept does not move when A is scaled).
6. **Image**: each pixel transmits T(λ) = exp(−α(λ)·d(pixel)) of CIE D65 light (no reflection
   losses). Its colour is XYZ = Σ_λ D65·T·(x̄, ȳ, z̄) / Σ_λ D65·ȳ over 380–780 nm at 5 nm with the
   CIE 1931 2° colour-matching functions (``colour-science``; a bare film is white, Y = 1),
   converted to linear sRGB, clipped to [0, 1], encoded with the sRGB transfer function, and
   given sensor noise (Gaussian, σ = ``SENSOR_NOISE_DN`` = 2 digital numbers) before rounding
   to uint8. All pixels of a chunk go through one matrix product.

Randomness: samples are made in blocks of ``BLOCK`` = 1024 indices; block b of seed s draws from
``numpy.random.default_rng([s, b])``, so ``simulate(n, s, start=k)`` returns exactly the rows
k … k+n−1 of a larger set and chunked generation gives the same bytes as one call.

    PYTHONPATH=$PWD python -m examples.bandgap.simulate --n 2000 --seed 1   # summary + timing
"""

from __future__ import annotations

import argparse
import math
import time
from functools import lru_cache

import numpy as np

__all__ = [
    "ABSORBANCE_NOISE",
    "BLOCK",
    "BOWING_EV",
    "ELEMENTS",
    "END_MEMBER_GAP_EV",
    "FULL_SIZE",
    "GRID",
    "GRID_SIZE",
    "GRID_STEPS",
    "HC_EV_NM",
    "IMAGE_SIZE",
    "SENSOR_NOISE_DN",
    "TAUC_K",
    "THICKNESS_NM",
    "THICKNESS_SPREAD",
    "URBACH_EV",
    "WAVELENGTH_NM",
    "absorption_coefficient",
    "band_gap",
    "grid",
    "order",
    "simulate",
    "spectra_to_srgb",
    "transmitted_xyz",
]

ELEMENTS: tuple[str, str, str, str] = ("Bi", "V", "Fe", "Ce")
END_MEMBER_GAP_EV = np.array([2.8, 2.3, 2.1, 3.2])  # Bi2O3, V2O5, Fe2O3, CeO2
#: b_ij for the pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3): default_rng(18).uniform(0.2, 0.8, 6).
BOWING_EV = np.array([0.44, 0.63, 0.37, 0.25, 0.78, 0.54])
PAIRS = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
GRID_STEPS = 100
GRID_SIZE = math.comb(GRID_STEPS + 3, 3)  # 176,851
FULL_SIZE = 180_902  # the paper's number of records
HC_EV_NM = 1239.84
WAVELENGTH_NM = np.arange(300.0, 800.0 + 1e-9, 5.0)
TAUC_K = 3.0e5  # cm⁻¹ eV^½
URBACH_EV = 0.07
THICKNESS_NM = (150.0, 400.0)
THICKNESS_SPREAD = 0.3
ABSORBANCE_NOISE = 0.005
IMAGE_SIZE = 16
SENSOR_NOISE_DN = 2.0
BLOCK = 1024
_VISIBLE = (WAVELENGTH_NM >= 380.0) & (WAVELENGTH_NM <= 780.0)


@lru_cache(maxsize=1)
def grid() -> np.ndarray:
    """All compositions (GRID_SIZE, 4) with fractions k/GRID_STEPS summing to 1 (read-only)."""
    n = GRID_STEPS
    a, b, c = np.meshgrid(np.arange(n + 1), np.arange(n + 1), np.arange(n + 1), indexing="ij")
    a, b, c = a.ravel(), b.ravel(), c.ravel()
    keep = a + b + c <= n
    counts = np.stack([a[keep], b[keep], c[keep], n - (a + b + c)[keep]], axis=1)
    out = counts.astype(np.float64) / n
    out.setflags(write=False)
    return out


GRID = grid  # the interface's name: GRID() enumerates the quaternary grid


@lru_cache(maxsize=4)
def order(seed: int) -> np.ndarray:
    """The seeded permutation of grid rows in which a set of this seed visits compositions."""
    return np.random.default_rng([seed, 2**31 - 1]).permutation(GRID_SIZE)


def band_gap(composition: np.ndarray) -> np.ndarray:
    """E_g (eV) of compositions (..., 4): linear in the end members minus the bowing terms."""
    x = np.asarray(composition, dtype=np.float64)
    gap = x @ END_MEMBER_GAP_EV
    for b, (i, j) in zip(BOWING_EV, PAIRS, strict=True):
        gap = gap - b * x[..., i] * x[..., j]
    return gap


def absorption_coefficient(gap_ev: np.ndarray, wavelength_nm: np.ndarray) -> np.ndarray:
    """α (cm⁻¹), shape (n, m): direct Tauc edge above E_g + E_U/2, Urbach tail below."""
    energy = HC_EV_NM / np.asarray(wavelength_nm, dtype=np.float64)[None, :]
    gap = np.asarray(gap_ev, dtype=np.float64)[:, None]
    joint = gap + URBACH_EV / 2.0
    tauc = TAUC_K * np.sqrt(np.clip(energy - gap, 0.0, None)) / energy
    at_joint = TAUC_K * math.sqrt(URBACH_EV / 2.0) / joint
    tail = at_joint * np.exp(np.clip((energy - joint) / URBACH_EV, None, 0.0))
    return np.where(energy >= joint, tauc, tail)


@lru_cache(maxsize=1)
def _colour_tables() -> tuple[np.ndarray, np.ndarray]:
    """(81, 3) D65-weighted CMFs normalised so a white film has Y = 1, and XYZ→linear sRGB."""
    import colour  # the science extra

    shape = colour.SpectralShape(380, 780, 5)
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"].copy().align(shape).values
    d65 = colour.SDS_ILLUMINANTS["D65"].copy().align(shape).values
    weights = d65[:, None] * cmfs
    weights = weights / weights[:, 1].sum()
    matrix = np.asarray(colour.RGB_COLOURSPACES["sRGB"].matrix_XYZ_to_RGB)
    return weights.astype(np.float32), matrix.astype(np.float32)


def transmitted_xyz(transmittance: np.ndarray) -> np.ndarray:
    """CIE XYZ (..., 3) of D65 light through films of transmittance (..., 101) on WAVELENGTH_NM."""
    weights, _ = _colour_tables()
    return np.asarray(transmittance, dtype=np.float32)[..., _VISIBLE] @ weights


def spectra_to_srgb(transmittance: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] (..., 3) (transfer function applied, no noise) of transmittance spectra."""
    _, matrix = _colour_tables()
    rgb = np.clip(transmitted_xyz(transmittance) @ matrix.T, 0.0, 1.0)
    return np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * rgb ** (1 / 2.4) - 0.055)


def _thickness_fields(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, S, S) relative thickness d/d̄ in 1 ± THICKNESS_SPREAD: dome + three plane waves."""
    s = IMAGE_SIZE
    axis = (np.arange(s) + 0.5) / s - 0.5
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    dome = rng.uniform(0.0, 1.0, (n, 1, 1)) * (0.5 - (yy**2 + xx**2))[None] * 2.0
    angle = rng.uniform(0.0, 2 * math.pi, (n, 3, 1, 1))
    freq = rng.uniform(0.3, 1.5, (n, 3, 1, 1))
    phase = rng.uniform(0.0, 2 * math.pi, (n, 3, 1, 1))
    amp = rng.uniform(0.0, 0.5, (n, 3, 1, 1))
    waves = amp * np.cos(2 * math.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
    field = dome + waves.sum(axis=1)
    field = field - field.mean(axis=(1, 2), keepdims=True)
    return 1.0 + THICKNESS_SPREAD * np.tanh(field)


def _block(seed: int, b: int) -> dict[str, np.ndarray]:
    """Samples b·BLOCK … (b+1)·BLOCK − 1 of the set with this seed."""
    rng = np.random.default_rng([seed, b])
    index = np.arange(b * BLOCK, (b + 1) * BLOCK, dtype=np.int64)
    rows = order(seed)[index % GRID_SIZE]
    composition = grid()[rows]
    gap = band_gap(composition)
    alpha = absorption_coefficient(gap, WAVELENGTH_NM)  # cm⁻¹
    thickness = rng.uniform(*THICKNESS_NM, BLOCK)
    absorbance = alpha * (thickness[:, None] * 1e-7) / math.log(10.0)
    absorbance = absorbance + rng.normal(0.0, ABSORBANCE_NOISE, absorbance.shape)
    rel = _thickness_fields(rng, BLOCK).astype(np.float32)  # (n, S, S)
    optical = (alpha[:, _VISIBLE] * thickness[:, None] * 1e-7).astype(np.float32)  # α·d̄
    weights, matrix = _colour_tables()
    s = IMAGE_SIZE
    transmit = np.exp(-rel.reshape(BLOCK, s * s, 1) * optical[:, None, :])  # (n, S², 81)
    xyz = transmit @ weights
    rgb = np.clip(xyz @ matrix.T, 0.0, 1.0)
    rgb = np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * rgb ** (1 / 2.4) - 0.055)
    dn = rgb * 255.0 + rng.normal(0.0, SENSOR_NOISE_DN, rgb.shape)
    image = np.clip(np.rint(dn), 0, 255).astype(np.uint8).reshape(BLOCK, s, s, 3)
    return {
        "index": index,
        "composition": composition,
        "grid_row": rows.astype(np.int64),
        "print": (index // GRID_SIZE).astype(np.int64),
        "thickness_nm": thickness,
        "gap_ev": gap,
        "absorbance": absorbance.astype(np.float32),
        "image": image,
    }


def simulate(n: int, seed: int, *, start: int = 0) -> dict[str, np.ndarray]:
    """Samples start … start+n−1 of the set with this seed (see the module docstring).

    Keys: ``composition`` (n, 4) cation fractions in the order of ``elements`` (4,);
    ``thickness_nm`` (n,) mean film thickness; ``gap_ev`` (n,) true gap; ``wavelength_nm`` (101,);
    ``absorbance`` (n, 101) float32 decadic absorbance at the mean thickness, with noise;
    ``image`` (n, 16, 16, 3) uint8 sRGB; ``index`` (n,) the sample's index in the set;
    ``grid_row`` (n,) its composition's row in ``grid()``; ``print`` (n,) 0, or 1 for a repeat.
    """
    if n < 0 or start < 0:
        raise ValueError("n and start must be non-negative")
    first, last = start // BLOCK, (start + n - 1) // BLOCK if n else start // BLOCK - 1
    parts = [_block(seed, b) for b in range(first, last + 1)]
    offset = start - first * BLOCK
    out: dict[str, np.ndarray] = {}
    for key in ("index", "composition", "grid_row", "print", "thickness_nm", "gap_ev"):
        out[key] = _cat(parts, key, offset, n, (0,) if key != "composition" else (0, 4))
    out["absorbance"] = _cat(parts, "absorbance", offset, n, (0, WAVELENGTH_NM.size))
    out["image"] = _cat(parts, "image", offset, n, (0, IMAGE_SIZE, IMAGE_SIZE, 3))
    out["elements"] = np.array(ELEMENTS)
    out["wavelength_nm"] = WAVELENGTH_NM.copy()
    return out


def _cat(
    parts: list[dict[str, np.ndarray]], key: str, offset: int, n: int, empty: tuple[int, ...]
) -> np.ndarray:
    if not parts:
        dtype = np.uint8 if key == "image" else np.float64
        return np.zeros(empty, dtype=dtype)
    return np.concatenate([p[key] for p in parts])[offset : offset + n]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=16 * BLOCK)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    gaps = []
    for start in range(0, args.n, args.chunk):
        part = simulate(min(args.chunk, args.n - start), args.seed, start=start)
        gaps.append(part["gap_ev"])
    seconds = time.perf_counter() - t0
    g = np.concatenate(gaps)
    print(
        f"{args.n} samples (seed {args.seed}) in {seconds:.1f} s "
        f"({args.n / seconds:,.0f}/s); gap {g.min():.2f}–{g.max():.2f} eV, mean {g.mean():.3f}"
    )


if __name__ == "__main__":
    main()
