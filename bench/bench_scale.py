"""Scaling benchmark: a CPU-bound servable at 1, 2, 4 fixed replicas and autoscaled, vs FastAPI.

    .venv/bin/python bench/bench_scale.py                 # about 3 minutes on 2 cores
    .venv/bin/python bench/bench_scale.py --rounds 1      # quicker

Starts a real `matterhub serve` (SQLite, bubblewrap sandbox when installed, the autoscaler on
with its default interval) on loopback, publishes `alice/matmul` — a 480 x 480 numpy matrix
product, about 5 ms on one core, BLAS held to one thread, memoization off so every call computes —
(builds use the test cache ~/.cache/matterhub-tests/hub) and, with 8 concurrent keep-alive HTTP
clients, measures runs/s and p50/p99 latency:
- with the replica bounds fixed at 1, 2 and 4 (`min_replicas = max_replicas`, workers warm);
- with the autoscaler: bounds min 1, max 4, target queue 1, from one warm worker; the time from
  the load starting until the throughput over the last second reaches 0.8 x the best fixed
  setting (issue #15's target: within 5 s) and the replicas it reached;
- a bare FastAPI app doing the same product in an `async def` endpoint (one call at a time per
  process, as a worker) under `uvicorn --workers N` for N = 1, 2, 4: the ceiling of this stack
  with the same number of processes.
The settings run in `--rounds` interleaved rounds (each round: hub 1, 2, 4, autoscaled, then
FastAPI 1, 2, 4) and the table shows per-setting medians, so a busy spell on a shared machine
hits every setting alike. Writes bench/results/scale.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import http.client
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
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
PY = sys.executable
CACHE = Path.home() / ".cache" / "matterhub-tests" / "hub"
CLIENTS = 8
SIZE = 480
STEADY_FROM_S = 2.0
AUTO = {"min_replicas": 1, "max_replicas": 4, "target_queue": 1.0}

WORK = f'''
"""A CPU-bound servable: a {SIZE} x {SIZE} matrix product (about 5 ms on one core)."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

A = np.random.default_rng(7).standard_normal(({SIZE}, {SIZE}))


def work(seed: int) -> float:
    """The trace of A times (A + seed)."""
    return float(np.trace(A @ (A + seed)))
