#!/usr/bin/env bash
# Finds libtorch the way tch-rs does and prints shell assignments:
#   TORCH_INCLUDES  TORCH_LIBDIR  TORCH_CXX11_ABI  TORCH_SOURCE
# Order: LIBTORCH_USE_PYTORCH=1 (the libtorch inside an installed PyTorch), LIBTORCH (the official
# prebuilt archive layout), LIBTORCH_INCLUDE + LIBTORCH_LIB, then the system (Debian's libtorch-dev).
# Exits 1 with one line on stderr when none is found.
set -euo pipefail

emit() { # include-root lib-dir abi source
  local inc="-isystem $1/torch/csrc/api/include"
  [ "$1" = /usr/include ] || inc="-isystem $1 $inc" # never reorder the system include path
  printf 'TORCH_INCLUDES=%q\n' "$inc"
  printf 'TORCH_LIBDIR=%q\nTORCH_CXX11_ABI=%q\nTORCH_SOURCE=%q\n' "$2" "$3" "$4"
  exit 0
}
need_lib() { [ -e "$1/libtorch.so" ] || { echo "eagle: no libtorch.so in $1 ($2)" >&2; exit 1; }; }

if [ "${LIBTORCH_USE_PYTORCH:-0}" = "1" ]; then
  py=${PYTHON:-python3}
  root=$("$py" -c 'import torch,os;print(os.path.dirname(torch.__file__))') ||
    { echo "eagle: LIBTORCH_USE_PYTORCH=1 but '$py -c \"import torch\"' failed: install PyTorch or unset it" >&2; exit 1; }
  abi=$("$py" -c 'import torch;print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
  need_lib "$root/lib" "PyTorch at $root"
  emit "$root/include" "$root/lib" "$abi" "pytorch:$root"
fi
if [ -n "${LIBTORCH:-}" ]; then
  need_lib "$LIBTORCH/lib" "LIBTORCH=$LIBTORCH"
  emit "$LIBTORCH/include" "$LIBTORCH/lib" "${LIBTORCH_CXX11_ABI:-1}" "LIBTORCH=$LIBTORCH"
fi
if [ -n "${LIBTORCH_INCLUDE:-}" ] || [ -n "${LIBTORCH_LIB:-}" ]; then
  [ -n "${LIBTORCH_INCLUDE:-}" ] && [ -n "${LIBTORCH_LIB:-}" ] ||
    { echo "eagle: set both LIBTORCH_INCLUDE and LIBTORCH_LIB, or neither" >&2; exit 1; }
  need_lib "$LIBTORCH_LIB" "LIBTORCH_LIB"
  emit "$LIBTORCH_INCLUDE" "$LIBTORCH_LIB" "${LIBTORCH_CXX11_ABI:-1}" "LIBTORCH_INCLUDE/LIBTORCH_LIB"
fi
for lib in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib; do
  if [ -e "$lib/libtorch.so" ] && [ -e /usr/include/torch/csrc/api/include/torch/torch.h ]; then
    emit /usr/include "$lib" 1 "system"
  fi
done
echo "eagle: libtorch not found: install it (Debian: apt-get install libtorch-dev), or set LIBTORCH to an unpacked libtorch archive, or LIBTORCH_USE_PYTORCH=1 to use PyTorch's" >&2
exit 1
