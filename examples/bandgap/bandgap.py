"""The band gap from an absorption spectrum by a Tauc fit (direct allowed transition).

For a direct edge (αE)² = K²(E − E_g): on a Tauc plot of y = (A·E)² against E (A the absorbance,
proportional to α at a fixed thickness, so its scale does not matter) the straight part of the
edge meets y = 0 at E_g. The straight part is taken as the points with
``LOW`` ≤ y / y_max ≤ ``HIGH`` (0.15–0.7 of the spectrum's largest y) — above the Urbach tail and
the noise floor — and fitted by least squares; E_g is the line's intercept, clipped to
``GAP_RANGE_EV``. Vectorised: one call fits thousands of spectra.

``gaps`` / ``gaps_many`` are the servable's entry points (``servables.py``): spectra on the
simulation's grid ``WAVELENGTH_NM`` (300–800 nm, 5 nm; 101 points) in, gaps in eV out. This file
imports numpy only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GAP_RANGE_EV", "HIGH", "LOW", "WAVELENGTH_NM", "gaps", "gaps_many", "tauc_gap"]

HC_EV_NM = 1239.84
LOW, HIGH = 0.15, 0.7
GAP_RANGE_EV = (1.0, 4.5)
WAVELENGTH_NM = np.arange(300.0, 800.0 + 1e-9, 5.0)


def tauc_gap(absorbance: np.ndarray, wavelength_nm: np.ndarray) -> np.ndarray:
    """E_g (eV) of each row of ``absorbance`` (n, m) (or one spectrum (m,)) on ``wavelength_nm``."""
    a = np.asarray(absorbance, dtype=np.float64)
    single = a.ndim == 1
    a = np.atleast_2d(a)
    energy = HC_EV_NM / np.asarray(wavelength_nm, dtype=np.float64)
    y = (np.clip(a, 0.0, None) * energy[None, :]) ** 2
    top = y.max(axis=1, keepdims=True)
    top = np.where(top > 0, top, 1.0)
    w = ((y >= LOW * top) & (y <= HIGH * top)).astype(np.float64)
    count = w.sum(axis=1)
    w_safe = np.where(count[:, None] > 0, w, 1.0)
    n = w_safe.sum(axis=1)
    mean_e = (w_safe * energy).sum(axis=1) / n
    mean_y = (w_safe * y).sum(axis=1) / n
    de = energy[None, :] - mean_e[:, None]
    slope = (w_safe * de * (y - mean_y[:, None])).sum(axis=1) / np.maximum(
        (w_safe * de**2).sum(axis=1), 1e-12
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = mean_e - mean_y / slope
    gap = np.where((count >= 2) & (slope > 0) & np.isfinite(gap), gap, GAP_RANGE_EV[1])
    gap = np.clip(gap, *GAP_RANGE_EV)
    return gap[0] if single else gap


def gaps(absorbance: np.ndarray) -> np.ndarray:
    """E_g (eV) (n,) of absorbance spectra (n, 101) on ``WAVELENGTH_NM`` (the servable)."""
    a = np.asarray(absorbance, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != WAVELENGTH_NM.size:
        raise ValueError(f"input: expected spectra (n, {WAVELENGTH_NM.size}), got {a.shape}")
    return np.asarray(tauc_gap(a, WAVELENGTH_NM))


def gaps_many(inputs: list[np.ndarray]) -> list[np.ndarray]:
    """``gaps`` of several calls' inputs in one fit (the servable's batch function)."""
    arrays = [np.asarray(x, dtype=np.float64) for x in inputs]
    for a in arrays:
        if a.ndim != 2 or a.shape[1] != WAVELENGTH_NM.size:
            raise ValueError(f"input: expected spectra (n, {WAVELENGTH_NM.size}), got {a.shape}")
    joined = gaps(np.concatenate(arrays)) if arrays else np.zeros(0)
    return list(np.split(joined, np.cumsum([len(a) for a in arrays])[:-1]))