'''

BARE_APP = """
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from matmul import work

app = FastAPI()


@app.post("/run")
async def run(request: Request):
    body = orjson.loads(await request.body())
    return Response(orjson.dumps(work(body["inputs"])), media_type="application/json")


@app.get("/health")
async def health():
    return {"ok": True}
"""


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(port: int, path: str, timeout: float = 120.0) -> None:
    """Until GET `path` answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answered on port {port}")


def request(port: int, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    """One request's JSON (raises on an error status)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    data = None if body is None else json.dumps(body).encode()
    conn.request(method, path, data, headers)
    response = conn.getresponse()
    payload = json.loads(response.read())
    if response.status >= 400:
        raise SystemExit(f"{method} {path}: {response.status} {payload}")
    return payload


def load(port: int, path: str, seconds: float, *, warm: bool = True) -> dict[str, Any]:
    """`CLIENTS` threads POSTing on keep-alive connections for `seconds`.

    `warm`: 10 calls per client before the clock starts; else only the connection is opened
    (GET /health), so the servable sees the load start at once (the autoscaled run).
    """
    data = json.dumps({"inputs": 1}).encode()
    headers = {"Content-Type": "application/json"}
    done: list[list[tuple[float, float]]] = [[] for _ in range(CLIENTS)]  # (end, latency)
    errors = [0]
    stop_at = [0.0]
    barrier = threading.Barrier(CLIENTS + 1)

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(10 if warm else 1):
            conn.request(*(("POST", path, data, headers) if warm else ("GET", "/health")))
            conn.getresponse().read()
        barrier.wait()
        mine = done[i]
        while time.perf_counter() < stop_at[0]:
            start = time.perf_counter()
            conn.request("POST", path, data, headers)
            response = conn.getresponse()
            response.read()
            end = time.perf_counter()
            mine.append((end, end - start))
            if response.status != 200:
                errors[0] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds + 120  # provisional, reset after warm-up
    barrier.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for t in threads:
        t.join()
    took = time.perf_counter() - began
    every = sorted(lat for mine in done for _, lat in mine)
    return {
        "runs": len(every),
        "runs_per_s": round(len(every) / took, 1),
        "p50_ms": round(statistics.median(every) * 1000, 2),
        "p99_ms": round(every[max(0, int(len(every) * 0.99) - 1)] * 1000, 2),
        "errors": errors[0],
        "ends": sorted(end - began for mine in done for end, _ in mine),
    }


def time_to(ends: list[float], goal: float, window: float = 1.0) -> float | None:
    """Seconds from the start until the runs/s over the last `window` reach `goal`."""
    lo = 0
    for hi, end in enumerate(ends):
        while ends[lo] < end - window:
            lo += 1
        if end >= window and (hi - lo + 1) / window >= goal:
            return round(end, 2)
    return None


def wait_replicas(port: int, token: str, count: int, timeout: float = 120.0) -> None:
    """Until the servable has `count` live workers (none starting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pools = request(port, "GET", "/api/servables/alice/matmul/workers", token=token)["pools"]
        workers = pools[0]["workers"] if pools else []
        if len(workers) == count and all(w["state"] != "starting" for w in workers):
            return
        time.sleep(0.2)
    raise SystemExit(f"the pool did not reach {count} workers")


def publish(work: Path, port: int, token: str) -> None:
    """Publish alice/matmul (numpy pinned to this venv's, memo off) and wait for its build."""
    from matterhub.client import Client
    from matterhub.client.describe import describe_files

    module = work / "matmul.py"
    module.write_text(WORK)
    description = describe_files(
        "matmul", "matmul:work", [module], input_type={"type": "integer"},
        output_type={"type": "float"},
    )  # fmt: skip
    description.add_requirement("numpy").set_title("Matrix product").set_creators(["Doe, Jane"])
    description.document["servable"].setdefault("options", {})["memoize"] = False
    with Client(f"http://127.0.0.1:{port}", token, retries=0) as client:
        build = client.publish_servable(description, wait=True, timeout=900)
    assert build["status"] == "succeeded", build["log"]


def sample_replicas(port: int, token: str, stop: threading.Event, into: list[tuple[float, int]]):
    """Record (seconds, replicas) every 0.25 s until `stop`."""
    began = time.perf_counter()
    while not stop.is_set():
        pools = request(port, "GET", "/api/servables/alice/matmul/workers", token=token)["pools"]
        into.append((round(time.perf_counter() - began, 2), pools[0]["replicas"] if pools else 0))
        stop.wait(0.25)


def main() -> None:
    """Run every setting once and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0, help="per fixed setting")
    parser.add_argument("--autoscaled-seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    env = {
        **os.environ,
        "MATTERHUB_DATA_DIR": str(work / "data"),
        "MATTERHUB_HUB_CACHE_DIR": str(CACHE),
        "MATTERHUB_LOG_LEVEL": "warning",
        "MATTERHUB_HUB_MAX_REPLICAS": "4",
    }
    token = (
        subprocess.run(
            [
                PY,
                "-c",
                textwrap.dedent("""
            from matterhub.bootstrap import build_services
            from matterhub.settings import Settings
            from matterhub.core.identity import SYSTEM_IDENTITY
            s = build_services(Settings())
            s.accounts.create_user(SYSTEM_IDENTITY, "alice")
            print(s.accounts.create_token(SYSTEM_IDENTITY, "alice").token)
            s.close()
        """),
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    results: dict[str, Any] = {
        "clients": CLIENTS, "seconds": args.seconds, "size": SIZE, "rounds": args.rounds,
    }  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {}
    port = free_port()
    hub = subprocess.Popen(
        [str(Path(PY).parent / "matterhub"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    (work / "bare.py").write_text(BARE_APP)
    try:
        wait_http(port, "/health")
        publish(work, port, token)
        for _ in range(args.rounds):  # interleaved, so a busy spell hits every setting alike
            for key, row in hub_round(port, token, args).items():
                runs.setdefault(key, []).append(row)
            for n in (1, 2, 4):
                runs.setdefault(f"fastapi_{n}", []).append(bare_run(work, n, args.seconds))
    finally:
        os.killpg(hub.pid, signal.SIGINT)
        hub.wait(30)
    for key, rows in runs.items():
        results[key] = {
            name: statistics.median(row[name] for row in rows)
            for name in ("runs_per_s", "p50_ms", "p99_ms")
        } | {"errors": sum(row["errors"] for row in rows), "runs": sum(r["runs"] for r in rows)}
    best = max(results[f"hub_{n}"]["runs_per_s"] for n in (1, 2, 4))
    results["best_fixed_runs_per_s"] = best
    reached = [time_to(row["ends"], 0.8 * best) for row in runs["hub_auto"]]
    results["auto_time_to_0_8_s"] = reached
    results["auto_replicas"] = [row["replicas"] for row in runs["hub_auto"]]
    after = args.autoscaled_seconds - STEADY_FROM_S  # once the ramp-up is over
    results["auto_steady_runs_per_s"] = statistics.median(
        sum(1 for end in row["ends"] if end >= STEADY_FROM_S) / after for row in runs["hub_auto"]
    )
    report(results)
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "scale.json").write_text(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)


def hub_round(port: int, token: str, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """One pass over the hub's settings: 1, 2, 4 fixed replicas, then autoscaled from one."""
    path = "/servables/alice/matmul/run"
    scaling = "/api/servables/alice/matmul/scaling"
    out = {}
    for n in (1, 2, 4):
        request(port, "PUT", scaling, {"min_replicas": n, "max_replicas": n}, token)
        wait_replicas(port, token, n)
        out[f"hub_{n}"] = load(port, path, args.seconds)
    request(port, "PUT", scaling, {"min_replicas": 1, "max_replicas": 1}, token)
    wait_replicas(port, token, 1)
    request(port, "PUT", scaling, AUTO, token)
    replicas: list[tuple[float, int]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_replicas, args=(port, token, stop, replicas))
    sampler.start()
    try:
        out["hub_auto"] = load(port, path, args.autoscaled_seconds, warm=False)
    finally:
        stop.set()
        sampler.join()
    out["hub_auto"]["replicas"] = replicas
    return out


def bare_run(work: Path, n: int, seconds: float) -> dict[str, Any]:
    """The same work under `uvicorn --workers n`."""
    bare_port = free_port()
    bare = subprocess.Popen(
        [PY, "-m", "uvicorn", "bare:app", "--host", "127.0.0.1", "--port", str(bare_port),
         "--workers", str(n), "--log-level", "warning", "--no-access-log"],
        cwd=work, env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_http(bare_port, "/health")
        time.sleep(1.0 if n > 1 else 0.0)  # every worker process up
        return load(bare_port, "/run", seconds)
    finally:
        os.killpg(bare.pid, signal.SIGINT)
        bare.wait(30)


def report(r: dict[str, Any]) -> None:
    """The markdown table: each setting, the FastAPI ceiling beside it, and the autoscaler."""
    auto = r["hub_auto"]
    print(
        f"\n{r['clients']} concurrent clients on loopback HTTP; medians of {r['rounds']} "
        f"interleaved rounds, {r['seconds']} s per fixed row; servable: {r['size']}x{r['size']} "
        f"numpy matrix product, BLAS on one thread; {os.cpu_count()} cores\n"
    )
    print("| setting | hub runs/s | hub p50 ms | hub p99 ms | FastAPI runs/s | FastAPI p50 ms "
          "| FastAPI p99 ms | hub / FastAPI |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in (1, 2, 4):
        h, f = r[f"hub_{n}"], r[f"fastapi_{n}"]
        print(
            f"| {n} replica{'s' if n > 1 else ''} / process{'es' if n > 1 else ''} "
            f"| {h['runs_per_s']:.0f} | {h['p50_ms']:.1f} | {h['p99_ms']:.1f} "
            f"| {f['runs_per_s']:.0f} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} "
            f"| {h['runs_per_s'] / f['runs_per_s']:.2f} |"
        )
    best_bare = max(r[f"fastapi_{n}"]["runs_per_s"] for n in (1, 2, 4))
    print(
        f"| autoscaled (min 1, max 4, queue 1), from 1 warm worker | {auto['runs_per_s']:.0f} "
        f"| {auto['p50_ms']:.1f} | {auto['p99_ms']:.1f} | {best_bare:.0f} (best N) | | "
        f"| {auto['runs_per_s'] / best_bare:.2f} |"
    )
    reached = r["auto_time_to_0_8_s"]
    peaks = []
    for series in r["auto_replicas"]:
        peak = max((n for _, n in series), default=0)
        peaks.append((peak, next((t for t, n in series if n == peak), None)))
    errors = sum(r[k]["errors"] for k in r if isinstance(r[k], dict) and "errors" in r[k])
    print(
        f"\nautoscaled throughput (whole run, ramp-up included) / best fixed "
        f"({r['best_fixed_runs_per_s']:.0f} runs/s): "
        f"{auto['runs_per_s'] / r['best_fixed_runs_per_s']:.2f}, after {STEADY_FROM_S:g} s: "
        f"{r['auto_steady_runs_per_s'] / r['best_fixed_runs_per_s']:.2f}; time to >= 0.8 x best fixed "
        f"(1 s window) per round: {', '.join('never' if t is None else f'{t} s' for t in reached)}"
        f" (target <= 5 s); replicas reached per round: "
        f"{', '.join(f'{p} at {t} s' for p, t in peaks)}; errors {errors}"
    )


if __name__ == "__main__":
    main()
