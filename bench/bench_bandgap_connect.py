"""Connect at the band-gap use case's scale: N samples (2N files + a JSON mapping), submit → searchable.

Run:  nice -n 15 .venv/bin/python bench/bench_bandgap_connect.py [--samples 10000 50000 180902]
                                                                 [--out bench/results/bandgap_connect.json]
Each size runs in a fresh subprocess, so its peak RSS is its own: an embedded hub (SQLite, local
blobs, tantivy) with its Connect worker — the server process — gets ONE submission of a local
folder written by `examples/bandgap/dataset.py` (a folder per sample: image.png + spectrum.json;
the `index.json` mapping, `group_by_dir`, generic + tabular extraction), and the wall time runs
from submit until every record is searchable. The samples are `simulate.simulate(n, 1)` (16×16
PNG images, 101-point spectra in JSON), simulated and written in chunks of 5,000. In the same
run: the README's Connect bench (`bench/bench_connect.py --one 10000`: 10,000 small files,
generic extraction) and, for each size, the baseline: copy + SHA-512 of the same files in one
process. Peak RSS is also sampled per pipeline step. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHUNK = 5000  # samples simulated and written at a time
SEED = 1


def make_files(root: Path, count: int) -> float:
    """Write `count` samples under `root`; the seconds it took."""
    from examples.bandgap import dataset, simulate

    started = time.perf_counter()
    for start in range(0, count, CHUNK):
        dataset.write(simulate.simulate(min(CHUNK, count - start), SEED, start=start), root)
    return time.perf_counter() - started


def rss_mib(field: str = "VmRSS") -> float:
    """This process's resident memory in MiB: all of it (`VmRSS`), or its anonymous part
    (`RssAnon`: what it allocated) apart from file pages mapped in (`RssFile`: tantivy's
    memory-mapped segments, page cache the kernel may drop)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one_run(count: int) -> dict[str, Any]:
    """Runs in its own process: build a hub, submit the folder, wait until searchable."""
    from bench.bench_connect import baseline, bench_hub, submit_until_searchable
    from examples.bandgap import dataset
    from examples.bandgap.simulate import ELEMENTS

    from matterhub.core.connect import SubmissionRequest

    elements = list(ELEMENTS)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        work = Path(tmp)
        source = work / "films"
        write_s = make_files(source, count)
        floor = baseline(source, work / "floor")
        services, who = bench_hub(work, source)
        request = SubmissionRequest.model_validate(
            {
                "dc": {
                    "titles": [{"title": f"Band-gap films, {count} samples"}],
                    "creators": [{"creatorName": "Bench, Mark"}],
                },
                "data_sources": [str(source)],
                "index": {
                    "json": {"mapping": dataset.mapping(elements), "units": dataset.units(elements)}
                },
                "extraction_config": dict(dataset.EXTRACTION),
            }
        )
        rss_before = rss_mib()
        peaks: dict[str, float] = {}
        anon: dict[str, float] = {}
        done = threading.Event()

        def sample() -> None:  # peak RSS per running step (the step in `_started` now)
            while not done.wait(0.1):
                running = [step for (_sid, step) in list(services.connect._started)]
                key = running[-1] if running else "(between steps)"
                peaks[key] = max(peaks.get(key, 0.0), rss_mib())
                anon[key] = max(anon.get(key, 0.0), rss_mib("RssAnon"))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            total, status = submit_until_searchable(services, who, request, count, 6 * 3600)
        finally:
            done.set()
            sampler.join()
        steps = {s["step"]: s for s in status["status"]["status_list"]}
        timings = services.connect.last_timings
        services.close()
    files = 2 * count
    return {
        "samples": count,
        "files": files,
        "write_s": write_s,
        "submit_to_searchable_s": total,
        "files_per_s": files / total,
        "overhead_ms_per_file": (total - timings.get("extracting", 0.0)) / files * 1000,
        "baseline_copy_hash_s": floor,
        "rss_before_submit_mib": rss_before,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "steps_s": timings,
        "peak_rss_by_step_mib": {k: round(v) for k, v in peaks.items()},
        "peak_anon_mib": max(anon.values(), default=0.0),
        "peak_anon_by_step_mib": {k: round(v) for k, v in anon.items()},
        "extracting_detail": steps["extracting"].get("detail") or "",
    }


def _sub(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, *args], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, nargs="+", default=[10000, 50000, 180902])
    parser.add_argument("--no-reference", action="store_true", help="skip bench_connect's 10,000")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "bandgap_connect.json"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.one)))
        return
    load = os.getloadavg()
    rows: list[dict[str, Any]] = []
    if not args.no_reference:
        ref = _sub([str(ROOT / "bench" / "bench_connect.py"), "--one", "10000"])
        rows.append({"case": "bench_connect (README)", "samples": 0, **ref})
    for count in args.samples:
        rows.append({"case": "band-gap samples", **_sub([__file__, "--one", str(count)])})
    print(f"load average at start {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; 2 cores")
    print(
        f"{'case':<24} {'samples':>8} {'files':>8} {'submit→searchable s':>20} {'files/s':>8} "
        f"{'ms/file w/o extract':>19} {'peak RSS MiB':>13} {'of it anon':>11} "
        f"{'copy+sha512 s':>14} {'ratio':>6}"
    )
    for r in rows:
        print(
            f"{r['case']:<24} {r['samples']:>8} {r['files']:>8} {r['submit_to_searchable_s']:>20.1f} "
            f"{r['files'] / r['submit_to_searchable_s']:>8.0f} {r['overhead_ms_per_file']:>19.2f} "
            f"{r['peak_rss_mib']:>13.0f} {r.get('peak_anon_mib', 0):>11.0f} "
            f"{r['baseline_copy_hash_s']:>14.2f} "
            f"{r['submit_to_searchable_s'] / r['baseline_copy_hash_s']:>6.1f}"
        )
    for r in rows:
        print(f"  {r['case']}, {r['files']} files, seconds per step: {json.dumps(r['steps_s'])}")
        print(f"    {r['extracting_detail']}")
        if "peak_rss_by_step_mib" in r:
            print(f"    peak RSS MiB while each step ran: {json.dumps(r['peak_rss_by_step_mib'])}")
            print(f"    of it anonymous (RssAnon): {json.dumps(r['peak_anon_by_step_mib'])}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
