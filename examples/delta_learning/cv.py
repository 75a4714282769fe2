"""Cross-validate the Δ-model, train it on all molecules, save it and time it.

    python examples/delta_learning/cv.py                       # the committed data files
    python examples/delta_learning/cv.py --standin xtb         # the development stand-in
    python examples/delta_learning/cv.py --cheap b3lyp --epochs 20 --folds 3 --out /tmp/delta

Reads `data/molecules.extxyz` and `data/energies.csv` (the shared format: one row per molecule,
`reference_De_kcal_mol`, `xtb_De_kcal_mol`, `b3lyp_De_kcal_mol`). Prints the per-fold and mean
MAE table (kcal/mol) and the in-process throughput, and writes `cv.json` and the trained model
(`weights.pt` + `config.json`) to `--out`; `cv.json` holds the per-molecule out-of-fold predictions.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import model as delta_model  # noqa: E402


def load_files(folder: Path, cheap: str) -> tuple[list, np.ndarray, np.ndarray]:
    """Molecules, cheap and reference De from the shared data files."""
    from ase.io import read

    atoms = read(folder / "molecules.extxyz", index=":")
    with open(folder / "energies.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if [a.info.get("name") for a in atoms] != [r["name"] for r in rows]:
        raise SystemExit("molecules.extxyz and energies.csv are not in the same order")
    column = f"{cheap}_De_kcal_mol"
    keep = [i for i, r in enumerate(rows) if r[column] not in ("", None)]
    if len(keep) < len(rows):
        print(f"note: {len(rows) - len(keep)} molecules have no {column}; left out")
    cheap_values = np.array([float(rows[i][column]) for i in keep])
    reference = np.array([float(rows[i]["reference_De_kcal_mol"]) for i in keep])
    return [atoms[i] for i in keep], cheap_values, reference


def load_standin(kind: str) -> tuple[list, np.ndarray, np.ndarray]:
    """The development stand-in: G2 molecules, experimental De, a stand-in cheap level."""
    import standin

    atoms = standin.molecules()
    reference = standin.atomization_energies(atoms)
    cheap = standin.cheap_xtb(atoms) if kind == "xtb" else standin.cheap_elements(atoms, reference)
    return atoms, cheap, reference


def parity_plot(path: Path, reference: np.ndarray, oof: dict, label: str, means: dict) -> None:
    """Out-of-fold prediction against reference, one panel per predictor (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = ["cheap", "linear+elements", "delta_schnet"]
    fig, axes = plt.subplots(
        2,
        len(shown),
        figsize=(4.2 * len(shown), 7.6),
        sharex=True,
        sharey="row",
        gridspec_kw={"height_ratios": [3, 2]},
    )
    lo, hi = float(reference.min()) - 50, float(reference.max()) + 50
    for column, name in enumerate(shown):
        top, bottom = axes[0, column], axes[1, column]
        top.plot([lo, hi], [lo, hi], color="0.6", linewidth=1)
        top.scatter(reference, oof[name], s=10, alpha=0.7)
        top.set_title(f"{name}: CV MAE {means[name]:.1f} kcal/mol", fontsize=10)
        top.set_xlim(lo, hi)
        top.set_ylim(lo, hi)
        bottom.axhline(0.0, color="0.6", linewidth=1)
        bottom.scatter(reference, oof[name] - reference, s=10, alpha=0.7)
        bottom.set_xlabel("reference De (kcal/mol)")
    axes[0, 0].set_ylabel("predicted De, out of fold (kcal/mol)")
    axes[1, 0].set_ylabel("predicted − reference (kcal/mol)")
    fig.suptitle(label, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Cross-validate, print, train on everything, save, time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE / "data", help="data folder")
    parser.add_argument("--cheap", default="xtb", choices=["xtb", "b3lyp"], help="cheap level")
    parser.add_argument("--standin", choices=["elements", "xtb"], help="use the dev stand-in")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cheap-input", action="store_true", help="prior also has α·cheap")
    parser.add_argument("--out", type=Path, default=HERE / "trained", help="output folder")
    parser.add_argument("--plot", type=Path, help="write a parity plot (PNG) here")
    args = parser.parse_args(argv)

    if args.standin:
        atoms, cheap, reference = load_standin(args.standin)
        label = f"stand-in: G2 experimental De vs {args.standin}"
    else:
        atoms, cheap, reference = load_files(args.data, args.cheap)
        label = f"{args.data.name}/: reference vs {args.cheap}"
    config = delta_model.Config(cheap_input=args.cheap_input)
    print(f"{len(atoms)} molecules ({label}); {args.folds}-fold CV, {args.epochs} epochs")

    start = time.perf_counter()
    oof: dict[str, np.ndarray] = {}
    result = delta_model.cross_validate(
        atoms,
        cheap,
        reference,
        folds=args.folds,
        seed=args.seed,
        epochs=args.epochs,
        config=config,
        predictions=oof,
    )
    cv_seconds = time.perf_counter() - start
    names = delta_model.PREDICTORS
    print("fold  n_test  " + "  ".join(f"{n:>16}" for n in names))
    for row in result["folds"]:
        cells = "  ".join(f"{row[n]:16.2f}" for n in names)
        print(f"{row['fold']:>4}  {row['n_test']:>6}  {cells}")
    print("mean          " + "  ".join(f"{result['mean'][n]:16.2f}" for n in names))
    print("std           " + "  ".join(f"{result['std'][n]:16.2f}" for n in names))
    print(f"CV took {cv_seconds:.0f} s")
    if args.plot:
        title = f"{len(atoms)} molecules, {label}, {args.folds}-fold CV (seed {args.seed})"
        parity_plot(args.plot, reference, oof, title, result["mean"])
        print(f"parity plot: {args.plot}")

    final = delta_model.fit(
        atoms, cheap, reference, epochs=args.epochs, seed=args.seed, config=config
    )
    delta_model.save(
        final,
        args.out,
        metadata={"data": label, "n_molecules": len(atoms), "epochs": args.epochs},
    )
    speeds = []
    for threads in (1, 2):
        speed = delta_model.throughput(
            args.out, atoms, cheap, batch=100, repeats=30, threads=threads
        )
        speeds.append(speed)
        print(
            f"in-process predict, batch of 100: median {speed['median_s'] * 1e3:.1f} ms, "
            f"best {speed['best_s'] * 1e3:.1f} ms ({speed['molecules_per_s']:.0f} molecules/s "
            f"at the median, {threads} thread(s))"
        )
    document = {
        "data": label,
        "n_molecules": len(atoms),
        "folds": result["folds"],
        "mean": result["mean"],
        "std": result["std"],
        "epochs": args.epochs,
        "config": config.__dict__,
        "cv_seconds": cv_seconds,
        "throughput": speeds,
        # Out-of-fold predictions (kcal/mol), for a parity plot.
        "predictions": [
            {"name": a.info.get("name"), "reference": float(reference[i])}
            | {name: float(oof[name][i]) for name in names}
            for i, a in enumerate(atoms)
        ],
    }
    (args.out / "cv.json").write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
