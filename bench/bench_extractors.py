"""Extractor benchmark: generic, structures (CIF) through the real pool, each extractor on the
shared samples, and a large EMD file read for metadata with its peak memory.

Run:  .venv/bin/python bench/bench_extractors.py [--small 5000] [--cifs 2000] [--unique 1000]
                                                 [--workers 2] [--emd-mb 200] [--skip-emd]
- generic: `--small` small files through GenericExtractor, in this process (as in the pipeline);
- structure: `--cifs` CIFs written by ASE (4 crystals x 50 lattice constants x 2 cell sizes,
  so structures repeat as they do in real datasets) through `run_extractors` and the warm
  worker pool with `--workers` processes; `--unique` more CIFs whose cells are all different
  measure the cost without the symmetry cache;
- per extractor: every shared sample each extractor accepts, in this process, median of 3;
- microscopy: a generated NCEM EMD of `--emd-mb` MB, extracted (and previewed) in a fresh
  subprocess whose peak RSS (ru_maxrss) is reported beside that of a subprocess that only
  imports the same libraries.
Prints a table and writes bench/results/extractors.json. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from matterhub.connect.extractors import (
    ExtractionContext,
    StagedFile,
    load_extractors,
    run_extractors,
)
from matterhub.connect.extractors.generic import GenericExtractor
from matterhub.connect.extractors.pool import ExtractorPool

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "data" / "samples"
Row = dict[str, Any]


def staged(path: Path, root: Path) -> StagedFile:
    return StagedFile(path, path.relative_to(root).as_posix(), path.stat().st_size)


def make_small(root: Path, n: int) -> list[StagedFile]:
    for i in range(n):
        folder = root / f"d{i // 500}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i}.txt").write_bytes(os.urandom(256) if i % 2 else b"x, y\n" * 200)
    return [staged(p, root) for p in sorted(root.rglob("*")) if p.is_file()]


def make_cifs(root: Path, n: int, *, unique: bool = False) -> list[StagedFile]:
    from ase.build import bulk

    crystals = [
        ("Si", "diamond", 5.43),
        ("Cu", "fcc", 3.6),
        ("Fe", "bcc", 2.87),
        ("NaCl", "rocksalt", 5.64),
    ]
    for i in range(n):
        name, kind, a = crystals[i % len(crystals)]
        scale = 1 + (1e-5 * i if unique else 0.001 * (i % 50))
        atoms = bulk(name, kind, a=a * scale, cubic=True).repeat((1 + i % 2, 1, 1))
        atoms.write(root / f"s{i}.cif", format="cif")
    return [staged(p, root) for p in sorted(root.glob("*.cif"))]


def row(case: str, files: int, wall: float, times: list[float] | None = None) -> Row:
    out: Row = {"case": case, "files": files, "wall_s": wall, "files_per_s": files / wall}
    if times:
        ordered = sorted(times)
        out["median_ms"] = statistics.median(ordered) * 1e3
        out["p95_ms"] = ordered[int(0.95 * (len(ordered) - 1))] * 1e3
    return out


def bench_generic(root: Path, n: int) -> Row:
    small = make_small(root, n)
    generic = GenericExtractor()
    times = []
    started = time.perf_counter()
    for file in small:
        t0 = time.perf_counter()
        generic.extract_files([file])
        times.append(time.perf_counter() - t0)
    return row("generic (1 process)", len(small), time.perf_counter() - started, times)


def bench_structures(root: Path, n: int, workers: int, *, unique: bool) -> Row:
    cifs = make_cifs(root, n, unique=unique)
    extractors = load_extractors(["generic", "structure"])
    pool = ExtractorPool(workers)
    try:
        run_extractors(cifs[: workers * 2], ExtractionContext(), extractors=extractors, pool=pool)
        started = time.perf_counter()
        result = run_extractors(cifs, ExtractionContext(), extractors=extractors, pool=pool)
        wall = time.perf_counter() - started
    finally:
        pool.close()
    assert not result.warnings, result.warnings[:3]
    assert all("crystal_structure" in r for r in result.records)
    kind = "all cells different" if unique else "cells repeat"
    return row(f"structure CIF, pipeline, {workers} workers ({kind})", len(cifs), wall)


def bench_per_extractor() -> list[Row]:
    if not SAMPLES.is_dir():
        return []
    files = [staged(p, SAMPLES) for p in sorted(SAMPLES.rglob("*")) if p.is_file()]
    rows = []
    for extractor in load_extractors():
        if extractor.name in {"generic", "filename"}:
            continue
        groups = list(extractor.group(files))
        times = []
        for group in groups:
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                # A sample an extractor accepts but cannot read is still timed.
                with contextlib.suppress(Exception):
                    extractor.extract(group, ExtractionContext())
                runs.append(time.perf_counter() - t0)
            times.append(statistics.median(runs[1:]))  # the first run pays the imports
        if times:
            rows.append(
                row(f"{extractor.name} (samples, 1 process)", len(times), sum(times), times)
            )
    return rows


_MAKE_EMD = """
import sys, numpy as np
from rsciio.emd import file_writer
mb, path = int(sys.argv[1]), sys.argv[2]
frames = max(1, mb * 1024 * 1024 // (1024 * 1024 * 4))
data = np.random.default_rng(0).random((frames, 1024, 1024), dtype="float32")
axes = [
    {"name": n, "units": u, "scale": 0.5, "offset": 0.0, "size": s, "navigate": nav}
    for n, u, s, nav in (("time", "s", frames, True), ("y", "nm", 1024, False),
                         ("x", "nm", 1024, False))
]
metadata = {"General": {"title": "stack"}, "Signal": {"signal_type": ""}}
file_writer(path, {"data": data, "axes": axes, "metadata": metadata,
                   "original_metadata": {"microscope": {"name": "bench"}}})
"""
_MEASURE = """
import json, resource, sys, time
from pathlib import Path
import numpy, PIL.Image, rsciio.emd, tifffile  # the libraries extraction imports
from matterhub.connect.extractors import ExtractionContext, FileGroup, StagedFile
from matterhub.connect.extractors.microscopy import MicroscopyExtractor
path, mode = Path(sys.argv[1]), sys.argv[2]
out = {}
if mode != "baseline":
    file = StagedFile(path, path.name, path.stat().st_size)
    group, context = FileGroup(path.name, (file,)), ExtractionContext(config={"previews": True})
    started = time.perf_counter()
    record = MicroscopyExtractor().extract(group, context)
    if mode == "derive":
        out["derived"] = [d.name for d in MicroscopyExtractor().derive(group, context)]
    out["seconds"] = time.perf_counter() - started
    out["shape"] = record["image"]["shape"]
    out["warnings"] = record.get("_warnings", [])
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def bench_emd(root: Path, mb: int) -> list[Row]:
    path = root / "big.emd"
    subprocess.run([sys.executable, "-c", _MAKE_EMD, str(mb), str(path)], check=True)
    size_mb = path.stat().st_size / 1e6
    rows = []
    for mode in ("baseline", "extract", "derive"):
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(path), mode],
            check=True,
            capture_output=True,
            text=True,
        )
        facts = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append({"case": f"microscopy EMD {size_mb:.0f} MB: {mode}", **facts})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=5000)
    parser.add_argument("--cifs", type=int, default=2000)
    parser.add_argument("--unique", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--emd-mb", type=int, default=200)
    parser.add_argument("--skip-emd", action="store_true")
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("small", "cifs", "unique", "emd"):
            (Path(tmp) / name).mkdir()
        rows.append(bench_generic(Path(tmp) / "small", args.small))
        rows.append(bench_structures(Path(tmp) / "cifs", args.cifs, args.workers, unique=False))
        if args.unique:
            rows.append(
                bench_structures(Path(tmp) / "unique", args.unique, args.workers, unique=True)
            )
        rows.extend(bench_per_extractor())
        emd = [] if args.skip_emd else bench_emd(Path(tmp) / "emd", args.emd_mb)
    print(f"{'case':58} {'files':>6} {'wall s':>8} {'median ms':>10} {'files/s':>9}")
    for r in rows:
        median = f"{r['median_ms']:.2f}" if "median_ms" in r else "-"
        print(
            f"{r['case']:58} {r['files']:>6} {r['wall_s']:>8.2f} {median:>10}"
            f" {r['files_per_s']:>9.1f}"
        )
    for r in emd:
        extra = f", {r['seconds']:.2f} s, shape {r['shape']}" if "seconds" in r else ""
        print(f"{r['case']:58} peak RSS {r['peak_rss_mb']:.0f} MB{extra}")
        for warning in r.get("warnings", []):
            print(f"{'':58} {warning}")
    out = ROOT / "bench" / "results" / "extractors.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"cpu_count": os.cpu_count(), "args": vars(args), "rows": rows, "emd": emd}
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
