"""Errors of a CDI reconstruction against the truth: shape (1 − IoU) and phase (RMS, radians).

What is forgiven, and why — only what the intensity cannot tell:

- the **global phase**: e^{ic}·o has the same intensity as o. The phase error is the RMS of
  wrap(φ_pred − φ_true − c) over the true support, with c the amplitude-free circular mean of the
  difference there (the c minimising Σ(1 − cos(Δ − c)), a close stand-in for the RMS minimiser);
- the **twin** o*(−x) (point reflection about the grid centre and conjugation): exactly the same
  intensity. Both the prediction and its twin are scored and the one with the smaller phase error
  is kept (its shape error is reported with it), for every method alike.

Not forgiven: a translation (both methods put the amplitude centroid at the grid centre, the
simulation's convention — see `phase_retrieval.py`), a wrong or shifted shape, a wrong phase.
The support of a prediction is amplitude ≥ 0.5 (as the truth's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Score", "phase_error", "score", "shape_error", "twin_pair"]

SUPPORT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Score:
    """One image's errors."""

    shape_error: float  # 1 − IoU of the supports
    phase_error: float  # rad, RMS inside the true support after the global offset
    twin: bool  # the prediction's twin scored better


def shape_error(pred_support: np.ndarray, true_support: np.ndarray) -> float:
    """1 − |P ∩ T| / |P ∪ T| (0 when both are empty)."""
    p, t = np.asarray(pred_support, bool), np.asarray(true_support, bool)
    union = np.logical_or(p, t).sum()
    if union == 0:
        return 0.0
    return float(1.0 - np.logical_and(p, t).sum() / union)


def phase_error(pred_phase: np.ndarray, true_phase: np.ndarray, true_support: np.ndarray) -> float:
    """RMS phase difference (rad) inside the true support, after removing the best constant."""
    mask = np.asarray(true_support, bool)
    if not mask.any():
        raise ValueError("the true support is empty")
    diff = np.asarray(pred_phase, float)[mask] - np.asarray(true_phase, float)[mask]
    offset = np.angle(np.exp(1j * diff).sum())
    wrapped = np.angle(np.exp(1j * (diff - offset)))
    return float(math.sqrt(np.mean(wrapped**2)))


def twin_pair(amplitude: np.ndarray, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The twin o*(−x) of (amplitude, phase) about the centre between the central pixels."""
    return amplitude[::-1, ::-1], -phase[::-1, ::-1]


def score(
    pred_amplitude: np.ndarray,
    pred_phase: np.ndarray,
    true_support: np.ndarray,
    true_phase: np.ndarray,
    *,
    forgive_twin: bool = True,
) -> Score:
    """Shape and phase errors of one prediction, the twin forgiven unless told otherwise."""
    candidates = [(pred_amplitude, pred_phase, False)]
    if forgive_twin:
        candidates.append((*twin_pair(pred_amplitude, pred_phase), True))
    best: Score | None = None
    for amp, ph, flipped in candidates:
        s = Score(
            shape_error(np.asarray(amp) >= SUPPORT_THRESHOLD, true_support),
            phase_error(ph, true_phase, true_support),
            flipped,
        )
        if best is None or s.phase_error < best.phase_error:
            best = s
    assert best is not None
    return best
