"""Simulated 2D coherent diffraction images (CDI) of strained crystals, written to HDF5.

Each image is one crystal, simulated in these steps (every number is a module constant below and
is written into the HDF5 file's attributes):

1. **Shape** (fine grid, 64×64 pixels, coordinates x = i − 31.5 so the grid centre lies between
   pixels): a convex polygon, the intersection of half-planes n·x ≤ d. Two families, equally
   likely: ``faceted`` — m ∈ {4, 6, 8} facet normals evenly spaced from a random rotation, each
   facet at a random distance in [0.7, 1]·R (so some corners are cut); ``hull`` — the convex
   hull of 5–12 random points at radii √U(0.6, 1)·R in an ellipse of random aspect [0.6, 1] and
   rotation. R is drawn in [9, 16] fine pixels. The polygon is rasterised with 4×4 supersampling
   (amplitude = covered fraction of a pixel, so edges are anti-aliased), shifted so its
   centroid is the grid centre, and scaled down if any part lies farther than 15 fine pixels
   from it: the crystal fits in a disc of diameter 30 fine pixels (15 output pixels, see 4).
   A crystal covering fewer than 24 output pixels (2×2-averaged amplitude ≥ 0.5, before the
   phase) is drawn again.
2. **Phase**: the projection φ = Q·u of a smooth displacement field u(r) on the scattering
   vector, modelled as 1–3 Gaussian strain sources, φ(x) = Σ_k a_k exp(−|x − c_k|²/2w_k²),
   a_k ∈ [−π, π] rad, centres c_k within 10 fine pixels of the centroid, widths w_k ∈ [5, 14]
   fine pixels (≥ 2.5 coarse pixels: smooth on the output grid). The crystal's complex density is
   amplitude·e^{iφ}; its global phase is set so that the amplitude-weighted mean phase over the
   crystal is 0, and the a_k are scaled down until |φ| ≤ 0.9π inside the crystal (no wrapping).
3. **Twin convention**: an object o(x) and its twin o*(−x) give exactly the same intensity, so no
   method can tell them apart. The stored truth is the member of the pair with
   Σ_crystal φ³ ≥ 0 (the twin negates φ), which makes the target of a network a function of the
   intensity; evaluation forgives the twin anyway (``evaluate.py``).
4. **Far field**: the fine object is zero-padded to 128×128 (linear oversampling 128/30 ≈ 4.3 on
   the fine grid) and Fourier transformed with the detector centred on the Bragg peak at the
   corner of its four central pixels (q sampled at half-integers, which keeps Friedel pairs on the
   pixel grid: I[i, j] = I[31 − i, 31 − j] in the 32×32 result). |F|² is cropped to the central
   64×64 pixels and binned 2×2 (detector pixels integrating the intensity) to **32×32**. The
   binned pattern samples q every 1/64 fine pixel⁻¹: its real-space field is 64 fine = 32 coarse
   pixels, in which the crystal is at most 15 coarse pixels wide — **linear oversampling
   σ = 32/15 ≈ 2.1 per dimension** (≥ 2 is what phase retrieval needs).
5. **Noise**: the pattern is scaled to a mean total of ``PHOTONS`` = 10⁶ photons and each pixel
   drawn from a Poisson distribution (the stored intensity is photon counts).
6. **Truth on the output grid** (32×32, the grid the binned intensity implies): the fine complex
   object averaged over 2×2 blocks; amplitude |o| (1 inside, fractional at edges), support
   amplitude ≥ 0.5, phase angle(o) inside the support and 0 outside.

Image i of a set with seed s uses ``numpy.random.default_rng([s, i])``: images are reproducible
one by one. Sets: train (seed 1), validation (seed 2), test (seed 3).

HDF5 layout (``data/<set>.h5``): ``intensity`` (N, 32, 32) float32 photon counts;
``truth/amplitude``, ``truth/phase`` (N, 32, 32) float32 and ``truth/support`` uint8;
``parameters/<name>`` (N,) one column per simulation parameter (the image's seed, family,
facets, size, strain sources as JSON, …); the settings above as file attributes.

    PYTHONPATH=$PWD python -m examples.cdi.simulate            # train 8000, val 1000, test 500
    PYTHONPATH=$PWD python -m examples.cdi.simulate --small    # 256 / 64 / 32 for a quick run
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from scipy.spatial import ConvexHull

__all__ = [
    "BIN",
    "CROP",
    "FINE",
    "OUT",
    "PAD",
    "PHOTONS",
    "SETS",
    "Image",
    "Params",
    "far_field",
    "load",
    "simulate",
    "simulate_set",
    "twin",
    "write",
]

FINE = 64  # fine object grid (pixels)
PAD = 128  # zero-padded grid for the FFT
CROP = 64  # central far-field pixels kept
BIN = 2  # detector binning → 32×32
OUT = CROP // BIN  # 32: the intensity and the output grid
SUPERSAMPLE = 4
MAX_RADIUS = 15.0  # fine pixels from the centroid
MIN_SUPPORT = 24  # output-grid pixels
PHOTONS = 1.0e6
PHASE_LIMIT = 0.9 * math.pi
SUPPORT_THRESHOLD = 0.5
DATA_DIR = Path(__file__).resolve().parent / "data"
SETS = {"train": (1, 8000), "validation": (2, 1000), "test": (3, 500)}
SMALL = {"train": (1, 256), "validation": (2, 64), "test": (3, 32)}


@dataclass
class Params:
    """One image's simulation parameters (all stored per image in the HDF5 file)."""

    seed: list[int]
    family: str
    n_facets: int
    rotation_deg: float
    radius_px: float
    aspect: float
    scale: float
    area_px: float
    max_radius_px: float
    sources: list[dict[str, float]] = field(default_factory=list)
    phase_scale: float = 1.0
    phase_min_rad: float = 0.0
    phase_max_rad: float = 0.0
    twin_flipped: bool = False
    photons: float = PHOTONS
    total_counts: float = 0.0


