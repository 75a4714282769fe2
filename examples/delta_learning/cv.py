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


def main(argv: list[str] | None = None) -> int:
    """Cross-validate, print, train on everything, save, time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE / "data", help="data folder")
    parser.add_argument("--cheap", default="xtb", choices=["xtb", "b3lyp"], help="cheap level")
    parser.add_argument("--standin", choices=["elements", "xtb"], help="use the dev stand-in")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-cheap-input", action="store_true", help="prior on elements only")
    parser.add_argument("--out", type=Path, default=HERE / "trained", help="output folder")
    args = parser.parse_args(argv)

    if args.standin:
        atoms, cheap, reference = load_standin(args.standin)
        label = f"stand-in: G2 experimental De vs {args.standin}"
    else:
        atoms, cheap, reference = load_files(args.data, args.cheap)
        label = f"{args.data}: reference vs {args.cheap}"
    config = delta_model.Config(cheap_input=not args.no_cheap_input)
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
