#!/usr/bin/env bash
# Packs a release vggtl and every shared library it needs into .gpu/bundle.tar.xz, for
# scripts/gpu/run.sh on a GPU machine that has neither Swift nor Debian's packages: the Swift
# runtime, CLBlast, the OpenCL ICD loader, libjpeg/libpng/libhdf5/zlib and their dependencies,
# and OpenBLAS (dlopened at run time, so ldd does not list it). glibc, libstdc++ and libgcc_s
# stay behind: the machine has its own. (~33 MB; .gpu/ is git-ignored: name it in the device
# call's carry.)
#   scripts/gpu/bundle.sh                 builds `swift build -c release` first
#   scripts/gpu/bundle.sh path/to/vggtl   bundles that binary
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
BIN=${1:-}
if [ -z "$BIN" ]; then
  swift build -c release --product vggtl
  BIN="$(swift build -c release --show-bin-path)/vggtl"
fi
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib" .gpu
cp "$BIN" "$stage/vggtl"
system='/(libc|libm|libpthread|libdl|librt|libresolv|libstdc\+\+|libgcc_s)\.so|/ld-linux|linux-vdso'
deps() { ldd "$1" | awk '$3 ~ /^\// {print $3}' | { grep -v -E "$system" || true; }; }
for f in $(deps "$BIN"); do cp -Ln "$f" "$stage/lib/"; done
openblas=$(ldconfig -p | awk '/libopenblas\.so\.0 / {print $NF; exit}')
[ -n "$openblas" ] || { echo "libopenblas.so.0 not found (apt-get install libopenblas0-pthread)"; exit 1; }
cp -L "$openblas" "$stage/lib/libopenblas.so.0"
for f in $(deps "$openblas"); do cp -Ln "$f" "$stage/lib/"; done
# CLBlast's tuners (Debian's clblast-utils), for run.sh's optional TUNE=1 step: small, and they
# need only the OpenCL loader.
for t in clblast_tuner_xgemm clblast_tuner_xconvgemm; do
  [ -x "/usr/bin/$t" ] && cp "/usr/bin/$t" "$stage/"
done
missing=$(LD_LIBRARY_PATH="$stage/lib" ldd "$stage/vggtl" | grep "not found" || true)
[ -z "$missing" ] || { echo "not bundled: $missing"; exit 1; }
git rev-parse --short HEAD > "$stage/commit.txt"
tar cf - -C "$stage" . | xz -T2 -6 > .gpu/bundle.tar.xz
ls -la .gpu/bundle.tar.xz