@dataclass
class Image:
    """One simulated image: counts, expected intensity, truth on the 32×32 grid, parameters."""

    intensity: np.ndarray  # (32, 32) Poisson photon counts (float32)
    expected: np.ndarray  # (32, 32) noise-free intensity scaled to PHOTONS
    amplitude: np.ndarray  # (32, 32) in [0, 1]
    phase: np.ndarray  # (32, 32) radians, 0 outside the support
    support: np.ndarray  # (32, 32) bool
    fine: np.ndarray  # (64, 64) complex fine object
    params: Params


def _fine_coords(n: int, sub: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pixel (or sub-pixel) centre coordinates with the origin between the central pixels."""
    step = 1.0 / sub
    axis = (np.arange(n * sub) + 0.5) * step - n / 2.0
    return np.meshgrid(axis, axis, indexing="ij")


_SUB_Y, _SUB_X = _fine_coords(FINE, SUPERSAMPLE)
_Y, _X = _fine_coords(FINE)


def _rasterise(normals: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Covered fraction of each fine pixel by {x: normals·x ≤ offsets} (4×4 supersampling)."""
    inside = np.ones(_SUB_X.shape, dtype=bool)
    for (ny, nx), d in zip(normals, offsets, strict=True):
        inside &= ny * _SUB_Y + nx * _SUB_X <= d
    shaped = inside.reshape(FINE, SUPERSAMPLE, FINE, SUPERSAMPLE)
    return shaped.mean(axis=(1, 3))


def _polygon(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Half-planes (unit normals (y, x), offsets) of a random convex polygon around 0."""
    radius = rng.uniform(9.0, 16.0)
    rotation = rng.uniform(0.0, 2.0 * math.pi)
    if rng.random() < 0.5:
        m = int(rng.choice([4, 6, 8]))
        angles = rotation + 2.0 * math.pi * np.arange(m) / m
        normals = np.stack([np.sin(angles), np.cos(angles)], axis=1)
        offsets = radius * rng.uniform(0.7, 1.0, size=m)
        info = {"family": "faceted", "n_facets": m, "aspect": 1.0}
    else:
        n = int(rng.integers(5, 13))
        aspect = rng.uniform(0.6, 1.0)
        r = radius * np.sqrt(rng.uniform(0.6, 1.0, size=n))
        t = rng.uniform(0.0, 2.0 * math.pi, size=n)
        pts = np.stack([aspect * r * np.sin(t), r * np.cos(t)], axis=1)
        c, s = math.cos(rotation), math.sin(rotation)
        pts = pts @ np.array([[c, s], [-s, c]])
        hull = ConvexHull(pts)
        normals = hull.equations[:, :2]
        offsets = -hull.equations[:, 2]
        info = {"family": "hull", "n_facets": len(offsets), "aspect": float(aspect)}
    info |= {"rotation_deg": math.degrees(rotation), "radius_px": float(radius)}
    return normals, offsets, info


def _shape(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """A centred, size-limited crystal amplitude on the fine grid, and its parameters."""
    for _ in range(100):
        normals, offsets, info = _polygon(rng)
        scale = 1.0
        for _ in range(5):
            amp = _rasterise(normals, offsets)
            area = float(amp.sum())
            if area < 1.0:
                break
            cy, cx = float((amp * _Y).sum() / area), float((amp * _X).sum() / area)
            # Move the centroid to the grid centre: shift every half-plane.
            offsets = offsets - normals @ np.array([cy, cx])
            amp = _rasterise(normals, offsets)
            covered = amp > 0
            reach = float(np.sqrt((_Y[covered]) ** 2 + (_X[covered]) ** 2).max() + 0.5)
            if reach <= MAX_RADIUS:
                if (block_mean(amp) >= SUPPORT_THRESHOLD).sum() < MIN_SUPPORT:
                    break  # too small to be worth an image: draw again
                info |= {"scale": scale, "area_px": float(amp.sum()), "max_radius_px": reach}
                return amp, info
            shrink = (MAX_RADIUS - 0.25) / reach
            offsets = offsets * shrink
            scale *= shrink
    raise RuntimeError("could not draw a crystal that fits")  # pragma: no cover


def _sources(rng: np.random.Generator) -> list[dict[str, float]]:
    """1–3 Gaussian strain sources (amplitude rad, centre and width in fine pixels)."""
    out = []
    for _ in range(int(rng.integers(1, 4))):
        r, t = 10.0 * math.sqrt(rng.random()), rng.uniform(0.0, 2.0 * math.pi)
        out.append(
            {
                "a_rad": float(rng.uniform(-math.pi, math.pi)),
                "cy_px": r * math.sin(t),
                "cx_px": r * math.cos(t),
                "w_px": float(rng.uniform(5.0, 14.0)),
            }
        )
    return out


def _phase_field(sources: list[dict[str, float]], scale: float) -> np.ndarray:
    """φ(x) on the fine grid from the strain sources, times `scale`."""
    phi = np.zeros((FINE, FINE))
    for s in sources:
        r2 = (_Y - s["cy_px"]) ** 2 + (_X - s["cx_px"]) ** 2
        phi += s["a_rad"] * np.exp(-r2 / (2.0 * s["w_px"] ** 2))
    return scale * phi


def block_mean(fine: np.ndarray) -> np.ndarray:
    """The fine complex object averaged over BIN×BIN blocks: the object on the output grid."""
    n = fine.shape[-1] // BIN
    return fine.reshape(n, BIN, n, BIN).mean(axis=(1, 3))


def twin(obj: np.ndarray) -> np.ndarray:
    """The twin o*(−x) about the grid centre (between pixels, so a plain flip is exact)."""
    return np.conj(obj[::-1, ::-1])


def far_field(fine: np.ndarray) -> np.ndarray:
    """Noise-free 32×32 intensity of a 64×64 fine object (pad, FFT at half-integer q, crop, bin)."""
    padded = np.zeros((PAD, PAD), dtype=complex)
    lo = (PAD - FINE) // 2
    padded[lo : lo + FINE, lo : lo + FINE] = fine
    # Half-pixel modulation: F sampled at q = (k + ½)/PAD, detector centred on the pixel corner.
    ramp = np.exp(-1j * math.pi * np.arange(PAD) / PAD)
    spectrum = np.fft.fftshift(np.fft.fft2(padded * ramp[:, None] * ramp[None, :]))
    intensity = np.abs(spectrum) ** 2
    c0 = (PAD - CROP) // 2
    cropped = intensity[c0 : c0 + CROP, c0 : c0 + CROP]
    return cropped.reshape(OUT, BIN, OUT, BIN).sum(axis=(1, 3))


def _truth(fine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    coarse = block_mean(fine)
    amplitude = np.abs(coarse)
    support = amplitude >= SUPPORT_THRESHOLD
    phase = np.where(support, np.angle(coarse), 0.0)
    return amplitude, phase, support


def simulate(seed: int, index: int, photons: float = PHOTONS, noise: bool = True) -> Image:
    """Simulate image `index` of the set with `seed` (reproducible from the two numbers)."""
    rng = np.random.default_rng([seed, index])
    amp, info = _shape(rng)
    sources = _sources(rng)
    scale = 1.0
    while True:
        fine = amp * np.exp(1j * _phase_field(sources, scale))
        # Global phase: amplitude-weighted mean phase over the crystal → 0.
        coarse = block_mean(fine)
        fine *= np.exp(-1j * np.angle(coarse[np.abs(coarse) >= SUPPORT_THRESHOLD].sum()))
        amplitude, phase, support = _truth(fine)
        fine_phase = np.angle(fine[amp > 0])
        if max(np.abs(phase[support]).max(), np.abs(fine_phase).max()) <= PHASE_LIMIT:
            break
        scale *= 0.8
    flipped = bool((phase[support] ** 3).sum() < 0)
    if flipped:
        fine = twin(fine)
        amplitude, phase, support = _truth(fine)
    clean = far_field(fine)
    expected = clean * (photons / clean.sum())
    counts = rng.poisson(expected).astype(np.float32) if noise else expected.astype(np.float32)
    params = Params(
        seed=[seed, index],
        sources=sources,
        phase_scale=scale,
        phase_min_rad=float(phase[support].min()),
        phase_max_rad=float(phase[support].max()),
        twin_flipped=flipped,
        photons=photons,
        total_counts=float(counts.sum()),
        **info,
    )
    return Image(
        intensity=counts,
        expected=expected,
        amplitude=amplitude.astype(np.float32),
        phase=phase.astype(np.float32),
        support=support,
        fine=fine,
        params=params,
    )


def simulate_set(seed: int, n: int, photons: float = PHOTONS) -> list[Image]:
    """Images 0..n−1 of the set with `seed`."""
    return [simulate(seed, i, photons) for i in range(n)]


SETTINGS = {
    "fine_grid_px": FINE,
    "padded_grid_px": PAD,
    "far_field_crop_px": CROP,
    "detector_binning": BIN,
    "output_grid_px": OUT,
    "supersampling": SUPERSAMPLE,
    "max_crystal_radius_fine_px": MAX_RADIUS,
    "linear_oversampling_output_grid": OUT / (MAX_RADIUS * 2 / BIN),
    "photons_per_pattern": PHOTONS,
    "phase_limit_rad": PHASE_LIMIT,
    "support_threshold": SUPPORT_THRESHOLD,
    "phase_model": "sum of 1-3 Gaussian strain sources, amplitude-weighted mean phase 0",
    "twin_convention": "sum of phase**3 over the support >= 0",
    "q_sampling": "half-integer (detector centred on the pixel corner at the Bragg peak)",
}


def write(path: Path, images: list[Image], *, name: str, seed: int) -> None:
    """Write a set to HDF5 (layout in the module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["set"] = name
        f.attrs["seed"] = seed
        f.attrs["n_images"] = len(images)
        f.attrs["generator"] = "examples/cdi/simulate.py"
        for key, value in SETTINGS.items():
            f.attrs[key] = value
        f.create_dataset("intensity", data=np.stack([im.intensity for im in images]))
        f["intensity"].attrs["units"] = "photon counts (Poisson), q centred, 32x32"
        truth = f.create_group("truth")
        truth.create_dataset("amplitude", data=np.stack([im.amplitude for im in images]))
        truth.create_dataset("phase", data=np.stack([im.phase for im in images]))
        truth["phase"].attrs["units"] = "rad, 0 outside the support"
        truth.create_dataset("support", data=np.stack([im.support for im in images]).astype("u1"))
        params = f.create_group("parameters")
        rows = [asdict(im.params) for im in images]
        for key in rows[0]:
            values = [r[key] for r in rows]
            if key == "sources":
                params.create_dataset(key, data=[json.dumps(v) for v in values])
            elif key == "seed":
                params.create_dataset(key, data=np.asarray(values, dtype=np.int64))
            elif isinstance(values[0], str):
                params.create_dataset(key, data=values)
            else:
                params.create_dataset(key, data=np.asarray(values))


def load(path: Path) -> dict[str, Any]:
    """Read a set back: arrays and a list of per-image parameter dicts."""
    with h5py.File(path, "r") as f:
        out: dict[str, Any] = {
            "intensity": f["intensity"][()],
            "amplitude": f["truth/amplitude"][()],
            "phase": f["truth/phase"][()],
            "support": f["truth/support"][()].astype(bool),
            "attrs": dict(f.attrs),
        }
        columns = {}
        for key, ds in f["parameters"].items():
            values = ds[()]
            if values.dtype.kind in "SO":
                values = [v.decode() if isinstance(v, bytes) else v for v in values]
            columns[key] = values
    n = len(out["intensity"])
    params = []
    for i in range(n):
        row = {k: (v[i].tolist() if hasattr(v[i], "tolist") else v[i]) for k, v in columns.items()}
        row["sources"] = json.loads(row["sources"])
        params.append(row)
    out["params"] = params
    return out


def main(argv: list[str] | None = None) -> int:
    """Generate the train, validation and test sets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder")
    parser.add_argument("--small", action="store_true", help="tiny sets (256/64/32)")
    args = parser.parse_args(argv)
    for name, (seed, n) in (SMALL if args.small else SETS).items():
        start = time.perf_counter()
        images = simulate_set(seed, n)
        write(args.out / f"{name}.h5", images, name=name, seed=seed)
        took = time.perf_counter() - start
        print(f"{name}: {n} images (seed {seed}) -> {args.out / f'{name}.h5'} in {took:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
