#!/usr/bin/env bash
# Stages .device/ (ignored) for an offline GPU machine: bun and the shared models through
# ../shared/device/pack.sh, plus the npm packages the CLI imports at run time (chalk, yargs, the
# tokenizer and template packages with their dependencies; not bun, not the TypeScript compiler).
# Then, there: bash .device/unpack.sh && bash scripts/gpu-run.sh OUTDIR  (carrying .device).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ../shared/device/pack.sh
rm -rf .device/node_modules && mkdir -p .device/node_modules
skip=" bun bun-types typescript @typescript @types @oven undici-types "
for pkg in node_modules/*; do
  [[ $skip == *" ${pkg#node_modules/} "* ]] || cp -r "$pkg" .device/node_modules/
done
du -sh .device
