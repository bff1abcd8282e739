#!/usr/bin/env bash
# Data-parallel scaling on this machine: `vggtl bench --distributed` with 1 process and with
# N ranks under mpirun, alternating so both see the same load; one JSON per run in $OUT.
# Usage: scripts/bench/distributed.sh VGGTL [REPEATS] [RANKS]
#   DEVICE=cpu|opencl CASES=part150,bn32 STEPS=5 RANK_BATCH=... COMPRESSION=fp16 OUT=bench-distributed
set -euo pipefail
vggtl=${1:?usage: distributed.sh path/to/vggtl [repeats] [ranks]}
repeats=${2:-3}
ranks=${3:-2}
out=${OUT:-bench-distributed}
device=${DEVICE:-cpu}
cases=${CASES:-part150,bn32}
steps=${STEPS:-5}
extra=()
[[ -n "${RANK_BATCH:-}" ]] && extra+=(--rank-batch "$RANK_BATCH")
[[ -n "${COMPRESSION:-}" ]] && extra+=(--gradient-compression "$COMPRESSION")
mkdir -p "$out"
mpirun=(mpirun --oversubscribe -np "$ranks")
[[ $(id -u) == 0 ]] && mpirun+=(--allow-run-as-root)
for i in $(seq 1 "$repeats"); do
  "$vggtl" bench --device "$device" --distributed --cases "$cases" --steps "$steps" --gemm 0 --json "${extra[@]}" > "$out/$device-1-$i.json"
  "${mpirun[@]}" "$vggtl" bench --device "$device" --distributed --cases "$cases" --steps "$steps" --gemm 0 --json "${extra[@]}" > "$out/$device-$ranks-$i.json"
done
# Medians over the repeats, per case and number of ranks.
python3 - "$out" "$device" "$ranks" <<'PY'
import json, glob, statistics, sys
out, device, ranks = sys.argv[1], sys.argv[2], sys.argv[3]
rows = {}
for f in sorted(glob.glob(f"{out}/{device}-*.json")):
    for r in json.load(open(f)):
        rows.setdefault((r["name"], r["ranks"]), []).append(r)
print(f"| case | ranks | batch/rank | img/s (median of {len(next(iter(rows.values())))}) | step ms | allreduce exposed ms/step | allreduce alone ms | gradients MB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for (name, n), rs in sorted(rows.items()):
    med = lambda k: statistics.median(r[k] for r in rs)
    step = statistics.median(statistics.median(r["stepSeconds"]) for r in rs)
    print(f"| {name} | {n} | {rs[0]['batchPerRank']} | {med('imagesPerSecond'):.2f} | {1e3 * step:.0f} | "
          f"{1e3 * med('exposedAllreduceSeconds'):.1f} | {1e3 * med('allreduceSeconds'):.1f} | {rs[0]['gradientMegabytes']:.1f} |")
PY
