#!/usr/bin/env bash
# Builds build/libet.so from ffi/ against the libtorch that find-libtorch.sh finds. Incremental: make
# rebuilds only what changed, and everything when the libtorch or the flags change.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/find-libtorch.sh)"
mkdir -p build
# C++17, unless the libtorch's headers demand C++20 (newer PyTorch releases refuse older standards)
std=c++17
for dir in $TORCH_INCLUDES; do
  [ "$dir" = -isystem ] && continue
  if grep -qs "C++20 or later" "$dir/ATen/ATen.h" "$dir/torch/all.h"; then std=c++20; fi
done
flags="-D_GLIBCXX_USE_CXX11_ABI=$TORCH_CXX11_ABI $TORCH_INCLUDES"
libs="-L$TORCH_LIBDIR -Wl,-rpath,$TORCH_LIBDIR -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10"
[ -e "$TORCH_LIBDIR/libtorch_cuda.so" ] && libs="$libs -ltorch_cuda -lc10_cuda"
libs="$libs -Wl,--as-needed"
# a changed libtorch or flag set touches build/flags, which every object depends on
printf '%s\n%s\n%s\n' "$flags" "$libs" "$std" > build/flags.new
if cmp -s build/flags.new build/flags; then rm build/flags.new; else mv build/flags.new build/flags; fi
make -s -C ffi -j"$(nproc)" BUILD="$PWD/build" CXXSTD="$std" TORCH_FLAGS="$flags" TORCH_LIBS="$libs"
echo "$TORCH_SOURCE" > build/libtorch-source
