"""The Δ-model: a SchNet (Schütt et al., J. Chem. Phys. 148, 241722, 2018) for cheap → accurate.

Given a molecule (``ase.Atoms``) and its cheap atomization energy (kcal/mol), the model predicts
Δ = reference − cheap. It is written directly in torch (schnetpack 2.0.4 needs a patch to import
on torch 2.13 and its CLI fails), following the published architecture:

- atom embeddings x_i⁰ = E[Z_i] (F features);
- distances r_ij to every other atom of the molecule within the cutoff, expanded in K Gaussians
  exp(−γ (r_ij − μ_k)²) on [0, cutoff], times a cosine cutoff ½(cos(π r/r_c) + 1);
- T interaction blocks, each x ← x + Dense(ssp(Dense(cfconv(Dense(x))))), where the
  continuous-filter convolution is Σ_j x_j ∘ W(r_ij) and the filter-generating network is
  W = ssp(Dense(ssp(Dense(rbf(r_ij))))) · cutoff(r_ij);
- shifted softplus ssp(x) = ln(½eˣ + ½);
- atom-wise output Dense(F/2) → ssp → Dense(1), summed over the atoms.

The atom-wise sum is scaled and shifted like schnetpack's output module, except that its offsets
come from a linear prior fitted on the training molecules only: Δ ≈ Σ_e c_e·n_e + b (ridge on the
element counts n_e; with `Config(cheap_input=True)` also + α·cheap), so the network learns what
per-element offsets leave over.

Importable with only torch, numpy and ase, so a servable can call `predict(folder, atoms, cheap)`.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from torch import nn

__all__ = [
    "Batch",
    "Config",
    "SchNet",
    "cross_validate",
    "fit",
    "fit_linear",
    "kfold",
    "load",
    "make_batch",
    "predict",
    "predict_delta",
    "save",
    "throughput",
    "unseen_elements",
]

MAX_Z = 100
WEIGHTS = "weights.pt"
CONFIG = "config.json"


@dataclass(frozen=True)
class Config:
    """Architecture hyperparameters (saved with the weights)."""

    n_features: int = 64  # F: atom feature and filter width
    n_interactions: int = 3  # T
    n_rbf: int = 25  # K Gaussians on [0, cutoff]
    cutoff: float = 5.0  # Å; G2 molecules are small, so almost every pair is inside
    gamma: float | None = None  # Å⁻²; None: 1/(2 Δμ²) with Δμ the Gaussian spacing
    cheap_input: bool = False  # True: the prior also has a term α·cheap; False: elements only
    max_z: int = MAX_Z


@dataclass
class Batch:
    """Molecules of different sizes flattened into one set of atoms, with index vectors."""

    numbers: torch.Tensor  # (n_atoms,) long
    positions: torch.Tensor  # (n_atoms, 3) float32, Å
    molecule: torch.Tensor  # (n_atoms,) long: which molecule each atom belongs to
    pair_i: torch.Tensor  # (n_pairs,) long: centre atom
    pair_j: torch.Tensor  # (n_pairs,) long: neighbour atom
    cheap: torch.Tensor  # (n_molecules,) float32, kcal/mol
    counts: torch.Tensor  # (n_molecules, max_z + 1) float32: element counts
    n_molecules: int = field(default=0)


def _numbers_positions(item: Atoms | Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Atomic numbers and positions of an ase.Atoms or a {"numbers", "positions"} mapping."""
    if isinstance(item, Atoms):
        return item.get_atomic_numbers(), item.get_positions()
    return np.asarray(item["numbers"], dtype=np.int64), np.asarray(item["positions"], dtype=float)


