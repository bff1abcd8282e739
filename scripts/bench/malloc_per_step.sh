#!/usr/bin/env bash
# Host heap allocations per steady-state training step of a bench case: runs the case with 2
# and with 6 timed steps under an LD_PRELOAD malloc counter and divides the difference by 4.
#   scripts/bench/malloc_per_step.sh [vggtl-binary] [case]
set -euo pipefail
VGGTL=${1:-.build/release/vggtl}
CASE=${2:-full150}
HERE=$(cd "$(dirname "$0")" && pwd)
LIB=$(mktemp -d)/malloc_count.so
cc -O2 -shared -fPIC -o "$LIB" "$HERE/malloc_count.c" -ldl
count() { LD_PRELOAD="$LIB" "$VGGTL" bench --device cpu --cases "$CASE" --steps "$1" --gemm 0 2>&1 >/dev/null | grep malloc-count; }
read -r _ _ c2 b2 _ o2 ob2 <<<"$(count 2)"
read -r _ _ c6 b6 _ o6 ob6 <<<"$(count 6)"
echo "$CASE: per step, vggtl and other libraries: $(( (c6 - c2) / 4 )) mallocs, $(( (b6 - b2) / 4 / 1024 )) KiB;" \
     "OpenBLAS: $(( (o6 - o2) / 4 )) mallocs, $(( (ob6 - ob2) / 4 / 1024 )) KiB"
