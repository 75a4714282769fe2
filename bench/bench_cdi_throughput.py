"""CDI throughput: images per second through the hub (sync and batch) against in-process calls.

    nice -n 19 .venv/bin/python bench/bench_cdi_throughput.py            # ~10 min on 2 cores
    nice -n 19 .venv/bin/python bench/bench_cdi_throughput.py --quick    # ~3 min

The issue's target: the CNN at ≥ 1,000 images/s through the batch API on 2 cores. Both servables
of the use case (examples/cdi/) are published to a real hub (`matterhub serve` on loopback in its
own process, SQLite, the bubblewrap sandbox when installed, servable environments from the shared
cache ~/.cache/matterhub-tests/hub, at most one replica per servable, `--threads` torch threads
each (default 1) and as many in this process, memoization off so every run computes):

- `cdi_structure`: the network of `model.py` (`model.build(0)`, untrained: the time to predict
  does not depend on the weights) described with `describe_keras(weights, arch=json)` and
  `set_fold_rows()`, so the worker answers a frame's calls with one pass over their images
  stacked; `cdi_structure_single`: the same files without it (one pass per call);
- `cdi_phase_retrieval`: `phase_retrieval.retrieve_phase` (python, one image per call).

Inputs: the first images of the simulated test set (`simulate.simulate_set(3, n)`), prepared as
the network takes them (`model.prepare`: (1, 32, 32, 1) per image, float32) for the CNN, raw
counts (32, 32) for phase retrieval. Before timing, the hub's answers are checked against the
in-process ones (CNN 10⁻⁴, phase retrieval 10⁻⁴). Timed in interleaved rounds (`--runs`):

CNN
- `in-process, 1 image a call`: `model.predict_on_batch(x[i:i+1])` for `--single` images;
- `in-process, N images in one call`: `model.predict_on_batch(x)` (N = `--images`);
- `hub sync, 1 image a call`: `client.run("alice/cdi_structure", x[i:i+1])` for `--single`;
- `hub sync, N images in one call`: `client.run("alice/cdi_structure", x)` (JSON);
- `hub sync, N images in one call, binary`: the same with `binary=True` (the array as `.npy`,
  the answer as msgpack with typed arrays);
- `hub batch, 1 image a task`: `client.run_batch(..., [x[i:i+1].tolist() for i …])` + long-polled
  wait (JSON both ways);
- `hub batch, 1 image a task, binary`: the same with `binary=True` — msgpack both ways, each
  image as its 4 kB of float32 and each answer as its bytes; the hub stores and frames them as
  bytes too (hub/arrays.py, hub/runtime/frames.py);
- `hub batch, 1 image a task, not folded`: the same through `cdi_structure_single`.

Phase retrieval: `in-process, 1 image a call` (`--pr-images` images), `hub sync, 1 image a
call` (the same images), `hub batch, 1 image a task` (the same images).

Prints a table (median and p95 per run, images/s, ratio of the median time per image to the
in-process call of the same shape), where one folded hub batch's time goes (from its tasks'
provenance), and writes bench/results/cdi_throughput.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
from bench_delta_throughput import (  # noqa: E402
    save_results,
    start_hub,
    stop_hub,
    through_hub,
    timed,
)

CNN, SINGLE, PR = "alice/cdi_structure", "alice/cdi_structure_single", "alice/cdi_phase_retrieval"


def publish(client: Any, folder: Path, example: Any, intensity: Any, threads: int) -> None:
    """cdi_structure (fold_rows), cdi_structure_single (not), cdi_phase_retrieval."""
    from examples.cdi import model as cnn
    from examples.cdi import servables

    from matterhub.client.describe import describe_keras

    descriptions = []
    for name, fold in (("cdi_structure", True), ("cdi_structure_single", False)):
        description = describe_keras(folder / cnn.WEIGHTS, name, arch=folder / cnn.ARCH)
        if fold:
            description.set_fold_rows()
        description.set_example(example)
        descriptions.append(description)
    descriptions.append(servables.phase_retrieval_description(intensity))
    for description in descriptions:
        description.set_title("bench " + description.document["dlhub"]["name"])
        description.set_creators(["Bench, Mark"])
        # Every run computes; torch (and numpy's BLAS) on `threads` threads in the worker.
        description.document["servable"]["options"] = {"memoize": False, "threads": threads}
        build = client.publish_servable(description, wait=True, timeout=1800)
        if build["status"] != "succeeded":
            raise RuntimeError(build["log"])


def summary(times: list[float], images: int) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(np.ceil(0.95 * len(ordered))) - 1)]
    median = statistics.median(ordered)
    return {
        "median_s": median,
        "p95_s": p95,
        "runs": len(times),
        "images": images,
        "per_s": images / median,
        "ms_per_image": 1000 * median / images,
    }


def check(name: str, hub: Any, local: Any, tolerance: float) -> None:
    worst = float(np.max(np.abs(np.asarray(hub, dtype=np.float64) - np.asarray(local))))
    if worst > tolerance:
        raise RuntimeError(f"{name} differs from the in-process answer by {worst}")
    print(f"{name}: the hub answers as in-process (largest difference {worst:.1e})", flush=True)


def split(client: Any, name: str, inputs: list[Any], binary: bool = False) -> dict[str, float]:
    """Where one hub batch's time goes, from its tasks' provenance (one more, untimed, batch).

    `queued_s`: submit → claimed by a worker thread (the longest); `model_s`: the worker's time
    in the model call (the tasks' `run_s` shares summed over the frames); `total_s`: the
    client's wall time; the rest is HTTP, JSON, recording, frames and results.
    """
    started = time.perf_counter()
    queued = client.run_batch(name, inputs, binary=binary)
    client.wait_for_batch(queued["batch_id"], timeout=1200, binary=binary)
    total = time.perf_counter() - started
    seen = [client.get_provenance(i)["timings"] for i in queued["task_ids"]]
    return {
        "total_s": total,
        "queued_s": max(t["queued_s"] for t in seen),
        "model_s": sum(t["run_s"] for t in seen),
        "batched": max(t.get("batched", 1) for t in seen),
    }


def main() -> None:
    """Serve, check, time every mode in interleaved rounds, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed rounds")
    parser.add_argument("--images", type=int, default=500, help="CNN images per batch / call")
    parser.add_argument("--single", type=int, default=20, help="CNN images one call at a time")
    parser.add_argument("--pr-images", type=int, default=4, help="phase-retrieval images")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, hub and here")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 100 images")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.images = min(args.runs, 3), min(args.images, 100)
        args.single, args.pr_images = min(args.single, 10), min(args.pr_images, 2)

    import torch
    from examples.cdi import model as cnn
    from examples.cdi import phase_retrieval as pr
    from examples.cdi import simulate as sim

    from matterhub import Client

    torch.set_num_threads(args.threads)  # as the servable's worker
    work = Path(tempfile.mkdtemp(prefix="bench-cdi-"))
    started = time.perf_counter()
    images = sim.simulate_set(3, args.images)
    counts = np.stack([im.intensity for im in images])
    x = cnn.prepare(counts)
    print(f"simulated {len(images)} test images in {time.perf_counter() - started:.1f} s")
    model = cnn.build(0)
    folder = work / "model"
    cnn.save(model, folder)
    model = cnn.load(folder)  # as saved: what the hub serves
    one = [x[i : i + 1].tolist() for i in range(len(x))]  # one image per call or task
    arrays = [x[i : i + 1] for i in range(len(x))]  # the same as float32 arrays (binary)
    many = x.tolist()
    raw = [counts[i].tolist() for i in range(args.pr_images)]
    hub, base, token = start_hub(work)
    client = Client(base, token, timeout=600.0)
    results: dict[str, Any] = {"args": vars(args), "cnn": {}, "phase_retrieval": {}}
    try:
        started = time.perf_counter()
        publish(client, folder, one[0], raw[0], args.threads)
        print(f"published in {time.perf_counter() - started:.0f} s", flush=True)
        local = model.predict_on_batch(x)
        amplitude, phase = client.run(CNN, many)
        check("hub sync, N images", [amplitude, phase], local, 1e-4)
        amplitude, phase = client.run(CNN, x, binary=True)
        check("hub sync, N images, binary", [amplitude, phase], local, 1e-4)
        for name, binary in ((CNN, False), (SINGLE, False), (CNN, True)):
            answers = through_hub(client, name, arrays if binary else one, 1200, binary)
            stacked = [np.concatenate([np.asarray(a[k]) for a in answers]) for k in (0, 1)]
            check(f"hub batch {name}{', binary' if binary else ''}", stacked, local, 1e-4)
        local_pr = [pr.retrieve_phase(counts[i]) for i in range(args.pr_images)]
        check("phase retrieval, hub sync", client.run(PR, raw[0]), local_pr[0], 1e-4)
        check(
            "phase retrieval, hub batch", through_hub(client, PR, raw, timeout=1200), local_pr, 1e-4
        )

        single = args.single
        cnn_steps = {
            "in-process, 1 image a call": (
                single,
                lambda: [model.predict_on_batch(x[i : i + 1]) for i in range(single)],
            ),
            "in-process, N images in one call": (len(x), lambda: model.predict_on_batch(x)),
            "hub sync, 1 image a call": (
                single,
                lambda: [client.run(CNN, one[i]) for i in range(single)],
            ),
            "hub sync, N images in one call": (len(x), lambda: client.run(CNN, many)),
            "hub sync, N images in one call, binary": (
                len(x),
                lambda: client.run(CNN, x, binary=True),
            ),
            "hub batch, 1 image a task": (
                len(x),
                lambda: through_hub(client, CNN, one, timeout=1200),
            ),
            "hub batch, 1 image a task, binary": (
                len(x),
                lambda: through_hub(client, CNN, arrays, timeout=1200, binary=True),
            ),
            "hub batch, 1 image a task, not folded": (
                len(x),
                lambda: through_hub(client, SINGLE, one, timeout=1200),
            ),
        }
        pr_steps = {
            "in-process, 1 image a call": (
                len(raw),
                lambda: [pr.retrieve_phase(counts[i]) for i in range(len(raw))],
            ),
            "hub sync, 1 image a call": (len(raw), lambda: [client.run(PR, r) for r in raw]),
            "hub batch, 1 image a task": (
                len(raw),
                lambda: through_hub(client, PR, raw, timeout=1200),
            ),
        }
        times: dict[str, dict[str, list[float]]] = {
            "cnn": {m: [] for m in cnn_steps},
            "phase_retrieval": {m: [] for m in pr_steps},
        }
        for r in range(args.runs):
            for group, steps in (("cnn", cnn_steps), ("phase_retrieval", pr_steps)):
                for mode, (_, step) in steps.items():
                    times[group][mode].append(timed(step))
            print(f"round {r + 1}/{args.runs} done", flush=True)
        for group, steps in (("cnn", cnn_steps), ("phase_retrieval", pr_steps)):
            for mode, (n, _) in steps.items():
                results[group][mode] = summary(times[group][mode], n)
        results["split"] = {
            "folded": split(client, CNN, one),
            "folded, binary": split(client, CNN, arrays, binary=True),
            "not folded": split(client, SINGLE, one),
        }
    finally:
        client.close()
        stop_hub(hub)
    report(results)
    save_results("cdi_throughput", results)
    shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, Any]) -> None:
    """The markdown tables."""
    args = results["args"]
    print(f"\nN = {args['images']} images; {args['runs']} interleaved rounds; one replica per "
          f"servable, {args['threads']} thread(s) there and in-process\n")  # fmt: skip
    print("| servable | mode | images a run | median | p95 | images/s | ms/image | × in-process |")
    print("|---|---|---|---|---|---|---|---|")
    for group, label in (("cnn", "CNN"), ("phase_retrieval", "phase retrieval")):
        rows = results[group]
        for mode, found in rows.items():
            base = rows["in-process, 1 image a call"]
            if "N images" in mode or ("batch" in mode and group == "cnn"):
                base = rows["in-process, N images in one call"]
            ratio = found["ms_per_image"] / base["ms_per_image"]
            print(
                f"| {label} | {mode} | {found['images']} | {found['median_s'] * 1000:,.1f} ms | "
                f"{found['p95_s'] * 1000:,.1f} ms | {found['per_s']:,.0f} | "
                f"{found['ms_per_image']:.2f} | {ratio:.1f} |"
            )
    print(f"\nOne CNN hub batch of {args['images']}, from its tasks' provenance (ms):\n")
    print(
        "| servable | wall | queued (submit → claim, longest) | model calls in the worker | rest |"
    )
    print("|---|---|---|---|---|")
    for label, found in results["split"].items():
        rest = found["total_s"] - found["queued_s"] - found["model_s"]
        print(
            f"| {label} | {found['total_s'] * 1000:,.0f} | {found['queued_s'] * 1000:,.0f} | "
            f"{found['model_s'] * 1000:,.0f} (calls of up to {found['batched']}) | "
            f"{rest * 1000:,.0f} |"
        )


if __name__ == "__main__":
    main()