def make_batch(
    atoms_list: Sequence[Atoms | Mapping[str, Any]],
    cheap: Sequence[float] | np.ndarray,
    *,
    cutoff: float,
    max_z: int = MAX_Z,
) -> Batch:
    """Flatten molecules into one batch; pairs are every i ≠ j of a molecule within `cutoff`."""
    numbers, positions, molecule, pi, pj = [], [], [], [], []
    offset = 0
    for index, item in enumerate(atoms_list):
        z, r = _numbers_positions(item)
        n = len(z)
        if n and (z.min() < 1 or z.max() > max_z):
            raise ValueError(f"molecule {index}: atomic numbers must be in 1..{max_z}")
        d = np.linalg.norm(r[:, None, :] - r[None, :, :], axis=-1)
        i, j = np.nonzero((d < cutoff) & ~np.eye(n, dtype=bool))
        numbers.append(z)
        positions.append(r)
        molecule.append(np.full(n, index))
        pi.append(i + offset)
        pj.append(j + offset)
        offset += n
    n_mol = len(atoms_list)
    cheap_arr = np.asarray(cheap, dtype=np.float32).reshape(-1)
    if cheap_arr.shape[0] != n_mol:
        raise ValueError(f"{n_mol} molecules but {cheap_arr.shape[0]} cheap energies")
    z_all = torch.as_tensor(np.concatenate(numbers) if numbers else np.zeros(0), dtype=torch.long)
    mol_all = torch.as_tensor(np.concatenate(molecule) if molecule else np.zeros(0)).long()
    counts = torch.zeros(n_mol, max_z + 1)
    counts.index_put_((mol_all, z_all), torch.ones(len(z_all)), accumulate=True)
    return Batch(
        numbers=z_all,
        positions=torch.as_tensor(
            np.concatenate(positions) if positions else np.zeros((0, 3)), dtype=torch.float32
        ),
        molecule=mol_all,
        pair_i=torch.as_tensor(np.concatenate(pi) if pi else np.zeros(0), dtype=torch.long),
        pair_j=torch.as_tensor(np.concatenate(pj) if pj else np.zeros(0), dtype=torch.long),
        cheap=torch.as_tensor(cheap_arr),
        counts=counts,
        n_molecules=n_mol,
    )


def shifted_softplus(x: torch.Tensor) -> torch.Tensor:
    """ssp(x) = ln(½eˣ + ½) = softplus(x) − ln 2, so ssp(0) = 0."""
    return nn.functional.softplus(x) - math.log(2.0)


