"""The CNN against phase retrieval on the CDI test set: errors, time per image, a Figure-5 PNG.

For every test image (``data/test.h5``): the CNN's amplitude and phase (``trained/``, the
architecture JSON + weights) and phase retrieval's (``phase_retrieval.reconstruct``, default
settings, seed = the image's index), each scored by ``metrics.score`` — shape error 1 − IoU of the
supports (amplitude ≥ 0.5), phase error the RMS over the true support after the best global offset,
the twin forgiven for both. A reference row scores a flat phase (0 everywhere) on the true shape:
what a method that learned nothing about the strain would get.

Time per image: the CNN over the whole set in batches of 256 (and one image at a time), phase
retrieval image by image; wall clock on this machine, torch with ``--threads`` threads, numpy's
FFT single-threaded. Prints a Markdown table, writes it with the per-image numbers to
``trained/evaluation.json`` and the figure to ``docs/usecases/cdi-figure5.png``.

    PYTHONPATH=$PWD nice -n 19 python -m examples.cdi.evaluate [--n 500] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

from examples.cdi import metrics, phase_retrieval, simulate

__all__ = ["align", "evaluate", "figure", "retrieve_all", "table"]

HERE = Path(__file__).resolve().parent
FIGURE = HERE.parents[1] / "docs" / "usecases" / "cdi-figure5.png"
PR_CACHE = "phase_retrieval_test.npz"


def align(
    amplitude: np.ndarray, phase: np.ndarray, truth_support: np.ndarray, truth_phase: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The prediction as scored: twin chosen as `metrics.score` does, global offset removed."""
    s = metrics.score(amplitude, phase, truth_support, truth_phase)
    if s.twin:
        amplitude, phase = metrics.twin_pair(amplitude, phase)
    diff = (phase - truth_phase)[truth_support]
    offset = np.angle(np.exp(1j * diff).sum())
    support = amplitude >= metrics.SUPPORT_THRESHOLD
    return amplitude, np.where(support, np.angle(np.exp(1j * (phase - offset))), 0.0)


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.pstdev(values),
        "median": statistics.median(values),
    }


def retrieve_all(intensity: np.ndarray, cache: Path | None = None) -> dict[str, np.ndarray]:
    """Phase retrieval on every image (seed = index), timed; kept in `cache` for these inputs."""
    if cache is not None and cache.exists():
        with np.load(cache) as saved:
            if np.array_equal(saved["intensity"], intensity):
                return dict(saved)
    out: dict[str, list[Any]] = {k: [] for k in ("amplitude", "phase", "seconds", "fourier_error")}
    for i, image in enumerate(intensity):
        t = time.perf_counter()
        r = phase_retrieval.reconstruct(image, seed=i)
        out["seconds"].append(time.perf_counter() - t)
        out["amplitude"].append(r.amplitude)
        out["phase"].append(r.phase)
        out["fourier_error"].append(r.error)
    arrays = {k: np.asarray(v) for k, v in out.items()} | {"intensity": intensity}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, **arrays)
    return arrays


def evaluate(test: dict[str, Any], model_folder: Path, *, n: int, threads: int) -> dict[str, Any]:
    """Run both methods on the first `n` test images; scores, timings and predictions."""
    import torch
    from examples.cdi import model as cnn

    torch.set_num_threads(threads)
    intensity = test["intensity"][:n]
    support, phase = test["support"][:n], test["phase"][:n]
    net = cnn.load(model_folder)
    cnn.predict(net, intensity[:8])  # warm up
    start = time.perf_counter()
    cnn_amp, cnn_phase = cnn.predict(net, intensity, batch_size=256)
    cnn_batch = (time.perf_counter() - start) / n
    single = []
    for i in range(min(n, 50)):
        t = time.perf_counter()
        net.predict(cnn.prepare(intensity[i]), verbose=0)
        single.append(time.perf_counter() - t)

    pr = retrieve_all(intensity, model_folder / PR_CACHE)
    pr_amp, pr_phase = pr["amplitude"], pr["phase"]
    pr_time, pr_error = pr["seconds"].tolist(), pr["fourier_error"].tolist()

    rows: dict[str, dict[str, Any]] = {}
    for name, amps, phases in (
        ("CNN", cnn_amp, cnn_phase),
        ("phase retrieval", pr_amp, pr_phase),
    ):
        scores = [metrics.score(amps[i], phases[i], support[i], phase[i]) for i in range(n)]
        rows[name] = {
            "shape": [s.shape_error for s in scores],
            "phase": [s.phase_error for s in scores],
            "twin": sum(s.twin for s in scores),
        }
    flat = [metrics.phase_error(np.zeros((32, 32)), phase[i], support[i]) for i in range(n)]
    rows["flat phase on the true shape (reference)"] = {"shape": [0.0] * n, "phase": flat}
    rows["CNN"]["seconds_per_image"] = cnn_batch
    rows["CNN"]["seconds_single"] = statistics.median(single)
    rows["phase retrieval"]["seconds_per_image"] = statistics.fmean(pr_time)
    rows["phase retrieval"]["seconds_single"] = statistics.median(pr_time)
    rows["phase retrieval"]["fourier_error"] = _summary(pr_error)
    return {
        "n": n,
        "threads": threads,
        "rows": rows,
        "predictions": {
            "CNN": (np.asarray(cnn_amp), np.asarray(cnn_phase)),
            "phase retrieval": (np.asarray(pr_amp), np.asarray(pr_phase)),
        },
    }


