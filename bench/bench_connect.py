"""Connect benchmark: a many-file dataset from a local folder, submit → searchable; prints a table.

Run:  .venv/bin/python bench/bench_connect.py [--files 1000 10000] [--out bench/results/connect.json]
Each size runs in a fresh subprocess (so its peak RSS is its own): an embedded hub (SQLite,
local blobs, tantivy) with its Connect worker, a folder of small text and CIF files, generic
extraction only. Reported per size: submit → searchable wall time, the pipeline's per-file
overhead (wall time minus the extraction step, per file), extraction files/s, and peak RSS.
The baseline beside it is the floor for the same data: copying the files and hashing them
with SHA-512 in one process (what any pipeline must at least do). Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CIF = """data_Fe
_cell_length_a 2.87
_cell_length_b 2.87
_cell_length_c 2.87
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'I m -3 m'
loop_
_atom_site_label
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Fe1 0 0 0
"""


def make_files(root: Path, count: int) -> None:
    """Small files in folders of 500: nine text notes for every CIF."""
    for n in range(count):
        folder = root / f"batch{n // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        if n % 10 == 0:
            (folder / f"s{n:06d}.cif").write_text(CIF)
        else:
            (folder / f"note{n:06d}.txt").write_text(f"measurement {n}: {n * 0.37:.3f} eV\n" * 4)


def baseline(source: Path, dest: Path) -> float:
    """Copy + SHA-512 every file: the floor any pipeline has to pay."""
    import hashlib
    import shutil

    start = time.perf_counter()
    for item in sorted(source.rglob("*")):
        if item.is_file():
            target = dest / item.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item, target)
            hashlib.sha512(target.read_bytes()).hexdigest()
    return time.perf_counter() - start


def bench_hub(work: Path, source: Path) -> tuple[Any, Any]:
    """An embedded hub in `work` allowed to collect `source`, started, and its user `bench`:
    `(services, identity)`."""
    from matterhub.bootstrap import build_services
    from matterhub.core.identity import SYSTEM_IDENTITY
    from matterhub.settings import Settings

    services = build_services(Settings(data_dir=work / "hub", connect_allowed_roots=[source]))
    services.start()
    services.accounts.create_user(SYSTEM_IDENTITY, "bench")
    token = services.accounts.create_token(SYSTEM_IDENTITY, "bench").token
    return services, services.accounts.authenticate(token)


def submit_until_searchable(
    services: Any, who: Any, request: Any, records: int, timeout: float
) -> tuple[float, dict[str, Any]]:
    """Submit, wait for the pipeline, then until `records` + 1 entries (the dataset's and its
    records) are searchable: `(seconds from submit, final status)`."""
    from matterhub.core.identity import ANONYMOUS
    from matterhub.core.search import GSearchRequest

    start = time.perf_counter()
    sid = services.connect.submit(who, request)["source_id"]
    status: dict[str, Any] = services.connect.wait(sid, timeout=timeout)
    # A failed submission never becomes searchable: say why instead of waiting for it.
    assert status["status"]["state"] == "succeeded", status["display_status"]
    q = GSearchRequest(q=f'mdf.source_id:"{sid}"', advanced=True, limit=0)
    while services.search.search(ANONYMOUS, "mdf", q).total < records + 1:
        time.sleep(0.01)
    total = time.perf_counter() - start
    return total, status


def one_run(count: int) -> dict[str, float]:
    """Runs in its own process: build a hub, submit, wait until searchable."""
    from matterhub.core.connect import SubmissionRequest

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "incoming"
        make_files(source, count)
        floor = baseline(source, work / "floor")
        services, who = bench_hub(work, source)
        request = SubmissionRequest.model_validate(
            {
                "dc": {
                    "titles": [{"title": f"Connect benchmark {count} files"}],
                    "creators": [{"creatorName": "Bench, Mark"}],
                },
                "data_sources": [str(source)],
                "extraction_config": {"extractors": ["generic"], "previews": False},
            }
        )
        total, status = submit_until_searchable(services, who, request, count, 3600)
        steps = {s["step"]: s for s in status["status"]["status_list"]}
        timings = services.connect.last_timings
        services.close()
    extract_s = timings.get("extracting", 0.0)
    return {
        "files": count,
        "submit_to_searchable_s": total,
        "overhead_ms_per_file": (total - extract_s) / count * 1000,
        "extract_files_per_s": count / extract_s if extract_s else 0.0,
        "baseline_copy_hash_s": floor,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "steps_s": timings,
        "extracting_detail": steps["extracting"].get("detail") or "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "connect.json")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.one)))
        return
    rows = []
    for count in args.files:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(count)],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(
        f"{'files':>7} {'submit→searchable s':>20} {'overhead ms/file':>17} "
        f"{'extract files/s':>16} {'peak RSS MiB':>13} {'copy+sha512 s':>14} {'ratio':>6}"
    )
    for r in rows:
        print(
            f"{r['files']:>7} {r['submit_to_searchable_s']:>20.1f} "
            f"{r['overhead_ms_per_file']:>17.2f} {r['extract_files_per_s']:>16.0f} "
            f"{r['peak_rss_mib']:>13.0f} {r['baseline_copy_hash_s']:>14.2f} "
            f"{r['submit_to_searchable_s'] / r['baseline_copy_hash_s']:>6.1f}"
        )
    for r in rows:
        print(f"  {r['files']} files, seconds per step: {json.dumps(r['steps_s'])}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
