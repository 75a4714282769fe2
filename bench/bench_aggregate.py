"""Client benchmark: `Forge.aggregate` over 100,000 records through a real `matterhub serve`.

    .venv/bin/python bench/bench_aggregate.py --n 100000

Ingests n public records through the search service in-process (as bench_search.py does), then
starts `matterhub serve` on that data folder and times, over loopback HTTP with the client:
aggregate via the scroll API, aggregate via mdf_toolbox's scroll_id windows (the fallback),
a terms facet and stats. Prints a table and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from matterhub.bootstrap import build_services  # noqa: E402
from matterhub.client import Client, Forge  # noqa: E402
from matterhub.core.identity import SYSTEM_IDENTITY  # noqa: E402
from matterhub.settings import Settings  # noqa: E402

ELEMENTS = ["H", "C", "N", "O", "Fe", "Cu", "Al", "Si", "Ti", "Ni"]
BATCH = 10_000


def records(n: int) -> list[dict[str, Any]]:
    rng = random.Random(42)
    out = []
    for i in range(n):
        elements = sorted(set(rng.sample(ELEMENTS, rng.randint(1, 3))))
        out.append({
            "subject": f"bench.{i + 1}", "visible_to": ["public"],
            "content": {
                "mdf": {"source_name": f"bench_{i % 5}", "source_id": f"bench_{i % 5}_v1.0",
                        "resource_type": "record", "scroll_id": i + 1},
                "material": {"elements": elements}, "band_gap": round(rng.uniform(0, 8), 3),
            },
        })  # fmt: skip
    return out


def ingest(data_dir: Path, n: int) -> float:
    services = build_services(Settings(data_dir=data_dir))
    services.start()
    t0 = time.perf_counter()
    try:
        docs = records(n)
        tasks = []
        for start in range(0, n, BATCH):
            body = {
                "ingest_type": "GMetaList",
                "ingest_data": {"gmeta": docs[start : start + BATCH]},
            }
            tasks.append(services.search.ingest(SYSTEM_IDENTITY, "mdf", body).task_id)
        for task_id in tasks:
            assert services.search.wait(task_id, timeout=3600).state == "SUCCESS"
    finally:
        services.close()
    return time.perf_counter() - t0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--no-windows", action="store_true", help="Skip the scroll_id-window run.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "hub"
        ingest_s = ingest(data_dir, args.n)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MATTERHUB_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "matterhub.cli", "--data-dir", str(data_dir), "serve", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(f"{base}/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            forge = Forge(client=Client(base, timeout=300))
            rows: dict[str, dict[str, Any]] = {}
            seconds, hits = timed(lambda: forge.match_exists("mdf.scroll_id").aggregate())
            assert len({h["mdf"]["scroll_id"] for h in hits}) == args.n, len(hits)
            rows["aggregate (scroll API)"] = {"s": seconds, "hits": len(hits)}
            seconds, hits = timed(lambda: forge.aggregate_sources(["bench_1", "bench_3"]))
            rows["aggregate_sources (2 of 5 datasets)"] = {"s": seconds, "hits": len(hits)}
            if not args.no_windows:
                forge.match_exists("mdf.scroll_id")
                seconds, hits = timed(lambda: forge._windows("mdf.scroll_id", 10_000, args.n))
                forge.reset_query()
                rows["aggregate (scroll_id windows, fallback)"] = {"s": seconds, "hits": len(hits)}
            seconds, counts = timed(lambda: forge.facets("material.elements", size=10))
            rows["facets material.elements (server-side)"] = {
                "s": seconds,
                "hits": sum(counts.values()),
            }
            seconds, stats = timed(lambda: forge.stats("band_gap"))
            rows["stats band_gap (server-side)"] = {"s": seconds, "hits": stats["count"]}
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"\nrecords: {args.n:,}; ingest until searchable: {ingest_s:.1f} s\n")
    print(f"| {'operation':<42} | {'seconds':>8} | {'hits':>8} |")
    print(f"|{'-' * 44}|{'-' * 10}|{'-' * 10}|")
    for name, row in rows.items():
        print(f"| {name:<42} | {row['s']:>8.2f} | {row['hits']:>8,} |")
    out = ROOT / "bench" / "results" / f"aggregate-{args.n}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"n": args.n, "ingest_s": ingest_s, "rows": rows}, indent=2))
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
