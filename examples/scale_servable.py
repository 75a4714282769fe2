"""Scaling with demand: set a servable's replica bounds, drive load, read its workers.

Publishes a small CPU-bound servable (a numpy matrix product, a few milliseconds a call), sets
its bounds (`--min` replicas kept warm, `--max` at most, and the target queue: waiting calls per
replica before the autoscaler adds one), runs it from `--threads` threads for `--seconds`, and
prints the throughput and the workers view: per worker its state, calls, p50/p99 and memory.

    python examples/scale_servable.py --url http://127.0.0.1:8000 --token <your token>

or with MATTERHUB_URL and MATTERHUB_TOKEN set. Only the servable's owner (and administrators)
may read its workers and set its bounds; the hub caps `--max` (`hub_max_replicas`).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from matterhub import Client
from matterhub.client.describe import describe_files
from matterhub.client.errors import ClientError

MODULE = '''"""A CPU-bound servable: a 300 x 300 matrix product (a few ms on one core)."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core per replica
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

A = np.random.default_rng(7).standard_normal((300, 300))


def work(seed: int) -> float:
    """The trace of A times A shifted by `seed` (a different input each call)."""
    return float(np.trace(A @ (A + seed)))
'''


def publish(client: Client, name: str) -> dict[str, Any]:
    """Publish the matrix-product servable (numpy pinned to the version installed here)."""
    with tempfile.TemporaryDirectory() as tmp:
        module = Path(tmp) / "matmul.py"
        module.write_text(MODULE)
        description = describe_files(
            name, "matmul:work", [module], input_type={"type": "integer"},
            output_type={"type": "float"},
        )  # fmt: skip
        description.add_requirement("numpy")
        description.set_title("Matrix product (scaling example)").set_creators(["Example, Owner"])
        description.document["servable"].setdefault("options", {})["memoize"] = False  # no cache
        build: dict[str, Any] = client.publish_servable(description, wait=True, timeout=900)
    return build


def drive(client: Client, ref: str, threads: int, seconds: float) -> tuple[int, float]:
    """Call `ref` from `threads` threads for `seconds`; (runs, elapsed seconds)."""
    counter = itertools.count(1)
    done: list[int] = []
    failed: list[BaseException] = []
    stop_at = time.monotonic() + seconds

    def loop() -> None:
        count = 0
        try:
            while time.monotonic() < stop_at:
                client.run(ref, next(counter), timeout=120)
                count += 1
        except BaseException as exc:  # reported after the join
            failed.append(exc)
        done.append(count)

    began = time.monotonic()
    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if failed:
        raise failed[0]
    return sum(done), time.monotonic() - began


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def show(view: dict[str, Any]) -> None:
    """Print the workers view: the bounds in force, then each running version's workers."""
    b = view["bounds"]
    where = f"hub cap {view['max_replicas_cap']}, executor {view['executor']}"
    print(f"bounds: min {b['min_replicas']}, max {b['max_replicas']}, "
          f"target queue {b['target_queue']} ({where})")  # fmt: skip
    for pool in view["pools"]:
        print(f"version {pool['version']}: {pool['replicas']} replicas (target {pool['target']}), "
              f"{pool['in_flight']} running, {pool['queue_depth']} waiting, "
              f"p50 {_ms(pool['p50_ms'])}, p99 {_ms(pool['p99_ms'])}")  # fmt: skip
        for w in pool["workers"]:
            memory = "-" if w["memory_bytes"] is None else f"{w['memory_bytes'] / 2**20:.1f} MiB"
            print(f"  worker {w['id']}: {w['state']}, {w['calls']} calls, "
                  f"p50 {_ms(w['p50_ms'])}, p99 {_ms(w['p99_ms'])}, {memory}")  # fmt: skip


def main() -> int:
    """Publish, set the bounds, drive load, print the workers view."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("MATTERHUB_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("MATTERHUB_TOKEN"), help="API token")
    parser.add_argument("--name", default="matmul", help="servable name")
    parser.add_argument("--min", type=int, default=1, help="replicas kept warm")
    parser.add_argument("--max", type=int, default=2, help="replicas at most")
    parser.add_argument("--target-queue", type=float, default=0.0,
                        help="waiting calls per replica before another one is added")  # fmt: skip
    parser.add_argument("--threads", type=int, default=4, help="callers driving the load")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to drive it")
    args = parser.parse_args()
    if not args.token:
        parser.error("give --token (or set MATTERHUB_TOKEN): publishing needs a user")

    try:
        with Client(args.url, args.token) as client:
            ref = f"{client.whoami()['username']}/{args.name}"
            build = publish(client, args.name)
            if build["status"] != "succeeded":
                print(build["log"], file=sys.stderr)
                return 1
            print(f"published {ref} version {build['version']}")
            view = client.scale_servable(
                ref, min_replicas=args.min, max_replicas=args.max, target_queue=args.target_queue
            )
            show({**view, "pools": []})
            runs, took = drive(client, ref, args.threads, args.seconds)
            print(f"load: {runs} runs from {args.threads} threads in {took:.1f} s "
                  f"({runs / took:.1f} runs/s)")  # fmt: skip
            show(client.servable_workers(ref))
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
