"""The Figure 6 analogue: time to correct 100 molecules through the hub against molecule size.

    nice -n 19 .venv/bin/python bench/bench_delta_throughput.py            # ~10 min on 2 cores
    nice -n 19 .venv/bin/python bench/bench_delta_throughput.py --quick    # ~2 min

The Δ-model of the use case (examples/delta_learning/model.py, SchNet, trained here on the 148 G2
molecules for `--epochs` epochs, seed 0: the time to predict does not depend on how well it is
trained) is published to a real hub (`matterhub serve` on loopback in its own process, SQLite,
the bubblewrap sandbox when installed, servable environments from the shared cache
~/.cache/matterhub-tests/hub, torch from /opt/wheels, at most one replica per servable,
memoization off so every run computes):

- `delta_atomization` with `batch_function="correct_many"` (the hub folds a frame's calls into
  one network pass), and the same files as `delta_single` without it (one pass per molecule);
- `xtb_annotate` (tblite) and the pipeline `delta_pipeline` = xtb_annotate → delta_atomization.

Molecule sizes: 100 of the 148 G2 molecules as they come (mixed sizes, drawn with seed 0; in the
table only), the G2 molecules grouped by atom count (2, 3, 4–5, 6–7, 8–9, 10–14 atoms), and
synthetic linear alkanes CnH2n+2 (n = 8, 16, 32: 26, 50, 98 atoms; zigzag chains with standard
bond lengths and angles, built here with ASE, their GFN2-xTB De computed with tblite here as the
cheap input). Each point is 100 molecules (the group repeated to 100). Timed per point, in
interleaved rounds (`--runs`, default 64, as the paper's Figure 6):

- `in-process predict`: `model.predict(folder, atoms, cheap)` in this process (the baseline: the
  same model called directly; one torch thread, as the servable);
- `in-process correct_many`: the servable's own batch function on the same JSON inputs (extended
  XYZ text parsed to atoms included), in this process;
- `hub batch`: `client.run_batch("alice/delta_atomization", inputs, wait=True)` over HTTP —
  submit, queue, worker frames, results (the batch status long-polled);
- `hub per-item`: the same through `delta_single`;
- `hub pipeline`: `run_batch("alice/delta_pipeline", structures)` — GFN2-xTB for each molecule
  and then the Δ-model, reported as is, with `--pipeline-runs` (default 5) runs per point.

Prints a table (median, p95, molecules/s, ratio to in-process predict), writes
bench/results/delta_throughput.json and the figure docs/usecases/delta-learning-throughput.png.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

PY = sys.executable
CACHE = Path.home() / ".cache" / "matterhub-tests" / "hub"
WHEELS = [p for p in ["/opt/wheels"] if Path(p).is_dir()]
HERE = ROOT / "examples" / "delta_learning"
FIGURE = ROOT / "docs" / "usecases" / "delta-learning-throughput.png"
G2_GROUPS = [(2, 2), (3, 3), (4, 5), (6, 7), (8, 9), (10, 14)]
ALKANES = [8, 16, 32]
BATCH = 100
MODES = ["in-process predict", "in-process correct_many", "hub batch", "hub per-item"]
PIPELINE = "hub pipeline"


# molecules ---------------------------------------------------------------------------------------


def alkane(n: int) -> Any:
    """A linear alkane CnH2n+2, all-trans zigzag: C–C 1.54 Å, C–H 1.09 Å, tetrahedral angles."""
    from ase import Atoms

    half = np.radians(109.47 / 2)
    along, across = 1.54 * np.sin(half), 1.54 * np.cos(half)
    carbons = [np.array([i * along, (i % 2) * across, 0.0]) for i in range(n)]
    symbols, positions = ["C"] * n, list(carbons)
    for i, c in enumerate(carbons):
        outward = np.array([0.0, -1.0 if i % 2 == 0 else 1.0, 0.0])  # away from the neighbours
        for side in (1.0, -1.0):  # two hydrogens above and below the carbon plane
            direction = outward * np.cos(half) + np.array([0.0, 0.0, side]) * np.sin(half)
            symbols.append("H")
            positions.append(c + 1.09 * direction / np.linalg.norm(direction))
        for end, step in ((0, -1), (n - 1, 1)):  # an end's third hydrogen: where the chain's
            if i == end:  # next carbon would be, continuing the zigzag
                ahead = np.array([(i + step) * along, ((i + step) % 2) * across, 0.0])
                symbols.append("H")
                positions.append(c + 1.09 * (ahead - c) / np.linalg.norm(ahead - c))
    atoms = Atoms(symbols, positions=positions)
    atoms.info["name"] = f"C{n}H{2 * n + 2}"
    return atoms


def xyz(atoms: Any) -> str:
    """Extended XYZ text of one molecule (the servables' structure input)."""
    import ase.io

    out = io.StringIO()
    ase.io.write(out, atoms, format="extxyz")
    return out.getvalue()


def points(quick: bool) -> list[dict[str, Any]]:
    """Per size: a label, 100 molecules, their cheap energies and the servables' inputs."""
    from examples.delta_learning import data, xtb_atomization

    molecules, table = data.load()
    cheap = table["xtb_De_kcal_mol"].to_numpy()
    sizes = np.array([len(m) for m in molecules])
    # The dataset as it comes (mixed sizes): 100 of the 148 drawn once (seed 0). In the table,
    # not on the figure's size axis.
    drawn = np.random.default_rng(0).choice(len(molecules), BATCH, replace=False)
    groups: list[tuple[str, list[Any], np.ndarray]] = [
        ("G2 mixed", [molecules[i] for i in drawn], cheap[drawn])
    ]
    for low, high in G2_GROUPS[::2] if quick else G2_GROUPS:
        idx = np.flatnonzero((sizes >= low) & (sizes <= high))
        label = f"G2 {low}" if low == high else f"G2 {low}–{high}"
        groups.append((label, [molecules[i] for i in idx], cheap[idx]))
    for n in ALKANES[:2] if quick else ALKANES:
        chain = alkane(n)
        groups.append((f"C{n}H{2 * n + 2}", [chain], np.array([xtb_atomization.xtb_de(chain)])))
    out = []
    for label, mols, energies in groups:
        take = np.resize(np.arange(len(mols)), BATCH)
        atoms = [mols[i] for i in take]
        texts = [xyz(a) for a in atoms]
        out.append(
            {
                "label": label,
                "atoms": float(np.mean([len(a) for a in atoms])),
                "molecules": atoms,
                "cheap": energies[take],
                "inputs": [
                    {"structure": t, "cheap": float(c)}
                    for t, c in zip(texts, energies[take], strict=True)
                ],
                "structures": texts,
            }
        )
    return out


# the hub -----------------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_hub(work: Path, root: Path = ROOT) -> tuple[subprocess.Popen[bytes], str, str]:
    """`matterhub serve` on loopback in its own process; (process, base URL, alice's token).

    `root`: the checkout whose `src/` the hub runs (another one for a baseline side by side).
    """
    env = {
        **os.environ,
        "PYTHONPATH": f"{root / 'src'}:{root}",
        "MATTERHUB_DATA_DIR": str(work / "data"),
        "MATTERHUB_HUB_CACHE_DIR": str(CACHE),
        "MATTERHUB_HUB_FIND_LINKS": json.dumps(WHEELS),
        "MATTERHUB_LOG_LEVEL": "warning",
        "MATTERHUB_HUB_MAX_REPLICAS": "1",  # one replica per servable, as the paper's figure
    }
    made = subprocess.run(
        [PY, "-c", textwrap.dedent("""
            from matterhub.bootstrap import build_services
            from matterhub.settings import Settings
            from matterhub.core.identity import SYSTEM_IDENTITY
            s = build_services(Settings())
            s.accounts.create_user(SYSTEM_IDENTITY, "alice")
            print(s.accounts.create_token(SYSTEM_IDENTITY, "alice").token)
            s.close()
        """)],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    token = made.stdout.strip().splitlines()[-1]
    port = free_port()
    log = (work / "hub.log").open("wb")
    hub = subprocess.Popen(
        [PY, "-m", "matterhub.cli", "serve", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline or hub.poll() is not None:
                raise RuntimeError("the hub did not start; see " + str(work / "hub.log")) from None
            time.sleep(0.3)
    return hub, base, token


def publish(client: Any, folder: Path, example: dict[str, Any], expected: float) -> None:
    """delta_atomization (batch function), delta_single (none), xtb_annotate, delta_pipeline."""
    from matterhub.client.describe import describe_files

    files = [HERE / "delta_atomization.py", HERE / "model.py", HERE / "xtb_atomization.py"]
    files += [folder / "weights.pt", folder / "config.json"]
    pair = {
        "type": "dict",
        "properties": {
            "structure": {"type": "structure", "description": "the molecule"},
            "cheap": {"type": "float", "description": "its GFN2-xTB De, kcal/mol"},
        },
    }
    energy = {"type": "float", "description": "atomization energy De, kcal/mol"}
    descriptions = []
    for name, batch in (("delta_atomization", "correct_many"), ("delta_single", None)):
        delta = describe_files(
            name, "delta_atomization:correct", files, input_type=pair, output_type=energy,
            batch_function=batch,
        )  # fmt: skip
        delta.add_requirements({"torch": "2.13.0", "ase": "3.29.0", "numpy": "2.4.6"})
        delta.set_example(example, expected, tolerance=1e-3)
        descriptions.append(delta)
    annotate = describe_files(
        "xtb_annotate", "xtb_atomization:annotate", [HERE / "xtb_atomization.py"],
        input_type={"type": "structure"}, output_type=pair,
    )  # fmt: skip
    annotate.add_requirements({"tblite": "0.8.0", "ase": "3.29.0", "numpy": "2.4.6"})
    descriptions.append(annotate)
    for description in descriptions:
        description.set_title("bench " + description.document["dlhub"]["name"])
        description.set_creators(["Bench, Mark"])
        description.document["servable"]["options"] = {"memoize": False}  # every run computes
        build = client.publish_servable(description, wait=True, timeout=1800)
        if build["status"] != "succeeded":
            raise RuntimeError(build["log"])
    pipeline = {
        "datacite": {
            "titles": [{"title": "bench delta_pipeline"}],
            "creators": [{"creatorName": "Bench, Mark"}],
        },
        "dlhub": {"name": "delta_pipeline"},
        "servable": {
            "type": "pipeline",
            "steps": [{"servable": "alice/xtb_annotate"}, {"servable": "alice/delta_atomization"}],
        },
    }
    build = client.publish_bundle(pipeline, {})
    build = client.wait_for_build(build["servable"], build["id"], timeout=300)
    if build["status"] != "succeeded":
        raise RuntimeError(build["log"])


# timing ------------------------------------------------------------------------------------------


def stop_hub(hub: subprocess.Popen[bytes]) -> None:
    """End a hub `start_hub` started (its whole process group, as Ctrl-C would)."""
    os.killpg(hub.pid, signal.SIGINT)
    hub.wait(30)


def save_results(name: str, results: dict[str, Any]) -> Path:
    """Write a bench's results as `bench/results/<name>.json`; returns the path."""
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(results, indent=2))
    return path


def through_hub(
    client: Any, name: str, inputs: list[Any], timeout: float = 600, binary: bool = False
) -> list[Any]:
    """One batch through the hub, waited for; its outputs in order (all must succeed).

    `binary`: inputs and results as msgpack, arrays as their bytes (the client's `binary=True`).
    """
    queued = client.run_batch(name, inputs, binary=binary)
    done = client.wait_for_batch(queued["batch_id"], timeout=timeout, binary=binary)
    tasks = [done["tasks"][i] for i in queued["task_ids"]]
    failed = [t for t in tasks if t["status"] != "success"]
    if failed:
        raise RuntimeError(f"{name}: {len(failed)} task(s) failed, e.g. {failed[0]}")
    return [t["result"] for t in tasks]


def timed(function: Any) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(np.ceil(0.95 * len(ordered))) - 1)]
    median = statistics.median(ordered)
    return {"median_s": median, "p95_s": p95, "runs": len(times), "per_s": BATCH / median}


def main() -> None:
    """Train, serve, time every point and mode, print the table, write the JSON and the figure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=64, help="timed runs per point and mode")
    parser.add_argument("--pipeline-runs", type=int, default=5, help="runs per point (xTB)")
    parser.add_argument("--epochs", type=int, default=50, help="training epochs (speed only)")
    parser.add_argument("--quick", action="store_true", help="fewer sizes, 5 runs, 1 pipeline")
    parser.add_argument("--figure", type=Path, default=FIGURE)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.pipeline_runs = min(args.runs, 5), min(args.pipeline_runs, 1)

    import torch

    sys.path.insert(0, str(HERE))  # the servable's module imports its neighbours as top-level
    from examples.delta_learning import data, delta_atomization
    from examples.delta_learning import model as delta_model

    from matterhub import Client

    torch.set_num_threads(1)  # as the servable: one thread per replica
    work = Path(tempfile.mkdtemp(prefix="bench-delta-"))
    molecules, table = data.load()
    started = time.perf_counter()
    trained = delta_model.fit(
        molecules, table["xtb_De_kcal_mol"].to_numpy(), table["reference_De_kcal_mol"].to_numpy(),
        epochs=args.epochs, seed=0, val_fraction=0.0,
    )  # fmt: skip
    folder = delta_model.save(trained, work / "trained")
    print(f"trained {args.epochs} epochs on {len(molecules)} molecules in "
          f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
    sizes = points(args.quick)
    hub, base, token = start_hub(work)
    client = Client(base, token, timeout=120.0)
    results: dict[str, Any] = {"runs": args.runs, "pipeline_runs": args.pipeline_runs,
                               "batch": BATCH, "epochs": args.epochs, "points": []}  # fmt: skip
    try:
        ethanol = next(m for m in molecules if m.info["name"] == "CH3CH2OH")
        cheap = float(table.set_index("name").loc["CH3CH2OH", "xtb_De_kcal_mol"])
        expected = delta_model.predict(folder, [ethanol], [cheap])[0]
        started = time.perf_counter()
        publish(client, folder, {"structure": xyz(ethanol), "cheap": cheap}, expected)
        print(f"published in {time.perf_counter() - started:.0f} s", flush=True)
        # The servable's batch function, in this process, reads its model from its own folder.
        for name in ("weights.pt", "config.json"):
            shutil.copy(folder / name, work / name)
        delta_atomization.HERE = work
        for point in sizes:
            results["points"].append(measure(client, folder, point, args, delta_atomization))
    finally:
        client.close()
        stop_hub(hub)
    report(results)
    save_results("delta_throughput", results)
    figure(results, args.figure)
    shutil.rmtree(work, ignore_errors=True)


def measure(
    client: Any, folder: Path, point: dict[str, Any], args: argparse.Namespace, servable: Any
) -> dict[str, Any]:
    """Every mode on one point, interleaved run by run; checks the hub answers as in-process."""
    from examples.delta_learning import model as delta_model

    atoms, cheap, inputs = point["molecules"], point["cheap"], point["inputs"]
    direct = delta_model.predict(folder, atoms, cheap)
    for name in ("alice/delta_atomization", "alice/delta_single"):  # warm, and the same answers
        answers = through_hub(client, name, inputs)
        worst = max(abs(a - b) for a, b in zip(answers, direct, strict=True))
        if worst > 1e-3:
            raise RuntimeError(f"{name} differs from in-process predict by {worst} kcal/mol")
    steps = {
        "in-process predict": lambda: delta_model.predict(folder, atoms, cheap),
        "in-process correct_many": lambda: servable.correct_many(inputs),
        "hub batch": lambda: through_hub(client, "alice/delta_atomization", inputs),
        "hub per-item": lambda: through_hub(client, "alice/delta_single", inputs),
    }
    times: dict[str, list[float]] = {mode: [] for mode in [*steps, PIPELINE]}
    for _ in range(args.runs):
        for mode, step in steps.items():
            times[mode].append(timed(step))
    row_split = split(client, inputs)
    through_hub(client, "alice/delta_pipeline", point["structures"][:2])  # warm its steps
    for _ in range(args.pipeline_runs):
        times[PIPELINE].append(
            timed(lambda: through_hub(client, "alice/delta_pipeline", point["structures"]))
        )
    row = {"label": point["label"], "atoms": point["atoms"], "split": row_split}
    row["modes"] = {mode: summary(t) for mode, t in times.items()}
    base = row["modes"]["in-process predict"]["median_s"]
    for found in row["modes"].values():
        found["ratio"] = found["median_s"] / base
    print(f"{point['label']}: " + ", ".join(
        f"{m} {row['modes'][m]['median_s'] * 1000:.1f} ms" for m in row["modes"]
    ), flush=True)  # fmt: skip
    return row


def split(client: Any, inputs: list[Any]) -> dict[str, float]:
    """Where one hub batch's time goes, from its tasks' provenance (one more, untimed, batch).

    `queued_s`: submit → claimed by a worker thread; `model_s`: the batch function's time in
    the worker (a task's `run_s` share × the calls it was folded with, summed over the frames);
    `total_s`: the client's wall time; the rest is HTTP, recording, frames and results.
    """
    started = time.perf_counter()
    queued = client.run_batch("alice/delta_atomization", inputs)
    client.wait_for_batch(queued["batch_id"], timeout=600)
    total = time.perf_counter() - started
    seen = [client.get_provenance(i)["timings"] for i in queued["task_ids"]]
    model = sum(t["run_s"] for t in seen)  # each task's share: their sum is the frames' time
    return {"total_s": total, "queued_s": max(t["queued_s"] for t in seen), "model_s": model,
            "batched": max(t.get("batched", 1) for t in seen)}  # fmt: skip


def report(results: dict[str, Any]) -> None:
    """The markdown table: per point and mode, median and p95 for 100 molecules."""
    print(f"\n100 molecules per run; {results['runs']} runs per point "
          f"({results['pipeline_runs']} for the pipeline)\n")  # fmt: skip
    print("| molecules | atoms | mode | median | p95 | molecules/s | × in-process |")
    print("|---|---|---|---|---|---|---|")
    for row in results["points"]:
        for mode, found in row["modes"].items():
            print(
                f"| {row['label']} | {row['atoms']:.1f} | {mode} | "
                f"{found['median_s'] * 1000:.1f} ms | {found['p95_s'] * 1000:.1f} ms | "
                f"{found['per_s']:,.0f} | {found['ratio']:.1f} |"
            )

    print("\nOne hub batch of 100, from its tasks' provenance (ms):\n")
    print("| molecules | wall | queued (submit → claim) | batch function in the worker | rest |")
    print("|---|---|---|---|---|")
    for row in results["points"]:
        found = row["split"]
        rest = found["total_s"] - found["queued_s"] - found["model_s"]
        print(
            f"| {row['label']} | {found['total_s'] * 1000:.1f} | {found['queued_s'] * 1000:.1f} "
            f"| {found['model_s'] * 1000:.1f} (calls of {found['batched']}) | {rest * 1000:.1f} |"
        )


def figure(results: dict[str, Any], path: Path) -> None:
    """Time for 100 molecules against atoms per molecule, one line per mode (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    rows = sorted(
        (r for r in results["points"] if r["label"] != "G2 mixed"), key=lambda r: r["atoms"]
    )
    x = [r["atoms"] for r in rows]
    for mode, marker in zip([*MODES, PIPELINE], "os^vD", strict=True):
        median = [r["modes"][mode]["median_s"] for r in rows]
        p95 = [r["modes"][mode]["p95_s"] for r in rows]
        runs = rows[0]["modes"][mode]["runs"]
        line = ax.plot(x, median, marker=marker, label=f"{mode} ({runs} runs)")[0]
        ax.fill_between(x, median, p95, color=line.get_color(), alpha=0.15)
    ax.axhline(0.1, color="grey", linestyle=":", linewidth=1)
    ax.text(x[0], 0.1, " 1,000 molecules/s", va="bottom", color="grey", fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("atoms per molecule (mean of the 100)")
    ax.set_ylabel("time for 100 molecules (s); median, band to p95")
    ax.set_title("Δ-model through the hub vs in-process (one replica, 2 cores)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
