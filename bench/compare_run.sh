#!/usr/bin/env bash
# Run bench/bench_run.py alternately on another commit and on this tree, in one session, so the
# two are compared on the same machine state: bench/compare_run.sh <ref> [pairs] [bench args…]
# (e.g. bench/compare_run.sh 907bfcc 2 --no-ray --tasks 2000). The other commit runs from a
# temporary git worktree through this tree's virtual environment (PYTHONPATH=<worktree>/src).
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${1:?usage: bench/compare_run.sh <ref> [pairs] [bench args...]}
pairs=${2:-2}
shift $(( $# >= 2 ? 2 : 1 ))
other=$(mktemp -d)
trap 'git worktree remove --force "$other" >/dev/null 2>&1 || rm -rf "$other"' EXIT
git worktree add --detach --force "$other" "$ref" >/dev/null
for i in $(seq "$pairs"); do
  echo "== $ref, run $i ($(uptime))"
  (cd "$other" && PYTHONPATH="$other/src" "$OLDPWD/.venv/bin/python" bench/bench_run.py "$@" \
    | grep -E "^(hub|fastapi|ray)_|cold start|async batch")
  echo "== this tree, run $i ($(uptime))"
  .venv/bin/python bench/bench_run.py "$@" | grep -E "^(hub|fastapi|ray)_|cold start|async batch"
done