def table(result: dict[str, Any]) -> str:
    """The comparison as Markdown."""
    lines = [
        f"| method ({result['n']} test images) | shape error 1 − IoU: mean ± sd (median) "
        "| phase error, rad: mean ± sd (median) | time per image |",
        "|---|---|---|---|",
    ]
    for name, row in result["rows"].items():
        shape, phase = _summary(row["shape"]), _summary(row["phase"])
        if "seconds_per_image" in row:
            if name == "CNN":
                timing = (
                    f"{row['seconds_per_image'] * 1e3:.2f} ms in batches of 256; "
                    f"{row['seconds_single'] * 1e3:.1f} ms alone"
                )
            else:
                timing = f"{row['seconds_single'] * 1e3:.0f} ms (median)"
            shape_cell = f"{shape['mean']:.3f} ± {shape['sd']:.3f} ({shape['median']:.3f})"
        else:
            timing, shape_cell = "—", "— (true shape)"
        lines.append(
            f"| {name} | {shape_cell} | "
            f"{phase['mean']:.3f} ± {phase['sd']:.3f} ({phase['median']:.3f}) | {timing} |"
        )
    return "\n".join(lines)


def figure(test: dict[str, Any], result: dict[str, Any], path: Path, picks: list[int]) -> None:
    """Figure 5 after Cherukara et al.: intensity in; true, CNN and phase-retrieval out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [
        "intensity (log)",
        "true shape",
        "CNN shape",
        "PR shape",
        "true phase",
        "CNN phase",
        "PR phase",
    ]
    fig, axes = plt.subplots(
        len(picks), len(columns), figsize=(1.6 * len(columns), 1.7 * len(picks))
    )
    window = slice(6, 26)  # the crystal lies within 8 pixels of the centre
    for r, i in enumerate(picks):
        support, phase = test["support"][i], test["phase"][i]
        shown = [("log", np.log1p(test["intensity"][i]))]
        aligned = {
            name: align(amps[i], phases[i], support, phase)
            for name, (amps, phases) in result["predictions"].items()
        }
        shown.append(("amp", test["amplitude"][i][window, window]))
        shown += [("amp", aligned[m][0][window, window]) for m in ("CNN", "phase retrieval")]
        shown.append(("phase", np.where(support, phase, np.nan)[window, window]))
        for m in ("CNN", "phase retrieval"):
            amp, ph = aligned[m]
            shown.append(("phase", np.where(amp >= 0.5, ph, np.nan)[window, window]))
        # Colour range per row: ± the largest |true phase| of that crystal.
        limit = max(float(np.abs(phase[support]).max()), 0.1)
        notes = {}
        for c, m in ((2, "CNN"), (3, "phase retrieval")):
            rows = result["rows"][m]
            notes[c] = f"1 − IoU {rows['shape'][i]:.2f}"
            notes[c + 3] = f"{rows['phase'][i]:.2f} rad"
        for c, (kind, image) in enumerate(shown):
            ax = axes[r, c]
            if kind == "log":
                ax.imshow(image, cmap="magma")
            elif kind == "amp":
                ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(image, cmap="coolwarm", vmin=-limit, vmax=limit)
            ax.set_xticks([])
            ax.set_yticks([])
            if c in notes:
                ax.set_xlabel(notes[c], fontsize=7)
            if r == 0:
                ax.set_title(columns[c], fontsize=8)
        axes[r, 0].set_ylabel(f"test #{i}", fontsize=8)
        axes[r, 4].set_xlabel(f"±{limit:.2f} rad", fontsize=7)
    fig.suptitle(
        "Simulated CDI test images: 32×32 intensity in; shape and phase out (central 20×20 "
        "pixels; phase colour range per row under the true phase; errors under each prediction)",
        fontsize=8,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Evaluate both methods, print the table, write the JSON and the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=simulate.DATA_DIR)
    parser.add_argument("--model", type=Path, default=HERE / "trained")
    parser.add_argument("--n", type=int, default=500, help="first N test images")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("--picks", default="0,1,2,3", help="test images in the figure")
    parser.add_argument(
        "--phase-retrieval-only", action="store_true", help="only run and cache phase retrieval"
    )
    args = parser.parse_args(argv)
    test = simulate.load(args.data / "test.h5")
    n = min(args.n, len(test["intensity"]))
    if args.phase_retrieval_only:
        pr = retrieve_all(test["intensity"][:n], args.model / PR_CACHE)
        print(f"phase retrieval on {n} images: {np.median(pr['seconds']) * 1e3:.0f} ms median")
        return 0
    result = evaluate(test, args.model, n=n, threads=args.threads)
    print(table(result))
    twins = {k: v["twin"] for k, v in result["rows"].items() if "twin" in v}
    print(f"twin chosen (of {n}): {twins}")
    fourier = result["rows"]["phase retrieval"]["fourier_error"]
    print(f"phase retrieval Fourier-modulus error: median {fourier['median']:.3f}")
    out = {k: v for k, v in result.items() if k != "predictions"}
    args.model.mkdir(parents=True, exist_ok=True)
    (args.model / "evaluation.json").write_text(json.dumps(out, indent=1))
    picks = [int(p) for p in args.picks.split(",") if int(p) < n]
    figure(test, result, args.figure, picks)
    print(f"figure: {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