class ShiftedSoftplus(nn.Module):
    """Module form of `shifted_softplus`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shifted_softplus(x)


class GaussianRBF(nn.Module):
    """exp(−γ (r − μ_k)²) for K centres μ_k evenly spaced on [0, cutoff]."""

    def __init__(self, n_rbf: int, cutoff: float, gamma: float | None = None) -> None:
        super().__init__()
        centres = torch.linspace(0.0, cutoff, n_rbf)
        spacing = float(centres[1] - centres[0])
        self.register_buffer("centres", centres)
        self.gamma = gamma if gamma is not None else 0.5 / spacing**2

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.gamma * (r[:, None] - self.centres) ** 2)


def cosine_cutoff(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """½(cos(π r / r_c) + 1) inside the cutoff, 0 outside."""
    return 0.5 * (torch.cos(r * math.pi / cutoff) + 1.0) * (r < cutoff).to(r.dtype)


class Interaction(nn.Module):
    """SchNet interaction block: atom-wise → cfconv → atom-wise → ssp → atom-wise (residual)."""

    def __init__(self, n_features: int, n_rbf: int) -> None:
        super().__init__()
        self.filter = nn.Sequential(
            nn.Linear(n_rbf, n_features),
            ShiftedSoftplus(),
            nn.Linear(n_features, n_features),
            ShiftedSoftplus(),
        )
        self.in2f = nn.Linear(n_features, n_features, bias=False)
        self.f2out = nn.Sequential(
            nn.Linear(n_features, n_features), ShiftedSoftplus(), nn.Linear(n_features, n_features)
        )

    def forward(
        self,
        x: torch.Tensor,
        rbf: torch.Tensor,
        fcut: torch.Tensor,
        pair_i: torch.Tensor,
        pair_j: torch.Tensor,
    ) -> torch.Tensor:
        w = self.filter(rbf) * fcut[:, None]
        messages = self.in2f(x)[pair_j] * w
        conv = torch.zeros_like(x).index_add_(0, pair_i, messages)
        return x + self.f2out(conv)


class SchNet(nn.Module):
    """SchNet predicting Δ (kcal/mol) per molecule: linear prior + scaled atom-wise sum."""

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = config or Config()
        c = self.config
        self.embedding = nn.Embedding(c.max_z + 1, c.n_features, padding_idx=0)
        self.rbf = GaussianRBF(c.n_rbf, c.cutoff, c.gamma)
        self.interactions = nn.ModuleList(
            Interaction(c.n_features, c.n_rbf) for _ in range(c.n_interactions)
        )
        self.output = nn.Sequential(
            nn.Linear(c.n_features, c.n_features // 2),
            ShiftedSoftplus(),
            nn.Linear(c.n_features // 2, 1),
        )
        # Set from the training molecules by `fit` (saved in the state_dict):
        self.register_buffer("element_ref", torch.zeros(c.max_z + 1))  # c_e, kcal/mol per atom
        self.register_buffer("cheap_coef", torch.zeros(()))  # α
        self.register_buffer("bias", torch.zeros(()))  # b, kcal/mol per molecule
        self.register_buffer("scale", torch.ones(()))  # kcal/mol per unit of atom-wise output
        self.register_buffer("trained_elements", torch.zeros(c.max_z + 1, dtype=torch.bool))

    def prior(self, batch: Batch) -> torch.Tensor:
        """The linear part: α·cheap + Σ_e c_e·n_e + b (kcal/mol per molecule)."""
        return batch.counts @ self.element_ref + self.cheap_coef * batch.cheap + self.bias

    def forward(self, batch: Batch) -> torch.Tensor:
        """Δ = reference − cheap for each molecule of the batch, kcal/mol, shape (n_molecules,)."""
        x = self.embedding(batch.numbers)
        vec = batch.positions[batch.pair_j] - batch.positions[batch.pair_i]
        r = torch.linalg.vector_norm(vec, dim=1)
        rbf = self.rbf(r)
        fcut = cosine_cutoff(r, self.config.cutoff)
        for block in self.interactions:
            x = block(x, rbf, fcut, batch.pair_i, batch.pair_j)
        atomwise = self.output(x).squeeze(-1) * self.scale
        summed = torch.zeros(batch.n_molecules, dtype=atomwise.dtype)
        summed = summed.index_add_(0, batch.molecule, atomwise)
        return summed + self.prior(batch)


# ----------------------------------------------------------------------------------------------
# Linear baselines


def _counts(atoms_list: Sequence[Atoms | Mapping[str, Any]], max_z: int = MAX_Z) -> np.ndarray:
    out = np.zeros((len(atoms_list), max_z + 1))
    for index, item in enumerate(atoms_list):
        z, _ = _numbers_positions(item)
        np.add.at(out[index], z, 1.0)
    return out


def fit_linear(
    cheap: np.ndarray,
    target: np.ndarray,
    counts: np.ndarray | None = None,
    *,
    ridge: float = 1e-3,
) -> tuple[float, np.ndarray | None, float]:
    """Least squares target ≈ a·cheap + Σ_e c_e·n_e + b; returns (a, c or None, b).

    The element coefficients carry a small ridge penalty so elements absent from the training
    molecules (Li, Be, Na occur in one or two G2 molecules) get c_e = 0 instead of no solution.
    """
    cheap = np.asarray(cheap, dtype=float)
    columns = [cheap[:, None], np.ones((len(cheap), 1))]
    if counts is not None:
        columns.append(counts)
    x = np.hstack(columns)
    y = np.asarray(target, dtype=float)
    if counts is not None:
        penalty = np.zeros((counts.shape[1], x.shape[1]))
        penalty[:, 2:] = math.sqrt(ridge) * np.eye(counts.shape[1])
        x = np.vstack([x, penalty])
        y = np.concatenate([y, np.zeros(counts.shape[1])])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return float(coef[0]), (coef[2:] if counts is not None else None), float(coef[1])


# ----------------------------------------------------------------------------------------------
# Training


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)  # nothing here draws from numpy's global state; belt and braces


def fit(
    atoms: Sequence[Atoms],
    cheap: Sequence[float] | np.ndarray,
    reference: Sequence[float] | np.ndarray,
    *,
    epochs: int = 200,
    seed: int = 0,
    config: Config | None = None,
    batch_size: int = 32,
    lr: float = 1e-3,
    lr_final: float = 1e-5,
    weight_decay: float = 0.0,
    val_fraction: float = 0.1,
    history: list[dict[str, float]] | None = None,
) -> SchNet:
    """Train a SchNet Δ-model on these molecules only (Δ = reference − cheap, kcal/mol).

    The linear prior is fitted first by least squares on the training molecules; the network then
    learns the rest with Adam on the mean squared error, learning rate decaying as a cosine from
    `lr` to `lr_final`. If `val_fraction` > 0, that share of the given molecules is held out (drawn
    with `seed`) and the weights of the epoch with the lowest validation MAE are kept; the
    held-out molecules are part of what was passed in, never of anyone's test set. Each epoch
    appends {"epoch", "train_loss", "val_mae"} to `history` when given.
    """
    threads = torch.get_num_threads()
    # Small batches: one thread is faster than two, and does not fight a busy machine.
    torch.set_num_threads(1)
    try:
        return _fit(
            atoms,
            cheap,
            reference,
            epochs=epochs,
            seed=seed,
            config=config,
            batch_size=batch_size,
            lr=lr,
            lr_final=lr_final,
            weight_decay=weight_decay,
            val_fraction=val_fraction,
            history=history,
        )
    finally:
        torch.set_num_threads(threads)


def _fit(
    atoms: Sequence[Atoms],
    cheap: Sequence[float] | np.ndarray,
    reference: Sequence[float] | np.ndarray,
    *,
    epochs: int,
    seed: int,
    config: Config | None,
    batch_size: int,
    lr: float,
    lr_final: float,
    weight_decay: float,
    val_fraction: float,
    history: list[dict[str, float]] | None,
) -> SchNet:
    _seed(seed)
    config = config or Config()
    cheap = np.asarray(cheap, dtype=float)
    delta = np.asarray(reference, dtype=float) - cheap
    n = len(atoms)
    if not (len(cheap) == len(delta) == n):
        raise ValueError("atoms, cheap and reference must have the same length")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = round(val_fraction * n) if val_fraction > 0 and n >= 10 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]

    model = SchNet(config)
    counts = _counts(atoms, config.max_z)
    a, c, b = fit_linear(
        cheap[train_idx] if config.cheap_input else np.zeros(len(train_idx)),
        delta[train_idx],
        counts[train_idx],
    )
    with torch.no_grad():
        model.cheap_coef.fill_(a if config.cheap_input else 0.0)
        model.element_ref.copy_(torch.as_tensor(c, dtype=torch.float32))
        model.bias.fill_(b)
        model.trained_elements.copy_(torch.as_tensor(counts[train_idx].sum(axis=0) > 0))
        prior = counts @ c + (a * cheap if config.cheap_input else 0.0) + b
        residual = delta[train_idx] - prior[train_idx]
        mean_atoms = float(np.mean([len(atoms[i]) for i in train_idx]))
        # Atom-wise outputs start O(1) and add up over ~n atoms; scale to the residual's spread.
        model.scale.fill_(max(float(np.std(residual)), 1e-3) / math.sqrt(mean_atoms))

    def batch_of(idx: np.ndarray) -> tuple[Batch, torch.Tensor]:
        sub = [atoms[i] for i in idx]
        bt = make_batch(sub, cheap[idx], cutoff=config.cutoff, max_z=config.max_z)
        return bt, torch.as_tensor(delta[idx], dtype=torch.float32)

    val_batch = batch_of(val_idx) if n_val else None
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(train_idx) / batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, epochs * steps_per_epoch), eta_min=lr_final
    )
    norm = float(model.scale) ** 2 * mean_atoms  # loss in units of the residual variance
    # Batches are rebuilt at every step from the shuffled order; that is cheap next to the network.
    best_state, best_mae = None, math.inf
    for epoch in range(epochs):
        model.train()
        perm = rng.permutation(train_idx)
        total = 0.0
        for start in range(0, len(perm), batch_size):
            bt, target = batch_of(perm[start : start + batch_size])
            optimizer.zero_grad()
            loss = torch.mean((model(bt) - target) ** 2) / norm
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(target)
        record = {"epoch": float(epoch), "train_loss": total / len(train_idx)}
        if val_batch is not None:
            model.eval()
            with torch.no_grad():
                val_mae = float(torch.mean(torch.abs(model(val_batch[0]) - val_batch[1])))
            record["val_mae"] = val_mae
            if val_mae < best_mae:
                best_mae, best_state = val_mae, copy.deepcopy(model.state_dict())
        if history is not None:
            history.append(record)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model


def kfold(n: int, folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shuffled k-fold split of range(n): (train indices, test indices) per fold, disjoint."""
    if not 2 <= folds <= n:
        raise ValueError(f"need 2 <= folds <= {n}")
    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, folds)
    return [
        (np.sort(np.concatenate([p for k, p in enumerate(parts) if k != f])), np.sort(parts[f]))
        for f in range(folds)
    ]


