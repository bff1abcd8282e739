#!/usr/bin/env bash
# Builds vggtl in release mode and installs it as $PREFIX/bin/vggtl (PREFIX=/usr/local unless
# set), so that the README's `vggtl ...` lines run as written. The binary finds the Swift
# runtime in this toolchain (its RUNPATH); OpenBLAS, OpenCL, libjpeg, libpng and libhdf5 come
# from .ci/install-deps. The OpenCL kernels are inside the binary.
#   bash scripts/install.sh                    build, then install into /usr/local/bin
#   PREFIX=$HOME/.local bash scripts/install.sh
#   bash scripts/install.sh path/to/vggtl      install that binary without building
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
BIN=${1:-}
if [ -z "$BIN" ]; then
  swift build -c release --product vggtl
  BIN="$(swift build -c release --show-bin-path)/vggtl"
fi
[ -x "$BIN" ] || { echo "install.sh: $BIN is not an executable vggtl" >&2; exit 1; }
install -D -m 755 "$BIN" "$PREFIX/bin/vggtl"
echo "installed $PREFIX/bin/vggtl ($("$PREFIX/bin/vggtl" --version))"
case ":$PATH:" in
  *":$PREFIX/bin:"*) ;;
  *) echo "note: $PREFIX/bin is not on your PATH; add it (export PATH=\"$PREFIX/bin:\$PATH\") or run $PREFIX/bin/vggtl" ;;
esac
