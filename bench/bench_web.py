"""Web UI benchmark: server-side render time of the search page at 100,000 records.

    .venv/bin/python bench/bench_web.py                 # 100k records (a few minutes)
    .venv/bin/python bench/bench_web.py --n 20000       # quicker

Data: ../shared/reference/search-baselines/gen_data.py (deterministic, seed 42), indexed into
`mdf` through the search service exactly as bench_search.py does. Each page is requested through
the ASGI app in-process (routing, session, search with five facets, periodic table, template),
so the time is the server's, with no network or browser. Target: median ≤ 150 ms.
Prints a table and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.bench_search import BASELINES, ingest  # noqa: E402

from matterhub.api import create_app  # noqa: E402
from matterhub.bootstrap import build_services  # noqa: E402
from matterhub.settings import Settings  # noqa: E402

TARGET_MS = 150.0
REPEATS = 30
PAGES = [
    ("everything (no query, all facets)", "/search"),
    ("full text 'oxide'", "/search?q=oxide"),
    ("element drill-down Fe + O", "/search?el=Fe&el=O"),
    ("advanced range, page 5", "/search?q=band_gap:%5B1+TO+2%5D&advanced=1&page=5"),
    ("full text + element + source", "/search?q=oxide&el=O&source=src_017"),
]


def measure(client: TestClient, path: str) -> tuple[float, float, int]:
    """(median ms, p95 ms, bytes) of GET path, after one warm-up request."""
    first = client.get(path)
    assert first.status_code == 200, (path, first.status_code, first.text[:300])
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], len(first.content)


def main() -> None:
    """Index n records, then time the search page."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench-web")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / "data.jsonl"
    if not data.exists() or sum(1 for _ in data.open()) < args.n:
        generator = BASELINES / "gen_data.py"
        command = [sys.executable, str(generator), "--n", str(args.n), "--out", str(data)]
        subprocess.run(command, check=True)
    hub_dir = args.work / "hub"
    shutil.rmtree(hub_dir, ignore_errors=True)
    settings = Settings(data_dir=hub_dir)
    services = build_services(settings)
    services.start()
    timing = ingest(services, data, args.n)
    app = create_app(settings, services=services)
    rows: list[dict[str, Any]] = []
    with TestClient(app) as client:
        for label, path in PAGES:
            p50, p95, size = measure(client, path)
            rows.append({"page": label, "path": path, "p50_ms": p50, "p95_ms": p95, "bytes": size})
    services.close()

    print(f"\nsearch page render at {args.n:,} records (server-side, in-process, {REPEATS} runs)")
    print(f"{'page':40} {'median ms':>10} {'p95 ms':>8} {'KiB':>6}  target ≤ {TARGET_MS:.0f} ms")
    for row in rows:
        ok = "ok" if row["p50_ms"] <= TARGET_MS else "OVER"
        print(
            f"{row['page']:40} {row['p50_ms']:10.1f} {row['p95_ms']:8.1f} "
            f"{row['bytes'] / 1024:6.0f}  {ok}"
        )
    print(f"(indexed in {timing['searchable_s']:.0f} s)")
    out = ROOT / "bench" / "results" / "bench_web.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"n": args.n, "target_ms": TARGET_MS, "pages": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