PREDICTORS = ("cheap", "linear", "linear+elements", "cheap+elements", "delta_schnet")


def cross_validate(
    atoms: Sequence[Atoms],
    cheap: Sequence[float] | np.ndarray,
    reference: Sequence[float] | np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
    predictions: dict[str, np.ndarray] | None = None,
    **fit_kwargs: Any,
) -> dict[str, Any]:
    """K-fold CV MAE (kcal/mol) against the reference for five predictors, fitted per fold.

    - ``cheap``: the cheap level alone;
    - ``linear``: reference ≈ a·cheap + b;
    - ``linear+elements``: reference ≈ a·cheap + Σ_e c_e·n_e + b (element counts, small ridge);
    - ``cheap+elements``: reference ≈ cheap + Σ_e c_e·n_e + b (a = 1: per-element Δ only);
    - ``delta_schnet``: cheap + the SchNet Δ-model (`fit(..., **fit_kwargs)`).

    Every fit (linear coefficients, the model's prior, scale, weights, early-stopping split) sees
    only that fold's training molecules. Returns {"folds": [{"fold", "n_train", "n_test",
    <predictor>: MAE, ...}], "mean": {<predictor>: MAE}, "std": {...}, "splits": [(train, test)]}.
    Pass `predictions={}` to get each molecule's out-of-fold prediction per predictor.
    """
    cheap = np.asarray(cheap, dtype=float)
    reference = np.asarray(reference, dtype=float)
    counts = _counts(atoms)
    splits = kfold(len(atoms), folds, seed)
    oof = {name: np.full(len(atoms), np.nan) for name in PREDICTORS}
    rows = []
    for f, (train, test) in enumerate(splits):
        a, _, b = fit_linear(cheap[train], reference[train])
        oof["cheap"][test] = cheap[test]
        oof["linear"][test] = a * cheap[test] + b
        a, c, b = fit_linear(cheap[train], reference[train], counts[train])
        oof["linear+elements"][test] = a * cheap[test] + counts[test] @ c + b
        _, c, b = fit_linear(np.zeros(len(train)), reference[train] - cheap[train], counts[train])
        oof["cheap+elements"][test] = cheap[test] + counts[test] @ c + b
        model = fit(
            [atoms[i] for i in train], cheap[train], reference[train], seed=seed + f, **fit_kwargs
        )
        oof["delta_schnet"][test] = cheap[test] + np.asarray(
            predict_delta(model, [atoms[i] for i in test], cheap[test])
        )
        row: dict[str, Any] = {"fold": f, "n_train": len(train), "n_test": len(test)}
        for name in PREDICTORS:
            row[name] = float(np.mean(np.abs(oof[name][test] - reference[test])))
        rows.append(row)
    if predictions is not None:
        predictions.update(oof)
    return {
        "folds": rows,
        "mean": {name: float(np.mean([r[name] for r in rows])) for name in PREDICTORS},
        "std": {name: float(np.std([r[name] for r in rows])) for name in PREDICTORS},
        "splits": splits,
    }


