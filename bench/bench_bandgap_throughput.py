"""Band-gap use case: encoding throughput of the image encoder through the hub's batch API (binary
arrays) against a direct in-process call of the same model, in one run.

    nice -n 15 .venv/bin/python bench/bench_bandgap_throughput.py            # ~5 min on 2 cores
    nice -n 15 .venv/bin/python bench/bench_bandgap_throughput.py --quick    # ~2 min

The issue's target: ≥ 2,000 images/s through the batch API on 2 cores. The servable is the VAE
encoder of `examples/bandgap/models.py` (`SpectrumModel("vae", output="latent")`: 16×16×3 sRGB →
the 8 latent means; conv 3→16 s2, conv 16→32 s2, dense 512→64→16), untrained (the time does not
depend on the weights), described with `describe_torch(weights, module=models.py,
class_name="SpectrumModel")` and `set_fold_rows()`, published to a real hub (`matterhub serve`
on loopback in its own process, SQLite, the sandbox, the shared environment cache, one replica,
1 torch thread there and here, memoization off). Inputs: the images of `simulate.simulate(n, 3)`
as float32.

Modes (interleaved rounds, `--runs`):
- `in-process, 1 image a call` / `in-process, N images in one call`: `model(x)` under no_grad;
- `hub batch, 1 image a task, binary`: `client.run_batch(name, [x[i:i+1] …], binary=True,
  wait=True)` — each image a task, msgpack both ways with the arrays as bytes; the worker folds a
  frame's tasks into one model call;
- `hub batch, K images a task, binary`: the same with `--per-task` images in each task.

`--baseline DIR`: a second hub, running another checkout's `src/` (e.g. `git worktree add
--detach /tmp/base <ref>`), with the same servable, timed in the same rounds next to this
tree's (rows `baseline: …`; the order of the modes is reversed every other round), so a change
is measured against its base under the same load of a shared machine.

Prints the table (median, p95, images/s, ms/image, × the in-process N-image call, × the
baseline's images/s) and writes bench/results/bandgap_throughput.json. Never run by the test
suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from bench_cdi_throughput import check, summary  # noqa: E402
from bench_delta_throughput import (  # noqa: E402
    save_results,
    start_hub,
    stop_hub,
    through_hub,
    timed,
)

NAME = "bandgap_vae_encoder"
REF = f"alice/{NAME}"


def publish(client: Any, folder: Path, example: Any, threads: int) -> None:
    """The untrained VAE encoder (the weights in `folder`, made once), folded rows, memoization
    off."""
    import torch
    from examples.bandgap import models

    from matterhub.client.describe import describe_torch

    weights = folder / "vae.pt"
    if not weights.exists():  # a second hub (the baseline) gets the same weights
        torch.save(models.SpectrumModel("vae", output="latent").state_dict(), weights)
    description = describe_torch(
        weights, NAME, input_shape=[None, 16, 16, 3], output_shape=[None, models.LATENT],
        module=ROOT / "examples" / "bandgap" / "models.py", class_name="SpectrumModel",
        init_kwargs={"kind": "vae", "output": "latent"},
    )  # fmt: skip
    description.set_fold_rows()
    description.set_example(example)
    description.set_title("bench band-gap VAE encoder")
    description.set_creators(["Bench, Mark"])
    description.document["servable"]["options"] = {"memoize": False, "threads": threads}
    build = client.publish_servable(description, wait=True, timeout=1800)
    if build["status"] != "succeeded":
        raise RuntimeError(build["log"])


def main() -> None:
    """Serve, check, time every mode in interleaved rounds, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed rounds")
    parser.add_argument("--images", type=int, default=4000, help="images per batch / call")
    parser.add_argument("--single", type=int, default=200, help="images one call at a time")
    parser.add_argument("--per-task", type=int, default=100, help="images per task (K)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, hub and here")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 1,000 images")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout whose hub is timed in the same rounds"
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.images, args.single = min(args.runs, 3), min(args.images, 1000), 50

    import torch
    from examples.bandgap import models, simulate

    from matterhub import Client

    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-bandgap-"))
    x = simulate.simulate(args.images, 3)["image"].astype(np.float32)
    (work / "model").mkdir()
    hubs: dict[str, tuple[Any, Any]] = {}  # row prefix → (hub process, client)
    results: dict[str, Any] = {"args": {**vars(args), "baseline": str(args.baseline)}}
    results.update(load_average=load, modes={})
    try:
        for prefix, root in [("", ROOT)] + ([("baseline: ", args.baseline)] * bool(args.baseline)):
            (work / prefix.strip(": ")).mkdir(exist_ok=True)
            hub, base, token = start_hub(work / prefix.strip(": "), root=root)
            hubs[prefix] = (hub, Client(base, token, timeout=600.0))
        started = time.perf_counter()
        for _, other in hubs.values():
            publish(other, work / "model", x[:1].tolist(), args.threads)
        print(f"published in {time.perf_counter() - started:.0f} s", flush=True)
        model = models.SpectrumModel("vae", output="latent")
        model.load_state_dict(torch.load(work / "model" / "vae.pt", weights_only=True))
        model.eval()

        def local(images: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return model(torch.from_numpy(images)).numpy()

        reference = local(x)
        one = [x[i : i + 1] for i in range(len(x))]
        k = args.per_task
        chunks = [x[i : i + k] for i in range(0, len(x), k)]
        steps: dict[str, tuple[int, Any]] = {
            "in-process, 1 image a call": (
                args.single,
                lambda: [local(x[i : i + 1]) for i in range(args.single)],
            ),
            "in-process, N images in one call": (len(x), lambda: local(x)),
        }
        for label, inputs in (("1 image", one), (f"{k} images", chunks)):
            for prefix, (_, other) in hubs.items():
                mode = f"{prefix}hub batch, {label} a task, binary"
                answers = through_hub(other, REF, inputs, 1200, True)
                check(mode, np.concatenate([np.asarray(a) for a in answers]), reference, 1e-4)
                steps[mode] = (
                    len(x),
                    lambda o=other, i=inputs: through_hub(o, REF, i, timeout=1200, binary=True),
                )
        times: dict[str, list[float]] = {m: [] for m in steps}
        for r in range(args.runs):
            for mode in list(steps) if r % 2 == 0 else list(steps)[::-1]:
                times[mode].append(timed(steps[mode][1]))
            print(f"round {r + 1}/{args.runs} done", flush=True)
        for mode, (n, _) in steps.items():
            results["modes"][mode] = summary(times[mode], n)
    finally:
        for hub, other in hubs.values():
            other.close()
            stop_hub(hub)
    report(results)
    save_results("bandgap_throughput", results)
    shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, Any]) -> None:
    """The markdown table."""
    args, load = results["args"], results["load_average"]
    print(
        f"\nN = {args['images']} images; {args['runs']} interleaved rounds; one replica, "
        f"{args['threads']} thread(s) there and in-process; load average at start "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n"
    )
    modes = results["modes"]
    print(
        "| mode | images a run | median | p95 | images/s | ms/image | × in-process (N) "
        "| × baseline |"
    )
    print("|---|---|---|---|---|---|---|---|")
    base = modes["in-process, N images in one call"]
    for mode, found in modes.items():
        ratio = found["ms_per_image"] / base["ms_per_image"]
        other = modes.get("baseline: " + mode)
        versus = f"{found['per_s'] / other['per_s']:.2f}" if other else ""
        print(
            f"| {mode} | {found['images']} | {found['median_s'] * 1000:,.1f} ms | "
            f"{found['p95_s'] * 1000:,.1f} ms | {found['per_s']:,.0f} | "
            f"{found['ms_per_image']:.3f} | {ratio:.1f} | {versus} |"
        )


if __name__ == "__main__":
    main()
