"""The tantivy backend's sorts side by side: on a number (tantivy's top_hits) and on a text field
(every match's values read and ordered by the backend, at most `text_sort_limit` matches).

    .venv/bin/python bench/bench_text_sort.py --n 100000 --matches 1000 10000

Each query selects `matches` entries of an index of `n` (a range on `i`) and asks for the first
page of 10, sorted by `n_atoms` (number) or by `title` (text); the baseline row is the same
query unsorted. Prints a table (median, p95, ratio to the unsorted query) and writes JSON to
bench/results/text_sort.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from matterhub.core.search import GSort  # noqa: E402
from matterhub.search.backend import SearchSpec  # noqa: E402
from matterhub.search.documents import Prepared  # noqa: E402
from matterhub.search.parser import parse_query  # noqa: E402
from matterhub.search.tantivy import TantivyIndex  # noqa: E402

WORDS = ["oxide", "alloy", "crystal", "perovskite", "catalyst", "battery", "steel", "glass"]


def load(index: TantivyIndex, n: int) -> None:
    rng = random.Random(42)
    batch = []
    for i in range(n):
        content = {
            "i": i,
            "n_atoms": rng.randint(1, 500),
            "title": " ".join(rng.sample(WORDS, 3)),
        }
        batch.append(
            Prepared({"subject": f"s{i}", "visible_to": ["public"], "content": content}, position=0)
        )
        if len(batch) == 10_000:
            index.upsert(batch)
            batch = []
    index.upsert(batch)
    index.commit()


def timed(index: TantivyIndex, spec: SearchSpec, repeats: int) -> list[float]:
    index.search(spec)  # warm
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        index.search(spec)
        out.append((time.perf_counter() - start) * 1000)
    return out


def raw(index: TantivyIndex, spec: SearchSpec, repeats: int) -> list[float]:
    """The numeric page as top_hits alone gives it (the query built as `search` builds it)."""
    query = index._query(spec, post=True)
    out = []
    for _ in range(repeats + 1):
        searcher = index._index.searcher()
        start = time.perf_counter()
        index._top_hits(searcher, query, spec.sort, spec.offset, spec.limit)
        out.append((time.perf_counter() - start) * 1000)
    return out[1:]


def summary(matches: int, name: str, times: list[float], base: float | None) -> dict[str, object]:
    median = statistics.median(times)
    return {
        "matches": matches,
        "sort": name,
        "median_ms": median,
        "p95_ms": statistics.quantiles(times, n=20)[18],
        "ratio": median / base if base else 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--matches", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        index = TantivyIndex(Path(tmp) / "i")
        start = time.perf_counter()
        load(index, args.n)
        print(f"loaded {args.n} entries in {time.perf_counter() - start:.1f} s")
        for matches in args.matches:
            tree = parse_query(f"i:[0 TO {matches - 1}]")
            cases = {
                "unsorted": [],
                "number (top_hits)": [GSort(field_name="n_atoms")],
                "text (read + ordered)": [GSort(field_name="title")],
            }
            base = None
            for name, sort in cases.items():
                spec = SearchSpec(tree=tree, principals=None, sort=sort, limit=10)
                times = timed(index, spec, args.repeats)
                if name.startswith("number"):
                    # the page straight from top_hits, as before entries without the key were
                    # put last (a count and, past them, a second query)
                    rows.append(
                        summary(
                            matches, "number, top_hits only", raw(index, spec, args.repeats), base
                        )
                    )
                median = statistics.median(times)
                p95 = statistics.quantiles(times, n=20)[18]
                base = base or median
                rows.append(
                    {
                        "matches": matches,
                        "sort": name,
                        "median_ms": median,
                        "p95_ms": p95,
                        "ratio": median / base,
                    }
                )
        index.close()
    print(f"\n{'matches':>8}  {'sort':<22} {'median ms':>10} {'p95 ms':>9} {'× unsorted':>11}")
    for r in rows:
        print(
            f"{r['matches']:>8}  {r['sort']:<22} {r['median_ms']:>10.2f} {r['p95_ms']:>9.2f} {r['ratio']:>11.1f}"
        )
    out = ROOT / "bench" / "results" / "text_sort.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"n": args.n, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
