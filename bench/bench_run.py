"""Run benchmark: warm servables over HTTP vs a bare FastAPI endpoint vs Ray Serve, same run.

    .venv/bin/python bench/bench_run.py                  # about 3 minutes on 2 cores
    .venv/bin/python bench/bench_run.py --seconds 3      # quicker

Starts a real `matterhub serve` (SQLite, bubblewrap sandbox when installed) on loopback,
publishes a no-op function servable and a scikit-learn regressor (builds use the test cache
~/.cache/matterhub-tests/hub), then, with 8 concurrent keep-alive HTTP clients, measures p50/p99
latency and runs/s for: the hub (`POST /servables/<owner>/<name>/run`, anonymous, public
servables, memoization off so every call reaches the worker), (a) a bare FastAPI app served by
uvicorn that calls the same functions in-process (the ceiling of this stack), and (b) a Ray Serve
deployment of the same functions (the peer). Also: a 10,000-task async batch (distinct inputs),
the server time of a memoized hit (Server-Timing), and the sklearn servable's cold start (first
call on a fresh server, which starts the worker). Targets from issue #8 are printed alongside.
Writes bench/results/run.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pickle
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
X = [[0.5, 1.5]]

NOOP = '''
def noop(x: int) -> int:
    """Return the input."""
    return x
'''

BARE_APP = """
import pickle, sys
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response
import orjson

app = FastAPI()
model = pickle.load(open(sys.argv[1], "rb"))

def noop(x):
    return x

@app.post("/noop")
async def run_noop(request: Request):
    body = orjson.loads(await request.body())
    return Response(orjson.dumps(noop(body["inputs"])), media_type="application/json")

@app.post("/sklearn")
async def run_sklearn(request: Request):
    body = orjson.loads(await request.body())
    out = model.predict(np.asarray(body["inputs"])).tolist()
    return Response(orjson.dumps(out), media_type="application/json")

if __name__ == "__main__":
    import uvicorn
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
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


def load(port: int, path: str, body: Any, seconds: float, clients: int = CLIENTS) -> dict[str, Any]:
    """`clients` threads POSTing `body` on keep-alive connections for `seconds`."""
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0]
    stop_at = [0.0]
    barrier = threading.Barrier(clients + 1)

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(20):  # warm the connection and the worker
            conn.request("POST", path, data, headers)
            conn.getresponse().read()
        barrier.wait()
        mine = latencies[i]
        while time.perf_counter() < stop_at[0]:
            start = time.perf_counter()
            conn.request("POST", path, data, headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                errors[0] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds + 60  # provisional, reset after warm-up
    barrier.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for t in threads:
        t.join()
    took = time.perf_counter() - began
    every = sorted(x for lat in latencies for x in lat)
    return {
        "runs": len(every),
        "runs_per_s": round(len(every) / took, 1),
        "p50_ms": round(statistics.median(every) * 1000, 3),
        "p99_ms": round(every[int(len(every) * 0.99) - 1] * 1000, 3),
        "errors": errors[0],
    }


def post(port: int, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
    """One POST: status, JSON body, headers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read()), dict(response.getheaders())


def get(port: int, path: str) -> Any:
    """One GET's JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path)
    return json.loads(conn.getresponse().read())


def publish(work: Path, port: int, token: str) -> Path:
    """Publish alice/noop and alice/regressor (memo off) and wait for both builds."""
    import numpy as np
    from sklearn.linear_model import LinearRegression

    from matterhub.client import Client
    from matterhub.client.describe import describe_function, describe_sklearn

    src = work / "src"
    src.mkdir()
    (src / "noopmod.py").write_text(textwrap.dedent(NOOP))
    sys.path.insert(0, str(src))
    import noopmod  # type: ignore[import-not-found]

    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 5.0]])
    model = LinearRegression().fit(x, x @ [2.0, -1.0] + 0.5)
    pkl = src / "regressor.pkl"
    pkl.write_bytes(pickle.dumps(model))
    noop = describe_function(noopmod.noop, "noop").set_example(1, 1)
    reg = describe_sklearn(pkl, "regressor").set_example(x[:2].tolist())
    client = Client(f"http://127.0.0.1:{port}", token, retries=0)
    for description, title in ((noop, "No-op"), (reg, "Regressor")):
        description.set_title(title).set_creators(["Doe, Jane"])
        description.document["servable"]["options"] = {"memoize": False}
        build = client.publish_servable(description, wait=True, timeout=900)
        assert build["status"] == "succeeded", build["log"]
    return pkl


