#!/usr/bin/env bash
# The whole set-up, idempotent and quick when nothing changed: npm packages (Bun comes from npm),
# libtorch (Debian's libtorch-dev when none is found and packages may be installed), the shim build.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo -n"
can_apt() { command -v apt-get >/dev/null && { [ -z "$sudo" ] || sudo -n true 2>/dev/null; }; }
missing_debs() { for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done; }

want=()
bash scripts/find-libtorch.sh >/dev/null 2>&1 || want+=(libtorch-dev)
# Debian's libtorch calls whichever BLAS the system selects; the reference BLAS it pulls in by default
# is single-threaded and ~20x slower than OpenBLAS on matrix products
if [ ${#want[@]} -gt 0 ] || grep -q '^system$' build/libtorch-source 2>/dev/null; then
  command -v dpkg >/dev/null && want+=($(missing_debs libopenblas0-openmp))
fi
# test/chat.test.ts drives the chat REPL through a pseudo-terminal
command -v tmux >/dev/null || want+=(tmux)
if [ ${#want[@]} -gt 0 ]; then
  if can_apt; then
    echo "setup: installing Debian packages: ${want[*]}" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${want[@]}" >/dev/null
  elif [[ " ${want[*]} " == *" libtorch-dev "* ]]; then
    bash scripts/find-libtorch.sh >/dev/null # prints what to install or set, and fails
  else
    echo "setup: warning: cannot install ${want[*]} (libopenblas0-openmp: fast CPU matrix products; tmux: the chat test)" >&2
  fi
fi

bash scripts/build-shim.sh
