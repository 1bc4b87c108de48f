#!/usr/bin/env bash
# The one command for a GPU machine (CUDA + PyTorch 2.x, no Bun, no network), run from the project root
# after `bash .device/unpack.sh` (see scripts/pack-device.sh): builds the shim against PyTorch's libtorch,
# measures (bench-device on Llama-2-7B and Llama-3-8B shapes in bf16, with and without SDPA; bench on the
# shipped model in f32 and bf16; transformers as the peer), then runs the test suite on cuda in float32.
#   bash scripts/gpu-run.sh [OUTDIR]        OUTDIR defaults to $OUT
#   STEPS="build bench-device" bash scripts/gpu-run.sh OUTDIR    a subset, in the order given
#   STEPS="grown" ...   (not in the default list) stories260K and its head grown to Llama-2-7B's shapes in bf16
#                       (eagle grow --shape llama2-7b: ~13.5 GB written to /tmp, a few minutes on the CPU), then
#                       bench on cuda bf16: plain, eagle1, eagle2 and auto end to end with a real tau; into bench.json
# Each step has its own time limit; where one call may run 10 minutes at most, split the run in two on
# the same warm machine (build/ is kept): STEPS="build bench-device peer", then STEPS="bench tests".
# Writes at most 8 files to OUTDIR: summary.txt (environment, each step's exit status and time, the
# numbers side by side), build.log, tests.log, bench-device.json, bench-device-manual.json (ET_SDPA=0),
# bench.json, peer-hf.json, stderr.log. Exits 1 if a step failed (a peer that cannot run is not a failure).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-}}
[ -n "$out" ] || { echo "usage: bash scripts/gpu-run.sh OUTDIR (or set OUT)" >&2; exit 2; }
mkdir -p "$out"
export PATH="$PWD/.device/bin:$PATH"
command -v bun >/dev/null || { echo "gpu-run: no bun on the PATH: run bash .device/unpack.sh first" >&2; exit 1; }
# the npm packages the CLI imports travel in .device/node_modules (scripts/pack-device.sh)
[ -d node_modules/yargs ] || [ ! -d .device/node_modules ] || cp -r .device/node_modules node_modules
steps=${STEPS:-build bench-device peer bench tests}
summary=$out/summary.txt
failed=0

# step NAME LIMIT_S STDOUT_FILE COMMAND...: stdout to the file, stderr to stderr.log, status to the summary
step() {
  local name=$1 limit=$2 file=$3; shift 3
  echo "== $name: $*" >> "$summary"
  echo "== $name" >> "$out/stderr.log"
  local t0=$SECONDS rc
  timeout "$limit" "$@" > "$file" 2>> "$out/stderr.log"
  rc=$?
  echo "   exit $rc after $((SECONDS - t0)) s" >> "$summary"
  echo "gpu-run: $name: exit $rc after $((SECONDS - t0)) s" >&2
  return $rc
}

{
  echo "gpu-run $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,memory.total,memory.free,driver_version --format=csv,noheader 2>&1
  python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1
  echo "bun $(bun --version)"
} > "$summary"

for s in $steps; do
  case $s in
    build)
      step build 600 "$out/build.log" env LIBTORCH_USE_PYTORCH=1 bash scripts/build-shim.sh || failed=1 ;;
    bench-device)
      step bench-device 420 "$out/bench-device.json" bun src/cli.ts bench-device --shape llama2-7b,llama3-8b \
        --device cuda --dtype bf16 --json || failed=1
      step bench-device-manual 420 "$out/bench-device-manual.json" env ET_SDPA=0 bun src/cli.ts bench-device \
        --shape llama2-7b,llama3-8b --device cuda --dtype bf16 --json || failed=1 ;;
    peer)
      step peer 420 "$out/peer-hf.json" python3 scripts/peer-hf.py --shape llama2-7b,llama3-8b --device cuda --dtype bf16
      rc=$?; [ $rc -eq 0 ] || [ $rc -eq 3 ] || failed=1 ;;
    bench)
      # the shipped model in f32 (greedy outputs must be identical) and in bf16 (where they first differ
      # from plain decoding, and whether each difference is a near tie), kept together in bench.json
      step bench-f32 300 /tmp/eagle-bench-f32.json bun src/cli.ts bench --device cuda --dtype f32 --json || failed=1
      step bench-bf16 300 /tmp/eagle-bench-bf16.json bun src/cli.ts bench --device cuda --dtype bf16 -n 256 --json || failed=1
      python3 -c 'import json,sys
def load(p):
    try: return json.load(open(p))
    except Exception: return None
json.dump({"f32": load(sys.argv[1]), "bf16": load(sys.argv[2])}, open(sys.argv[3], "w"), indent=1)' \
        /tmp/eagle-bench-f32.json /tmp/eagle-bench-bf16.json "$out/bench.json" ;;
    grown)
      step grow 420 /dev/null bun src/cli.ts grow -m models/stories260K --shape llama2-7b --dtype bf16 \
        --out /tmp/stories-7b --force || failed=1
      step bench-grown 420 /tmp/eagle-bench-grown.json bun src/cli.ts bench -m /tmp/stories-7b --device cuda \
        --dtype bf16 -n 128 --json || failed=1
      # the step ratios on the same pair, its tau measured (bench-device -m)
      step bench-device-grown 300 "$out/bench-device-grown.json" bun src/cli.ts bench-device -m /tmp/stories-7b \
        --device cuda --dtype bf16 --json || failed=1
      python3 -c 'import json,sys
p = sys.argv[2]
try: doc = json.load(open(p))
except Exception: doc = {}
try: doc["grown_7b_bf16"] = json.load(open(sys.argv[1]))
except Exception as e: doc["grown_7b_bf16"] = {"error": str(e)}
json.dump(doc, open(p, "w"), indent=1)' /tmp/eagle-bench-grown.json "$out/bench.json" ;;
    tests)
      # every test file but the typecheck, which needs the TypeScript compiler (not carried)
      # on the GPU in float32: EAGLE_DEVICE makes the CLI and the in-process tests (test/support/device.ts) use cuda
      step tests 420 "$out/tests.log" env EAGLE_DEVICE=cuda EAGLE_DTYPE=f32 \
        sh -c 'exec bun test --timeout 120000 $(ls test/*.test.ts | grep -v typecheck) 2>&1' ||
        failed=1 ;;
    *) echo "gpu-run: unknown step $s (build bench-device peer bench tests grown)" >&2; exit 2 ;;
  esac
done

python3 scripts/gpu-summary.py "$out" >> "$summary" 2>&1
cat "$summary"
exit $failed
