// ffi.ts — where the shim lives and its raw dlopen table. Nothing here checks statuses: engine.ts does.
// ET_TRACE_FFI=1 wraps every symbol with a timer and prints a per-symbol table on exit.
import { dlopen, FFIType, type Pointer } from "bun:ffi";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { EagleError } from "../util/errors.ts";

const { i32, u64, ptr, cstring, void: none } = FFIType;

const symbols = {
  et_last_error: { args: [], returns: cstring },
  et_torch_version: { args: [], returns: cstring },
  et_cuda_available: { args: [], returns: i32 },
  et_cpu_kernels: { args: [], returns: cstring },
  et_set_threads: { args: [i32], returns: i32 },
  et_get_threads: { args: [ptr], returns: i32 },
  et_live_handles: { args: [ptr, i32], returns: i32 },
  et_cuda_memory: { args: [i32, ptr, ptr], returns: i32 },
  et_mmap_open: { args: [ptr, ptr, ptr], returns: i32 },
  et_mmap_free: { args: [ptr], returns: none },
  et_model_new: { args: [ptr, ptr, ptr], returns: i32 },
  et_model_set_weight: { args: [ptr, i32, i32, ptr, u64, u64, i32, ptr, i32], returns: i32 },
  et_model_finish: { args: [ptr], returns: i32 },
  et_model_share: { args: [ptr, ptr], returns: i32 },
  et_model_weight_bytes: { args: [ptr, ptr], returns: i32 },
  et_model_init_random: { args: [ptr, u64, FFIType.f32], returns: i32 },
  et_model_free: { args: [ptr], returns: none },
  et_kv_new: { args: [ptr, i32, ptr], returns: i32 },
  et_kv_len: { args: [ptr, ptr], returns: i32 },
  et_kv_capacity: { args: [ptr, ptr], returns: i32 },
  et_kv_truncate: { args: [ptr, i32], returns: i32 },
  et_kv_keep: { args: [ptr, i32, ptr, i32], returns: i32 },
  et_kv_free: { args: [ptr], returns: none },
  et_out_new: { args: [ptr], returns: i32 },
  et_out_free: { args: [ptr], returns: none },
  et_forward: { args: [ptr, ptr, ptr, ptr, i32, ptr, i32, ptr], returns: i32 },
  et_forward_batch: { args: [ptr, i32, ptr, ptr, ptr, ptr, ptr, ptr, ptr], returns: i32 },
  et_draft_forward_batch: { args: [ptr, i32, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr], returns: i32 },
  et_draft_forward: { args: [ptr, ptr, ptr, ptr, i32, ptr, i32, ptr, ptr, ptr], returns: i32 },
  et_out_rows: { args: [ptr, ptr], returns: i32 },
  et_out_argmax: { args: [ptr, ptr, i32, ptr], returns: i32 },
  et_out_argmax_each: { args: [i32, ptr, ptr, ptr], returns: i32 },
  et_out_topk: { args: [ptr, ptr, i32, i32, ptr, ptr], returns: i32 },
  et_out_logits_row: { args: [ptr, i32, ptr, i32], returns: i32 },
  et_out_hidden_row: { args: [ptr, i32, ptr, i32], returns: i32 },
  et_out_gather: { args: [ptr, ptr, ptr, i32, i32], returns: i32 },
  et_device_sync: { args: [i32, i32], returns: i32 },
  et_copy_bandwidth: { args: [i32, i32, u64, i32, ptr], returns: i32 },
  // ---- draft-head training (ffi/et_train.h), wrapped by src/train/trainer.ts
  et_trainer_new: { args: [ptr, ptr, ptr, u64, ptr], returns: i32 },
  et_trainer_free: { args: [ptr], returns: none },
  et_trainer_set_param: { args: [ptr, i32, ptr, FFIType.i64], returns: i32 },
  et_trainer_get_param: { args: [ptr, i32, ptr, FFIType.i64], returns: i32 },
  et_trainer_features: { args: [ptr, ptr, i32, i32], returns: i32 },
  et_trainer_data_size: { args: [ptr, i32, ptr, ptr], returns: i32 },
  et_trainer_step: { args: [ptr, i32, i32, FFIType.f32, FFIType.f32, FFIType.f32, u64, ptr], returns: i32 },
  et_trainer_eval: { args: [ptr, ptr], returns: i32 },
} as const;

export type { Pointer };
type Lib = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

/** The shim's path: ET_LIB if set, else build/libet.so in the checkout. */
export function shimPath(): string {
  return process.env.ET_LIB ?? join(import.meta.dir, "..", "..", "build", "libet.so");
}

let lib: Lib | null = null;

export function shim(): Lib {
  if (lib) return lib;
  const path = shimPath();
  if (!existsSync(path)) throw new EagleError(`shim not built: ${path} is missing (run: npm run setup; it needs libtorch: ` +
    "apt-get install libtorch-dev, or set LIBTORCH=/path/to/libtorch or LIBTORCH_USE_PYTORCH=1)");
  try {
    lib = dlopen(path, symbols).symbols;
  } catch (e) {
    throw new EagleError(`cannot load the shim ${path}: ${(e as Error).message} (if libtorch is what is missing: apt-get install libtorch-dev, ` +
      "or set LIBTORCH=/path/to/libtorch or LIBTORCH_USE_PYTORCH=1, then npm run setup)");
  }
  if (process.env.ET_TRACE_FFI === "1") lib = traced(lib);
  return lib;
}

interface TraceRow { calls: number; ms: number }

function traced(raw: Lib): Lib {
  const rows = new Map<string, TraceRow>();
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(raw)) {
    const row: TraceRow = { calls: 0, ms: 0 };
    rows.set(name, row);
    wrapped[name] = (...args: unknown[]) => {
      const t0 = performance.now();
      try {
        return (fn as (...a: unknown[]) => unknown)(...args);
      } finally {
        row.calls++;
        row.ms += performance.now() - t0;
      }
    };
  }
  process.on("exit", () => printTrace(rows));
  return wrapped as Lib;
}

function printTrace(rows: Map<string, TraceRow>): void {
  const used = [...rows].filter(([, r]) => r.calls > 0).sort((a, b) => b[1].ms - a[1].ms);
  process.stderr.write("ffi trace: symbol, calls, total ms, mean us\n");
  for (const [name, r] of used) {
    const mean = ((r.ms / r.calls) * 1000).toFixed(1);
    process.stderr.write(`  ${name.padEnd(24)} ${String(r.calls).padStart(8)} ${r.ms.toFixed(1).padStart(10)} ${mean.padStart(10)}\n`);
  }
}
