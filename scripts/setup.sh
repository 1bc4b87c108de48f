#!/usr/bin/env bash
# The whole set-up, idempotent and quick when nothing changed: npm packages (Bun comes from npm),
# libtorch (Debian's libtorch-dev when none is found and packages may be installed), the shim build.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

if ! bash scripts/find-libtorch.sh >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if command -v apt-get >/dev/null && { [ -z "$sudo" ] || sudo -n true 2>/dev/null; }; then
    echo "setup: no libtorch found; installing Debian's libtorch-dev" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libtorch-dev >/dev/null
  else
    bash scripts/find-libtorch.sh >/dev/null # prints what to install or set, and fails
  fi
fi

bash scripts/build-shim.sh
