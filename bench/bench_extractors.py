"""Extractor benchmark: generic extraction of small files, structure extraction of generated CIFs.

Run:  .venv/bin/python bench/bench_extractors.py [--small 5000] [--cifs 2000] [--workers 2]
Generic runs in this process (as in the pipeline); CIFs (written by ASE) are parsed by the
structure extractor in a ProcessPool of `--workers` processes. Prints a table and writes
bench/results/extractors.json. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from matterhub.connect.extractors import ExtractionContext, FileGroup, StagedFile
from matterhub.connect.extractors.generic import GenericExtractor
from matterhub.connect.extractors.structures import StructureExtractor

ROOT = Path(__file__).resolve().parents[1]


def staged(path: Path, root: Path) -> StagedFile:
    return StagedFile(path, path.relative_to(root).as_posix(), path.stat().st_size)


def make_small(root: Path, n: int) -> list[StagedFile]:
    for i in range(n):
        folder = root / f"d{i // 500}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i}.txt").write_bytes(os.urandom(256) if i % 2 else b"x, y\n" * 200)
    return [staged(p, root) for p in sorted(root.rglob("*")) if p.is_file()]


def make_cifs(root: Path, n: int) -> list[StagedFile]:
    from ase.build import bulk

    crystals = [
        ("Si", "diamond", 5.43),
        ("Cu", "fcc", 3.6),
        ("Fe", "bcc", 2.87),
        ("NaCl", "rocksalt", 5.64),
    ]
    for i in range(n):
        name, kind, a = crystals[i % len(crystals)]
        atoms = bulk(name, kind, a=a * (1 + 0.001 * (i % 50)), cubic=True).repeat((1 + i % 2, 1, 1))
        atoms.write(root / f"s{i}.cif", format="cif")
    return [staged(p, root) for p in sorted(root.glob("*.cif"))]


def _time_cif(file: StagedFile) -> float:
    started = time.perf_counter()
    StructureExtractor().extract(FileGroup(file.relpath, (file,)), ExtractionContext())
    return time.perf_counter() - started


def summarise(name: str, times: list[float], wall: float) -> dict[str, float | str | int]:
    ordered = sorted(times)
    return {
        "case": name,
        "files": len(times),
        "median_ms": statistics.median(ordered) * 1e3,
        "p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1e3,
        "files_per_s": len(times) / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=5000)
    parser.add_argument("--cifs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "small").mkdir()
        small = make_small(Path(tmp) / "small", args.small)
        generic = GenericExtractor()
        times = []
        started = time.perf_counter()
        for file in small:
            t0 = time.perf_counter()
            generic.extract_files([file])
            times.append(time.perf_counter() - t0)
        rows.append(summarise("generic (1 process)", times, time.perf_counter() - started))

        (Path(tmp) / "cifs").mkdir()
        cifs = make_cifs(Path(tmp) / "cifs", args.cifs)
        with ProcessPoolExecutor(args.workers) as pool:
            list(pool.map(_time_cif, cifs[: args.workers * 2]))  # warm: imports pymatgen once each
            started = time.perf_counter()
            times = list(pool.map(_time_cif, cifs, chunksize=16))
            wall = time.perf_counter() - started
        rows.append(summarise(f"structure CIF ({args.workers} processes)", times, wall))
    print(f"{'case':32} {'files':>6} {'median ms':>10} {'p95 ms':>8} {'files/s':>9}")
    for row in rows:
        print(
            f"{row['case']:32} {row['files']:>6} {row['median_ms']:>10.3f} {row['p95_ms']:>8.3f}"
            f" {row['files_per_s']:>9.0f}"
        )
    out = ROOT / "bench" / "results" / "extractors.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cpu_count": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