# ----------------------------------------------------------------------------------------------
# Save, load, predict


def save(model: SchNet, folder: str | Path, *, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write `weights.pt` (the state_dict) and `config.json` (architecture + metadata)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / WEIGHTS)
    document = {
        "model": "SchNet delta (reference - cheap), kcal/mol",
        "config": asdict(model.config),
        "metadata": dict(metadata or {}),
        "torch": torch.__version__,
    }
    (folder / CONFIG).write_text(json.dumps(document, indent=2) + "\n")
    return folder


def load(folder: str | Path) -> SchNet:
    """The model saved in `folder` by `save`, in eval mode."""
    folder = Path(folder)
    document = json.loads((folder / CONFIG).read_text())
    model = SchNet(Config(**document["config"]))
    model.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
    model.eval()
    return model


@functools.lru_cache(maxsize=4)
def _cached(folder: str, mtime: float) -> SchNet:
    return load(folder)


def _resolve(folder_or_model: SchNet | str | Path) -> SchNet:
    if isinstance(folder_or_model, SchNet):
        return folder_or_model
    path = Path(folder_or_model).resolve()
    return _cached(str(path), (path / WEIGHTS).stat().st_mtime)


def unseen_elements(
    folder_or_model: SchNet | str | Path, atoms_list: Sequence[Atoms | Mapping[str, Any]]
) -> list[list[int]]:
    """Per molecule, the atomic numbers the model never saw in training (its predictions for
    those molecules are extrapolations: an untrained embedding and a zero element offset)."""
    model = _resolve(folder_or_model)
    seen = model.trained_elements.numpy()
    return [
        sorted(int(z) for z in set(_numbers_positions(item)[0].tolist()) if not seen[z])
        for item in atoms_list
    ]


