#!/usr/bin/env bash
# Builds dist/eagle: one executable carrying Bun, the CLI, the shim and the shipped model. It runs on a
# machine with the same libtorch (the shim links it by path); nothing else from this checkout is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p dist
node_modules/.bin/bun build --compile --minify src/standalone.ts --outfile dist/eagle >&2
echo "built dist/eagle ($(du -h dist/eagle | cut -f1))" >&2
