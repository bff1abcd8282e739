#!/usr/bin/env bash
# Fuzz every reader for a bounded time with libFuzzer, starting from the corpus kept in
# Fuzz/corpus/<target>/ (afterwards minimised in place: the smallest set of inputs with the same
# coverage); crashes go to Fuzz/crashes/, logs to Fuzz/logs/. A crash that is fixed gets its
# input copied to Fuzz/regressions/ and a test in Tests/VGGTLTests/ReliabilityTests.swift.
#   Fuzz/run.sh [seconds per target] [target ...]     (default: 60 s each, all targets)
# Targets: jpeg png hdf5 safetensors npy idx cifar10. Needs a Swift toolchain with
# compiler-rt (swift.org's Linux toolchains ship libclang_rt.fuzzer_no_main).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}; shift || true
targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(jpeg png hdf5 safetensors npy idx cifar10)

toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swiftc)")")")
nomain=$(ls "$toolchain"/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a 2>/dev/null | head -1)
[ -n "$nomain" ] || { echo "no libclang_rt.fuzzer_no_main in $toolchain" >&2; exit 1; }
cov=edge,inline-8bit-counters,pc-table,trace-cmp
swift build --scratch-path .build-fuzz \
  -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=$cov -Xswiftc -use-ld=lld \
  -Xcc -fsanitize=address -Xcc -fsanitize-coverage=$cov -Xlinker "$nomain" 2>&1 | grep -v "Cannot export local symbol" | tail -3
bin=.build-fuzz/debug/vggtl-fuzz
mkdir -p crashes logs
# Seeds (small valid files from vggtl's writers) for a corpus that is not there yet.
[ -d corpus ] || FUZZ_MAKE_SEEDS=corpus ASAN_OPTIONS=detect_leaks=0 "$bin"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t: $seconds s"
  # -rss_limit_mb: the readers refuse huge headers before allocating; more means a bug.
  extra=()
  # libhdf5 itself crashes or hangs on some damaged files (the CLI isolates it, see
  # RELIABILITY.md): fork mode keeps fuzzing past those and counts them.
  [ "$t" = hdf5 ] && extra=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  FUZZ_TARGET=$t ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no "$bin" "corpus/$t" -max_total_time="$seconds" -max_len=65536 \
    -rss_limit_mb=2048 -timeout=10 -artifact_prefix="crashes/$t-" -print_final_stats=1 "${extra[@]}" >"logs/$t.log" 2>&1 || true
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|ERROR: |SUMMARY|Test unit written|oom/timeout/crash" "logs/$t.log" | tail -6 || true
  # Keep the corpus small: merge it into a fresh folder (coverage-preserving), then swap.
  rm -rf "corpus/.$t.min" && mkdir "corpus/.$t.min"
  if FUZZ_TARGET=$t ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no "$bin" -merge=1 -timeout=10 -rss_limit_mb=2048 \
       "corpus/.$t.min" "corpus/$t" >"logs/$t.merge.log" 2>&1 && [ -n "$(ls "corpus/.$t.min")" ]; then
    rm -rf "corpus/$t" && mv "corpus/.$t.min" "corpus/$t"
  else
    rm -rf "corpus/.$t.min"
  fi
  echo "   corpus: $(ls "corpus/$t" | wc -l) files"
done
