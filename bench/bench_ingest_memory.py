"""The server's anonymous memory while the search ingests records, with glibc's malloc arenas
capped (the hub's default, `malloc_arenas=2`) and not (`0`: glibc's 8 per core), side by side.

    nice -n 5 .venv/bin/python bench/bench_ingest_memory.py [--records 40000] [--heap-mb 128]

Each setting runs in a fresh process (the arena cap is process-wide): an embedded hub, then
GMetaList ingests of 5,000 band-gap-shaped records each (a record as Connect indexes it:
composition, elements, cation fractions, thickness, gap, two files), waiting for each to be
searchable, reading `RssAnon` from /proc after each. Prints the table; never run by the tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
BATCH = 5000


def anon_mib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) // 1024
    return 0


def record(i: int) -> dict[str, Any]:
    base = f"http://hub/api/datasets/films_v1.0/files/b{i // 1000:04d}/s{i:06d}"
    return {
        "mdf": {"source_id": "films_v1.0", "source_name": "films", "scroll_id": i,
                "resource_type": "record", "acl": ["public"], "title": f"sample {i}"},
        "material": {"composition": "Bi0.2V0.3Fe0.1Ce0.4O2",
                     "elements": ["Bi", "V", "Fe", "Ce", "O"]},
        "custom": {"index": i, "sample": f"s{i:06d}", "gap_ev": 2.1 + i * 1e-6,
                   "thickness_nm": 300.0, "x_Bi": 0.2, "x_V": 0.3, "x_Fe": 0.1, "x_Ce": 0.4},
        "files": [
            {"filename": "image.png", "path": f"s{i:06d}/image.png", "url": f"{base}/image.png",
             "length": 900, "sha512": "ab" * 64, "mime_type": "image/png"},
            {"filename": "spectrum.json", "path": f"s{i:06d}/spectrum.json",
             "url": f"{base}/spectrum.json", "length": 2500, "sha512": "cd" * 64,
             "mime_type": "application/json"},
        ],
    }  # fmt: skip


def one_run(records: int, arenas: int, heap_mb: int) -> list[int]:
    from matterhub.bootstrap import build_services
    from matterhub.core.identity import SYSTEM_IDENTITY
    from matterhub.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "hub",
            malloc_arenas=arenas,
            search_options={"heap_mb": heap_mb},
        )
        services = build_services(settings)
        services.start()
        seen = [anon_mib()]
        for start in range(0, records, BATCH):
            gmeta = [
                {"subject": f"films_v1.0.{i}", "visible_to": ["public"], "content": record(i)}
                for i in range(start, min(records, start + BATCH))
            ]
            body = {"ingest_type": "GMetaList", "ingest_data": {"gmeta": gmeta}}
            task = services.search.ingest(SYSTEM_IDENTITY, "mdf", body)
            services.search.wait(task.task_id, timeout=600)
            del gmeta, body
            seen.append(anon_mib())
        services.close()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=40000)
    parser.add_argument("--heap-mb", type=int, default=128)
    parser.add_argument("--one", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(*args.one)))
        return
    runs = {}
    for arenas in (2, 0):
        argv = [
            sys.executable,
            __file__,
            "--one",
            str(args.records),
            str(arenas),
            str(args.heap_mb),
        ]
        out = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=ROOT).stdout
        runs[arenas] = json.loads(out.strip().splitlines()[-1])
    print(f"anonymous MiB after each ingest of {BATCH} records (tantivy heap {args.heap_mb} MiB)")
    print(f"{'records':>8} {'2 arenas (hub)':>15} {'glibc default':>14}")
    for n, (capped, default) in enumerate(zip(runs[2], runs[0], strict=True)):
        print(f"{n * BATCH:>8} {capped:>15} {default:>14}")


if __name__ == "__main__":
    main()
