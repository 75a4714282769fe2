"""Band gaps from images on a held-out composition region: MAE (eV) of three models and baselines.

Simulates ``--n`` samples (``simulate.simulate(n, seed)``), holds out the **Bi-rich corner** of
the quaternary (``x_Bi ≥ HOLDOUT_BI`` = 0.5, 1/8 of the simplex: a region, not a random split —
no composition near a test composition is seen in training; ``--hold-out Ce`` holds out the
CeO2 corner instead) and trains on the rest:

- the AE and the VAE (``models.fit_autoencoder``) and the colour-clustering model
  (``models.fit_colour``), each predicting the absorption spectrum of a test image, the band gap
  then coming from that spectrum by the Tauc fit (``bandgap.tauc_gap``);
- baselines: the training set's mean gap (knows nothing of the image), and a nearest-colour
  lookup (the gap of the training image whose mean CIELAB colour is nearest);
- a reference: the Tauc fit on the test sample's own (noisy) measured spectrum — what a
  spectrometer would give; the models see only the image.

Prints a Markdown table (MAE, median and 90th-percentile absolute error in eV, RMSE of the
predicted absorbance; and the MAE over the held-out films whose gap lies outside the training
set's gap range, where a model must extrapolate) and writes it with the settings to
``<out>/evaluation.json`` (``<out>`` defaults to ``bandgap-out/evaluate-<element>``); the models
to ``<out>/models/``; the Figure-4 analogues to ``docs/usecases/``: ``bandgap-figure4a.png``
(test images, AE and VAE reconstructions), ``bandgap-figure4b.png`` (t-SNE of the VAE latent
means of test images, each point in its image's mean colour, sized by its true band gap) and
``bandgap-parity.png`` (predicted against true gap per model).

    PYTHONPATH=$PWD nice -n 15 python -m examples.bandgap.evaluate --n 30000     # docs' numbers
    PYTHONPATH=$PWD nice -n 15 python -m examples.bandgap.evaluate --n 30000 --hold-out Ce
    PYTHONPATH=$PWD python -m examples.bandgap.evaluate --small                   # 2,000, short
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from examples.bandgap import bandgap, models, simulate

__all__ = [
    "HOLDOUT_BI",
    "baselines",
    "evaluate",
    "figure_reconstructions",
    "figure_tsne",
    "figures",
    "held_out",
    "main",
    "table",
]

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "usecases"
HOLDOUT_BI = 0.5


def held_out(composition: np.ndarray, element: str = "Bi") -> np.ndarray:
    """True for the test region: the element's corner, x ≥ HOLDOUT_BI (Bi by default)."""
    column = simulate.ELEMENTS.index(element)
    return np.asarray(composition)[:, column] >= HOLDOUT_BI - 1e-9


def _mean_lab(images: np.ndarray) -> np.ndarray:
    import torch

    x = torch.as_tensor(images, dtype=torch.float32)
    return models.srgb_to_lab(x).mean(dim=(1, 2)).numpy()