def bench_async(port: int, n: int) -> dict[str, Any]:
    """Submit `n` distinct no-op runs as one batch; time until all are done."""
    start = time.perf_counter()
    status, queued, _ = post(port, "/api/servables/alice/noop/batch", {"inputs": list(range(n))})
    assert status == 202, queued
    submitted = time.perf_counter() - start
    while True:
        found = get(port, f"/api/batches/{queued['batch_id']}")
        if found["done"]:
            break
        time.sleep(0.25)
    took = time.perf_counter() - start
    return {
        "tasks": n,
        "submit_s": round(submitted, 3),
        "total_s": round(took, 3),
        "tasks_per_s": round(n / took, 1),
        "counts": found["counts"],
    }


def ray_serve(pkl: Path, port: int) -> Any:
    """Start Ray and a Ray Serve app with /noop and /sklearn routes on `port`."""
    import numpy as np
    import ray
    from ray import serve
    from starlette.requests import Request

    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})

    @serve.deployment(num_replicas=1)
    class Noop:
        async def __call__(self, request: Request) -> Any:
            return (await request.json())["inputs"]

    @serve.deployment(num_replicas=1)
    class Regressor:
        def __init__(self, path: str) -> None:
            with open(path, "rb") as handle:
                self.model = pickle.load(handle)

        async def __call__(self, request: Request) -> Any:
            body = await request.json()
            return self.model.predict(np.asarray(body["inputs"])).tolist()

    serve.run(Noop.bind(), name="noop", route_prefix="/noop")
    serve.run(Regressor.bind(str(pkl)), name="sklearn", route_prefix="/sklearn")
    return ray, serve


