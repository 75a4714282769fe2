"""Discover benchmark: MatterHub's search service and HTTP API at a million records, side by side
with the SQLite FTS5 and PostgreSQL baselines run on the same data in the same run.

    .venv/bin/python bench/bench_search.py --n 1000000          # everything (about 15 minutes)
    .venv/bin/python bench/bench_search.py --n 100000 --no-baselines

Data: ../shared/reference/search-baselines/gen_data.py (deterministic, seed 42). Baselines: that
folder's bench_sqlite.py and bench_postgres.py, run unmodified as subprocesses (PostgreSQL in a
throwaway cluster from scripts/pg-test-cluster.sh). Prints a table and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ROOT.parent / "shared" / "reference" / "search-baselines"
sys.path.insert(0, str(ROOT / "src"))

from matterhub.bootstrap import build_services  # noqa: E402
from matterhub.core.identity import ANONYMOUS, SYSTEM_IDENTITY  # noqa: E402
from matterhub.core.search import GFacet, GSearchRequest  # noqa: E402
from matterhub.settings import Settings  # noqa: E402

REPEATS = 30
# Queries also timed anonymously in-process and over HTTP: the difference is the API's cost.
HTTP_KEYS = ("fulltext", "field", "range", "fuzzy", "prefix", "facet")
BATCH = 10_000
# (key, label, target p50 ms, request, identity) — labels follow the baseline scripts' rows.
TARGETS = {
    "fulltext": 2.0, "field": 1.0, "range": 10.0, "fuzzy": 3.0, "prefix": 2.0, "acl": 5.0, "facet": 60.0,
}  # fmt: skip


def du_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def timed(fn: Any, repeats: int = REPEATS) -> tuple[float, float, Any]:
    result = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], result


def field_value(data: Path) -> str:
    with data.open() as handle:
        for line in handle:
            name = json.loads(line)["content"]["mdf"]["source_name"]
            if name.startswith("src_017_"):
                return name
    raise SystemExit("no src_017_ source in the data")


def ingest(services: Any, data: Path, n: int) -> dict[str, float]:
    t0 = time.perf_counter()
    tasks = []
    batch: list[dict[str, Any]] = []
    with data.open() as handle:
        for i, line in enumerate(handle):
            if i >= n:
                break
            batch.append(orjson.loads(line))
            if len(batch) == BATCH:
                body = {"ingest_type": "GMetaList", "ingest_data": {"gmeta": batch}}
                tasks.append(services.search.ingest(SYSTEM_IDENTITY, "mdf", body).task_id)
                batch = []
    if batch:
        body = {"ingest_type": "GMetaList", "ingest_data": {"gmeta": batch}}
        tasks.append(services.search.ingest(SYSTEM_IDENTITY, "mdf", body).task_id)
    acknowledged = time.perf_counter() - t0
    for task_id in tasks:
        state = services.search.wait(task_id, timeout=3600).state
        assert state == "SUCCESS", state
    return {"acknowledged_s": acknowledged, "searchable_s": time.perf_counter() - t0}


def queries(src: str) -> list[tuple[str, str, GSearchRequest, Any]]:
    half = "band_gap:[0 TO 4]"
    return [
        ("fulltext", "full-text term 'oxide'", GSearchRequest(q="oxide"), SYSTEM_IDENTITY),
        ("field", f"field mdf.source_name={src}", GSearchRequest(q=f"mdf.source_name:{src}", advanced=True), SYSTEM_IDENTITY),
        ("field_text", "field text dc.titles.title:oxide", GSearchRequest(q="dc.titles.title:oxide", advanced=True), SYSTEM_IDENTITY),
        ("range", "range band_gap:[1.5 TO 2.5]", GSearchRequest(q="band_gap:[1.5 TO 2.5]", advanced=True), SYSTEM_IDENTITY),
        ("date", "date range 2010..2012", GSearchRequest(q="date:[2010-01-01T00:00:00Z TO 2012-12-31T23:59:59Z]", advanced=True), SYSTEM_IDENTITY),
        ("fuzzy", "fuzzy 'oxdie'~1", GSearchRequest(q="oxdie~1", advanced=True), SYSTEM_IDENTITY),
        ("prefix", "wildcard 'nitr*'", GSearchRequest(q="nitr*", advanced=True), SYSTEM_IDENTITY),
        ("infix", "wildcard '*ride' (leading)", GSearchRequest(q="*ride", advanced=True), SYSTEM_IDENTITY),
        ("acl", "full-text 'oxide' + visible_to (anonymous)", GSearchRequest(q="oxide"), ANONYMOUS),
        ("facet", "terms facet elements top20 on ~50%", GSearchRequest(q=half, advanced=True, limit=0, facets=[GFacet(field_name="material.elements", size=20)]), SYSTEM_IDENTITY),
        ("sort", "sort ~50% by band_gap desc, top10", GSearchRequest(q=half, advanced=True, sort=[{"field_name": "band_gap", "order": "desc"}]), SYSTEM_IDENTITY),
        ("count", "match_all count", GSearchRequest(q="*", advanced=True, limit=0), SYSTEM_IDENTITY),
    ]  # fmt: skip


def run_ours(services: Any, src: str) -> dict[str, dict[str, Any]]:
    rows = {}
    for key, label, request, who in queries(src):
        p50, p95, page = timed(lambda r=request, w=who: services.search.search(w, "mdf", r))
        top = page.facets[0]["buckets"][0] if page.facets else None
        rows[key] = {"label": label, "p50": p50, "p95": p95, "hits": page.total, "top": top}
        if key in HTTP_KEYS:
            anon, _p95, _page = timed(lambda r=request: services.search.search(ANONYMOUS, "mdf", r))
            rows[key]["anonymous_p50"] = anon
    return rows


def run_http(data_dir: Path, src: str) -> dict[str, dict[str, float]]:
    """The same searches over loopback HTTP against `matterhub serve`; overhead = HTTP - service."""
    port = 8765
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
        out = {}
        # A lean keep-alive client, so the figure is the server's cost rather than the client's.
        # Over HTTP the caller is anonymous, so compare with the anonymous (ACL-filtered) rows.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for key, _label, request, _who in queries(src):
            if key not in HTTP_KEYS:
                continue
            body = json.dumps(request.model_dump(exclude_defaults=True))

            def call(b: str = body) -> int:
                conn.request(
                    "POST", "/v1/index/mdf/search", b, {"Content-Type": "application/json"}
                )
                response = conn.getresponse()
                response.read()
                assert response.status == 200, response.status
                return response.status

            p50, p95, _ = timed(call)
            out[key] = {"p50": p50, "p95": p95}
        conn.close()
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


_LINE = re.compile(r"^(.*?)\s+([\d.]+) ms\s+(.*)$")


def parse_baseline(text: str) -> list[tuple[str, float, str]]:
    rows = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            rows.append((m.group(1).strip(), float(m.group(2)), m.group(3)))
    return rows


BASELINE_KEYS = {
    "fulltext": r"^full-text term 'oxide'",
    "field": r"^field (mdf\.)?source_name=.*(expression index|GIN)",
    "range": r"^range band_gap:\[1\.5 TO 2\.5\] \(expression",
    "date": r"^date range",
    "fuzzy": r"^fuzzy",
    "prefix": r"^wildcard 'nitr\*'",
    "infix": r"^wildcard '\*ride'",
    "acl": r"^full-text 'oxide' \+ visible_to",
    "facet": r"^terms facet",
    "count": r"^match_all count",
}


def run_baselines(data: Path, work: Path, n: int) -> dict[str, dict[str, tuple[float, str]]]:
    out: dict[str, dict[str, tuple[float, str]]] = {}
    db = work / "sqlite.db"
    db.unlink(missing_ok=True)
    sqlite = subprocess.run(
        [sys.executable, str(BASELINES / "bench_sqlite.py"), "--data", str(data), "--db", str(db), "--n", str(n)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out["sqlite"] = _match(parse_baseline(sqlite.stdout))
    # The same tuning as the reference baseline run (search-baselines/README.md).
    tuning = (
        "-c shared_buffers=2GB -c work_mem=256MB -c maintenance_work_mem=2GB "
        "-c max_parallel_workers_per_gather=2 -c synchronous_commit=off"
    )
    pg_dir = subprocess.run(
        [str(ROOT / "scripts" / "pg-test-cluster.sh"), "start"],
        env={**os.environ, "PG_OPTIONS": tuning},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        dsn = f"host={pg_dir} user=postgres dbname=postgres"
        pg = subprocess.run(
            [sys.executable, str(BASELINES / "bench_postgres.py"), "--data", str(data), "--dsn", dsn, "--n", str(n)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        out["postgres"] = _match(parse_baseline(pg.stdout))
    finally:
        subprocess.run([str(ROOT / "scripts" / "pg-test-cluster.sh"), "stop", pg_dir], check=False)
    return out


def _match(rows: list[tuple[str, float, str]]) -> dict[str, tuple[float, str]]:
    found = {}
    for key, pattern in BASELINE_KEYS.items():
        for label, ms, result in rows:
            if re.search(pattern, label):
                found[key] = (ms, result)
                break
    return found


class PeakRSS:
    """Samples this process's resident set while a phase runs."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        self.peak = max(self.peak, int(line.split()[1]) * 1024)
            time.sleep(0.1)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/matterhub-bench-search"))
    ap.add_argument("--no-baselines", action="store_true")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / "data.jsonl"
    if not data.exists() or sum(1 for _ in data.open()) < args.n:
        subprocess.run(
            [
                sys.executable,
                str(BASELINES / "gen_data.py"),
                "--n",
                str(args.n),
                "--out",
                str(data),
            ],
            check=True,
        )
    hub_dir = args.work / "hub"
    shutil.rmtree(hub_dir, ignore_errors=True)
    services = build_services(Settings(data_dir=hub_dir))
    services.start()
    with PeakRSS() as rss:
        timing = ingest(services, data, args.n)
    index_mib = du_mib(hub_dir / "index")
    catalog_mib = du_mib(hub_dir) - index_mib
    src = field_value(data)
    ours = run_ours(services, src)
    services.close()
    http = run_http(hub_dir, src)
    baselines = {} if args.no_baselines else run_baselines(data, args.work, args.n)

    print(
        f"\nMatterHub Discover benchmark — {args.n:,} records, median of {REPEATS} warm runs (ms)\n"
    )
    head = f"{'query':<44} {'hits':>9} {'p50':>8} {'p95':>8} {'target':>7} {'HTTP anon':>9}"
    for engine in baselines:
        head += f" {engine:>9} {'×':>6}"
    print(head)
    print("-" * len(head))
    for key, row in ours.items():
        line = f"{row['label']:<44} {row['hits']:>9,} {row['p50']:>8.2f} {row['p95']:>8.2f}"
        line += f" {TARGETS.get(key, float('nan')):>7.0f}" if key in TARGETS else f" {'':>7}"
        line += f" {http[key]['p50']:>9.2f}" if key in http else f" {'':>9}"
        for found in baselines.values():
            if key in found:
                ms = found[key][0]
                line += f" {ms:>9.2f} {ms / row['p50']:>6.0f}"
            else:
                line += f" {'-':>9} {'':>6}"
        print(line)
    overhead = statistics.median(http[k]["p50"] - ours[k]["anonymous_p50"] for k in http)
    print(f"\nHTTP API overhead (median over queries): {overhead:.2f} ms p50 (target ≤ 2)")
    print(
        f"ingest: acknowledged in {timing['acknowledged_s']:.1f} s, all searchable in {timing['searchable_s']:.1f} s (target ≤ 120)"
    )
    print(
        f"index size: {index_mib:.0f} MiB (target ≤ 800); catalog (durable write log): {catalog_mib:.0f} MiB"
    )
    print(
        f"peak RSS during ingest: {rss.peak / 2**20:.0f} MiB; process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    results = {
        "n": args.n, "ours": ours, "http": http, "baselines": baselines, "ingest": timing,
        "index_mib": index_mib, "catalog_mib": catalog_mib, "peak_rss_mib": rss.peak / 2**20,
        "http_overhead_ms": overhead,
    }  # fmt: skip
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"search-{args.n}.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