def predict_delta(
    folder_or_model: SchNet | str | Path,
    atoms_list: Sequence[Atoms | Mapping[str, Any]],
    cheap_energies: Sequence[float] | np.ndarray,
) -> list[float]:
    """Δ = reference − cheap (kcal/mol) for each molecule."""
    model = _resolve(folder_or_model)
    if len(atoms_list) == 0:
        return []
    bt = make_batch(
        atoms_list, cheap_energies, cutoff=model.config.cutoff, max_z=model.config.max_z
    )
    with torch.inference_mode():
        return model(bt).tolist()


def predict(
    folder_or_model: SchNet | str | Path,
    atoms_list: Sequence[Atoms | Mapping[str, Any]],
    cheap_energies: Sequence[float] | np.ndarray,
) -> list[float]:
    """Corrected atomization energies, cheap + Δ (kcal/mol), one per molecule.

    `folder_or_model` is a folder written by `save` (loaded once and cached) or a model;
    each molecule is an ase.Atoms or a mapping with "numbers" and "positions" (Å).
    """
    delta = predict_delta(folder_or_model, atoms_list, cheap_energies)
    return [
        float(c) + d for c, d in zip(np.asarray(cheap_energies, dtype=float), delta, strict=True)
    ]


def throughput(
    folder_or_model: SchNet | str | Path,
    atoms_list: Sequence[Atoms],
    cheap_energies: Sequence[float] | np.ndarray,
    *,
    batch: int = 100,
    repeats: int = 20,
    threads: int | None = None,
) -> dict[str, float]:
    """In-process `predict` speed on batches of `batch` molecules (including batch building).

    `threads` sets torch's intra-op threads for the measurement (None: leave as is).
    """
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _throughput(folder_or_model, atoms_list, cheap_energies, batch, repeats)
    finally:
        torch.set_num_threads(before)


def _throughput(
    folder_or_model: SchNet | str | Path,
    atoms_list: Sequence[Atoms],
    cheap_energies: Sequence[float] | np.ndarray,
    batch: int,
    repeats: int,
) -> dict[str, float]:
    model = _resolve(folder_or_model)
    cheap = np.asarray(cheap_energies, dtype=float)
    idx = np.resize(np.arange(len(atoms_list)), batch)
    mols = [atoms_list[i] for i in idx]
    predict(model, mols, cheap[idx])  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(model, mols, cheap[idx])
        times.append(time.perf_counter() - start)
    best, median = min(times), float(np.median(times))
    return {
        "batch": batch,
        "median_s": median,
        "best_s": best,
        "molecules_per_s": batch / median,
        "threads": torch.get_num_threads(),
    }