def baselines(train: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Gap predictions of the trivial baselines for the test images."""
    from sklearn.neighbors import KNeighborsRegressor

    mean = np.full(len(test["gap_ev"]), train["gap_ev"].mean())
    knn = KNeighborsRegressor(n_neighbors=1).fit(_mean_lab(train["image"]), train["gap_ev"])
    return {
        "training-set mean gap": mean,
        "nearest colour (1-NN, mean Lab)": knn.predict(_mean_lab(test["image"])),
    }


def _errors(pred: np.ndarray, truth: np.ndarray, beyond: np.ndarray) -> dict[str, float]:
    """MAE, median, p90; and the MAE over test films whose gap lies outside the training gaps."""
    err = np.abs(pred - truth)
    return {
        "mae_ev": float(err.mean()),
        "median_ev": float(np.median(err)),
        "p90_ev": float(np.percentile(err, 90)),
        "mae_beyond_ev": float(err[beyond].mean()) if beyond.any() else float("nan"),
    }


def evaluate(
    n: int, seed: int, *, epochs: int, regressor_epochs: int, out: Path, element: str = "Bi"
) -> dict[str, Any]:
    """Simulate, split, train, score; returns the results document (also the trained models)."""
    t0 = time.perf_counter()
    data = simulate.simulate(n, seed)
    sim_s = time.perf_counter() - t0
    test_mask = held_out(data["composition"], element)
    keys = ("composition", "gap_ev", "absorbance", "image", "thickness_nm")
    train = {k: data[k][~test_mask] for k in keys}
    test = {k: data[k][test_mask] for k in keys}
    wl = data["wavelength_nm"]
    lo, hi = train["gap_ev"].min(), train["gap_ev"].max()
    beyond = (test["gap_ev"] < lo) | (test["gap_ev"] > hi)
    rows: dict[str, dict[str, float]] = {}
    gaps: dict[str, np.ndarray] = {}
    trained = models.train_all(
        train["image"], train["absorbance"], out / "models", epochs=epochs,
        regressor_epochs=regressor_epochs, seed=seed,
    )  # fmt: skip
    labels = {"vae": "VAE → spectrum → Tauc", "ae": "AE → spectrum → Tauc",
              "colour": "colour clusters (Lab k-means) → spectrum → Tauc"}  # fmt: skip
    for kind, t in trained.items():
        spectrum = models.predict(t.model, test["image"])
        gaps[labels[kind]] = bandgap.tauc_gap(spectrum, wl)
        rows[labels[kind]] = _errors(gaps[labels[kind]], test["gap_ev"], beyond) | {
            "spectrum_rmse": float(np.sqrt(((spectrum - test["absorbance"]) ** 2).mean())),
            "train_s": t.seconds,
        }
    for label, pred in baselines(train, test).items():
        gaps[label] = pred
        rows[label] = _errors(pred, test["gap_ev"], beyond)
    measured = bandgap.tauc_gap(test["absorbance"], wl)
    label = "reference: Tauc fit of the measured spectrum"
    gaps[label] = measured
    rows[label] = _errors(measured, test["gap_ev"], beyond)
    result = {
        "n": n,
        "seed": seed,
        "n_train": int((~test_mask).sum()),
        "n_test": int(test_mask.sum()),
        "n_test_beyond_train_gaps": int(beyond.sum()),
        "held_out": f"x_{element} >= {HOLDOUT_BI}",
        "test_gap_range_ev": [float(test["gap_ev"].min()), float(test["gap_ev"].max())],
        "train_gap_range_ev": [float(train["gap_ev"].min()), float(train["gap_ev"].max())],
        "epochs": epochs,
        "regressor_epochs": regressor_epochs,
        "simulate_s": sim_s,
        "rows": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(result, indent=1))
    result["_gaps"] = gaps
    result["_test"] = test
    result["_trained"] = trained
    return result


def table(result: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| model (held out: " + result["held_out"] + ") | MAE (eV) | median (eV) | p90 (eV) "
        f"| MAE beyond training gaps, {result['n_test_beyond_train_gaps']} films (eV) "
        "| spectrum RMSE (absorbance) |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in result["rows"].items():
        rmse = f"{r['spectrum_rmse']:.4f}" if "spectrum_rmse" in r else "—"
        far = "—" if np.isnan(r["mae_beyond_ev"]) else f"{r['mae_beyond_ev']:.3f}"
        lines.append(
            f"| {label} | {r['mae_ev']:.3f} | {r['median_ev']:.3f} | {r['p90_ev']:.3f} | {far} "
            f"| {rmse} |"
        )
    return "\n".join(lines)


def _upscale(image: np.ndarray, factor: int = 4) -> np.ndarray:
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def figure_reconstructions(
    images: np.ndarray, gap_ev: np.ndarray, trained: dict[str, models.Trained], title: str
) -> Any:
    """Figure 4, left: ten films spread over the gaps (lowest to highest), each above its AE and
    VAE reconstructions (`trained["ae"]`, `trained["vae"]`); a matplotlib figure."""
    import matplotlib.pyplot as plt

    order = np.argsort(gap_ev)
    pick = order[np.linspace(0, len(order) - 1, 10).astype(int)]
    originals = images[pick]
    rows = [
        ("original", originals),
        ("AE", models.reconstruct(trained["ae"], originals)),
        ("VAE", models.reconstruct(trained["vae"], originals)),
    ]
    fig, axes = plt.subplots(3, len(pick), figsize=(len(pick) * 1.1, 3.8))
    for r, (name, shown) in enumerate(rows):
        for c, image in enumerate(shown):
            ax = axes[r, c]
            ax.imshow(_upscale(image), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name)
            if r == 0:
                ax.set_title(f"{gap_ev[pick[c]]:.2f} eV", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def figure_tsne(latent: np.ndarray, images: np.ndarray, gap_ev: np.ndarray, seed: int) -> Any:
    """Figure 4, right: a t-SNE of VAE latent means (n, 8), each point in its image's mean colour
    and sized by its band gap; a matplotlib figure."""
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    perplexity = min(30.0, max(5.0, (len(latent) - 1) / 3.5))
    xy = TSNE(2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(latent)
    colour = images.reshape(len(images), -1, 3).mean(axis=1) / 255.0
    size = 4 + 60 * (gap_ev - gap_ev.min()) / max(float(np.ptp(gap_ev)), 1e-9)
    fig, ax = plt.subplots(figsize=(6, 5.2))
    ax.set_facecolor("0.35")
    ax.scatter(xy[:, 0], xy[:, 1], c=colour, s=size, edgecolors="none")
    ax.set_title(
        f"t-SNE of VAE latent means, {len(latent)} held-out films\n"
        f"colour = mean image colour; size = band gap ({gap_ev.min():.2f}–{gap_ev.max():.2f} eV)",
        fontsize=9,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig


def figures(result: dict[str, Any], docs: Path = DOCS, *, tsne_points: int = 1500) -> list[Path]:
    """The Figure-4 analogues and a parity plot; returns the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test, trained = result["_test"], result["_trained"]
    docs.mkdir(parents=True, exist_ok=True)
    paths = []
    # 4a: originals and reconstructions, ordered by gap.
    title = f"Held-out test films ({result['held_out']}): originals and reconstructions"
    fig = figure_reconstructions(test["image"], test["gap_ev"], trained, title)
    paths.append(docs / "bandgap-figure4a.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    # 4b: t-SNE of the VAE latent means.
    rng = np.random.default_rng(result["seed"])
    some = rng.choice(len(test["gap_ev"]), min(tsne_points, len(test["gap_ev"])), replace=False)
    vae = trained["vae"].model
    assert isinstance(vae, models.SpectrumModel)
    import torch

    with torch.no_grad():
        latent = vae.latent(torch.as_tensor(test["image"][some], dtype=torch.float32)).numpy()
    fig = figure_tsne(latent, test["image"][some], test["gap_ev"][some], result["seed"])
    paths.append(docs / "bandgap-figure4b.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    # Parity: predicted against true gap.
    shown = [k for k in result["_gaps"] if not k.startswith("training-set")]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.0 * len(shown), 3.2), sharey=True)
    truth = test["gap_ev"]
    for ax, label in zip(axes, shown, strict=True):
        pred = result["_gaps"][label]
        ax.scatter(truth, pred, s=2, alpha=0.3)
        lo, hi = float(truth.min()) - 0.05, float(truth.max()) + 0.05
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_title(
            f"{label.split(' →')[0]}\nMAE {np.abs(pred - truth).mean():.3f} eV", fontsize=8
        )
        ax.set_xlabel("true gap (eV)")
    axes[0].set_ylabel("predicted gap (eV)")
    fig.tight_layout()
    paths.append(docs / "bandgap-parity.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--regressor-epochs", type=int, default=40)
    parser.add_argument("--small", action="store_true", help="2,000 samples, 3 + 10 epochs")
    parser.add_argument(
        "--hold-out",
        default="Bi",
        choices=simulate.ELEMENTS,
        help="the corner held out: x >= 0.5 of this element",
    )
    parser.add_argument("--out", type=Path, help="default bandgap-out/evaluate-<element>")
    parser.add_argument("--docs", type=Path, default=DOCS, help="where the PNGs go")
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args(argv)
    args.out = args.out or ROOT / "bandgap-out" / f"evaluate-{args.hold_out}"
    if args.small:
        args.n, args.epochs, args.regressor_epochs = 2000, 3, 10
    t0 = time.perf_counter()
    result = evaluate(
        args.n, args.seed, epochs=args.epochs, regressor_epochs=args.regressor_epochs,
        out=args.out, element=args.hold_out,
    )  # fmt: skip
    print(
        f"{args.n} samples (seed {args.seed}): {result['n_train']} train, {result['n_test']} "
        f"test ({result['held_out']}; test gaps {result['test_gap_range_ev'][0]:.2f}–"
        f"{result['test_gap_range_ev'][1]:.2f} eV); simulated in {result['simulate_s']:.1f} s; "
        f"epochs {args.epochs} (+{args.regressor_epochs} regressor)"
    )
    print(table(result))
    for label, r in result["rows"].items():
        if "train_s" in r:
            print(f"  {label}: trained in {r['train_s']:.1f} s")
    if not args.no_figures:
        for path in figures(result, args.docs):
            print(f"wrote {path}")
    print(f"total {time.perf_counter() - t0:.1f} s")
    return result


if __name__ == "__main__":
    main()
