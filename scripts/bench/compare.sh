#!/usr/bin/env bash
# One sitting of vggtl vs PyTorch on this machine: for each case, vggtl then PyTorch, alternated
# so both see the same machine load; then the markdown table of BENCHMARKS.md.
#   scripts/bench/compare.sh [vggtl-binary] [python-with-torch] [steps] [cases]
# Extra binaries to compare (e.g. an older build): VGGTL_EXTRA="name=/path/to/vggtl ..."
set -euo pipefail
VGGTL=${1:-.build/release/vggtl}
PY=${2:-/tmp/venv-torch/bin/python}
STEPS=${3:-3}
CASES=${4:-extract224 extract150 full150 full224 part150 bn32}
OUT=${OUT:-bench-results}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
"$VGGTL" bench --device cpu --cases extract150 --steps 1 --gemm 2048 --json > "$OUT/gemm.json"
for c in $CASES; do
  "$VGGTL" bench --device cpu --cases "$c" --steps "$STEPS" --gemm 0 --json > "$OUT/vggtl-$c.json"
  "$PY" "$HERE/pytorch_bench.py" --cases "$c" --steps "$STEPS" --threads 2 --json > "$OUT/torch-$c.json"
  for e in ${VGGTL_EXTRA:-}; do
    "${e#*=}" bench --device cpu --cases "$c" --steps "$STEPS" --gemm 0 --json > "$OUT/${e%%=*}-$c.json"
  done
done
"$PY" "$HERE/table.py" "$OUT" $CASES