def main() -> None:
    """Run every scenario once and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-run-"))
    data = work / "data"
    env = {
        **os.environ,
        "MATTERHUB_DATA_DIR": str(data),
        "MATTERHUB_HUB_CACHE_DIR": str(CACHE),
        "MATTERHUB_LOG_LEVEL": "warning",
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
    results: dict[str, Any] = {"clients": CLIENTS, "seconds": args.seconds}
    hub_port = free_port()

    def serve_hub() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [str(Path(PY).parent / "matterhub"), "serve", "--port", str(hub_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_http(hub_port, "/health")
        return proc

    hub = serve_hub()
    try:
        pkl = publish(work, hub_port, token)
    finally:
        os.killpg(hub.pid, signal.SIGINT)
        hub.wait(30)
    hub = serve_hub()  # fresh: no worker is warm
    try:
        start = time.perf_counter()
        status, out, _ = post(hub_port, "/servables/alice/regressor/run", {"inputs": X})
        cold = time.perf_counter() - start
        assert status == 200, out
        start = time.perf_counter()
        post(hub_port, "/servables/alice/regressor/run", {"inputs": X})
        warm_one = time.perf_counter() - start
        results["sklearn_cold_start_s"] = round(cold, 3)
        results["sklearn_first_warm_call_s"] = round(warm_one, 4)
        results["hub_noop"] = load(
            hub_port, "/servables/alice/noop/run", {"inputs": 1}, args.seconds
        )
        results["hub_sklearn"] = load(
            hub_port, "/servables/alice/regressor/run", {"inputs": X}, args.seconds
        )
        results["async"] = bench_async(hub_port, args.tasks)
        # Memoization on: republishing would rebuild; the memo path is measured on a second
        # servable document that keeps the default (memoize on).
        results["memo"] = memo_hits(work, hub_port, token)
    finally:
        os.killpg(hub.pid, signal.SIGINT)
        hub.wait(30)
    bare_port = free_port()
    (work / "bare.py").write_text(textwrap.dedent(BARE_APP))
    bare = subprocess.Popen(
        [PY, str(work / "bare.py"), str(pkl), str(bare_port)], start_new_session=True
    )
    try:
        wait_http(bare_port, "/docs")
        results["fastapi_noop"] = load(bare_port, "/noop", {"inputs": 1}, args.seconds)
        results["fastapi_sklearn"] = load(bare_port, "/sklearn", {"inputs": X}, args.seconds)
    finally:
        os.killpg(bare.pid, signal.SIGINT)
        bare.wait(30)
    if not args.no_ray:
        ray_port = free_port()
        ray, serve = ray_serve(pkl, ray_port)
        try:
            results["ray_noop"] = load(ray_port, "/noop", {"inputs": 1}, args.seconds)
            results["ray_sklearn"] = load(ray_port, "/sklearn", {"inputs": X}, args.seconds)
        finally:
            serve.shutdown()
            ray.shutdown()
    report(results)
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "run.json").write_text(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)


def memo_hits(work: Path, port: int, token: str) -> dict[str, Any]:
    """Publish `alice/memo` (memoize on, the default) and time hits on it."""
    from matterhub.client import Client
    from matterhub.client.describe import describe_function

    sys.path.insert(0, str(work / "src"))
    import noopmod

    description = describe_function(noopmod.noop, "memo").set_example(1, 1)
    description.set_title("Memo").set_creators(["Doe, Jane"])
    client = Client(f"http://127.0.0.1:{port}", token, retries=0)
    build = client.publish_servable(description, wait=True, timeout=600)
    assert build["status"] == "succeeded", build["log"]
    path = "/api/servables/alice/memo/run"
    post(port, path, {"inputs": 424242})
    server, wall = [], []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"inputs": 424242}).encode()
    for _ in range(300):
        start = time.perf_counter()
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = json.loads(response.read())
        wall.append(time.perf_counter() - start)
        if payload.get("cached"):
            server.append(float(str(response.getheader("Server-Timing")).split("dur=")[1]))
    return {
        "hits": len(server),
        "server_p50_ms": round(statistics.median(server), 4) if server else None,
        "http_p50_ms": round(statistics.median(wall) * 1000, 3),
    }


def report(r: dict[str, Any]) -> None:
    """The table, with ratios to the bare FastAPI ceiling and to Ray Serve."""
    print(f"\n{CLIENTS} concurrent clients, {r['seconds']} s per row, loopback HTTP\n")
    print(f"{'':28} {'p50 ms':>8} {'p99 ms':>8} {'runs/s':>9} {'errors':>7}")
    for key in (
        "hub_noop",
        "fastapi_noop",
        "ray_noop",
        "hub_sklearn",
        "fastapi_sklearn",
        "ray_sklearn",
    ):
        if key in r:
            row = r[key]
            print(
                f"{key:28} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['runs_per_s']:9.0f} "
                f"{row['errors']:7d}"
            )
    for kind in ("noop", "sklearn"):
        hub = r[f"hub_{kind}"]["runs_per_s"]
        bare = r[f"fastapi_{kind}"]["runs_per_s"]
        line = f"{kind}: hub/fastapi throughput {hub / bare:.2f}"
        if f"ray_{kind}" in r:
            line += f", hub/ray-serve throughput {hub / r[f'ray_{kind}']['runs_per_s']:.2f}"
        print(line)
    a, m = r["async"], r["memo"]
    print(
        f"async batch: {a['tasks']} tasks in {a['total_s']} s = {a['tasks_per_s']}/s "
        f"(submit {a['submit_s']} s) {a['counts']}   target >= 1000/s"
    )
    print(
        f"memo hit: server p50 {m['server_p50_ms']} ms, HTTP p50 {m['http_p50_ms']} ms"
        "   target <= 1 ms server"
    )
    print(
        f"sklearn cold start: {r['sklearn_cold_start_s']} s (first call on a fresh server), "
        f"next call {r['sklearn_first_warm_call_s']} s   target <= 3 s"
    )
    print(
        f"targets: hub no-op p50 <= 3 ms: {r['hub_noop']['p50_ms']} ms; >= 800 runs/s: "
        f"{r['hub_noop']['runs_per_s']}"
    )


if __name__ == "__main__":
    main()
