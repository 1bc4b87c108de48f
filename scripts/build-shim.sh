#!/usr/bin/env bash
# Builds build/libet.so from ffi/ against the libtorch that find-libtorch.sh finds. Incremental: make
# rebuilds only what changed, and everything when the libtorch or the flags change.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/find-libtorch.sh)"
mkdir -p build
flags="-D_GLIBCXX_USE_CXX11_ABI=$TORCH_CXX11_ABI $TORCH_INCLUDES"
libs="-L$TORCH_LIBDIR -Wl,-rpath,$TORCH_LIBDIR -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10"
[ -e "$TORCH_LIBDIR/libtorch_cuda.so" ] && libs="$libs -ltorch_cuda -lc10_cuda"
libs="$libs -Wl,--as-needed"
# a changed libtorch or flag set touches build/flags, which every object depends on
printf '%s\n%s\n' "$flags" "$libs" > build/flags.new
if cmp -s build/flags.new build/flags; then rm build/flags.new; else mv build/flags.new build/flags; fi
make -s -C ffi -j"$(nproc)" BUILD="$PWD/build" TORCH_FLAGS="$flags" TORCH_LIBS="$libs"
echo "$TORCH_SOURCE" > build/libtorch-source
