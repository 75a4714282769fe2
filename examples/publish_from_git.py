"""Publish a servable from where it lives: the hub fetches a git repository (or a URL) itself.

The repository holds the servable's files and, at its root, its document (`dlhub.json`, as
`matterhub servable describe` writes it). The hub clones it through its outbound guard, pins the
commit it fetched, records each file's SHA-256 in the version's provenance (`dlhub.source`),
builds the servable in its sandbox and makes it live. Publishing the same commit again answers
the version made before; a new commit is a new version.

    python examples/publish_from_git.py --url http://127.0.0.1:8000 --token <token> \\
        --source git+https://github.com/<owner>/<repo> --ref v1.0 [--path model.py --path data]

or with MATTERHUB_URL and MATTERHUB_TOKEN set. It prints the version, the commit, each file and
its checksum, and the servable's answer to its own example input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from matterhub import Client
from matterhub.client import ClientError


def main() -> int:
    """Publish from the source, wait until live, show the provenance, run the example."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("MATTERHUB_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("MATTERHUB_TOKEN"), help="API token")
    parser.add_argument("--source", required=True, help="git+https://…, git://…, https://…")
    parser.add_argument("--ref", help="git branch, tag or commit (default: the default branch)")
    parser.add_argument("--path", action="append", default=[], help="only this file or folder")
    parser.add_argument(
        "--document", type=Path, help="the servable document (default: dlhub.json in the source)"
    )
    args = parser.parse_args()
    if not args.token:
        parser.error("give --token (or MATTERHUB_TOKEN)")

    source: dict[str, Any] = {"url": args.source}
    if args.ref:
        source["ref"] = args.ref
    if args.path:
        source["paths"] = args.path
    document = json.loads(args.document.read_text()) if args.document else None

    with Client(args.url, args.token) as client:
        started = time.perf_counter()
        try:
            build = client.publish_source(source, document, wait=True, timeout=1800)
        except ClientError as exc:  # a bad or unreachable source: the hub names it
            print(f"refused: {exc}", file=sys.stderr)
            return 1
        took = time.perf_counter() - started
        if build["status"] != "succeeded":
            print(build["log"], file=sys.stderr)
            return 1
        ref = build["servable"]
        print(f"published {ref} version {build['version']} in {took:.1f} s")
        described = client.describe_servable(ref, build["version"])
        recorded = described["document"]["dlhub"]["source"]
        commit = recorded.get("commit")
        print(f"source {recorded['url']}" + (f" commit {commit}" if commit else ""))
        for entry in recorded["files"]:
            print(f"  {entry['path']}  {entry['size']} bytes  sha256 {entry['sha256']}")
        example = described["document"]["servable"].get("example") or {}
        if "input" in example:
            answer = client.run(ref, example["input"])
            print(f"run {json.dumps(example['input'])} -> {json.dumps(answer)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
