// measured-cache.ts — what eagle measures of this machine once and keeps under the cache folder (auto's
// step costs, the default batch width): one JSON file a measurement, named by a hash of everything that
// changes it, measured again when the file is missing, unreadable or holds another key.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { LoadedModel } from "../model/loader.ts";
import { cpuKernels, threadCount, torchVersion } from "../native/engine.ts";
import { shimPath } from "../native/ffi.ts";
import { writeFileAtomic } from "../util/atomic-write.ts";
import { cacheDir } from "../util/cache-dir.ts";
import { clearStatus, showStatus } from "../util/status-line.ts";

/** A model folder's weights and settings files, each with its size and time (a changed file is a new model). */
export function folderStamp(dir: string): string[] {
  return readdirSync(dir).filter((f) => /\.(json|safetensors|bin)$/.test(f)).sort().map((f) => {
    const st = statSync(join(dir, f));
    return `${f}:${st.size}:${st.mtimeMs}`;
  });
}

/** What a timing of `target` depends on besides its files: where and how it runs, and the shim's build
 * (a new one may be faster). */
export function runtimeStamp(target: LoadedModel): Record<string, unknown> {
  const shim = statSync(shimPath());
  return {
    placement: target.placement, threads: threadCount(), kernels: cpuKernels(), torch: torchVersion(),
    shim: `${shim.size}:${shim.mtimeMs}`,
  };
}

/** A measurement and the file that keeps it (null: no cache folder). */
export interface Cached<T> {
  value: T;
  file: string | null;
}

/**
 * The value kept for `key` in `folder` of the cache (its file's field of the same name), checked by `check` (which throws on a bad one: then it
 * is measured again); or measured now, with `status` shown while it runs, and kept. A cache that cannot be
 * written only means measuring again next time.
 */
export function cachedMeasurement<T>(folder: string, key: string, status: string, measure: () => T,
  check: (raw: unknown, file: string) => T): Cached<T> {
  const dir = cacheDir();
  const file = dir ? join(dir, folder, `${createHash("sha256").update(key).digest("hex").slice(0, 24)}.json`) : null;
  if (file && existsSync(file)) {
    try {
      const kept = JSON.parse(readFileSync(file, "utf8"));
      if (kept.key === key) return { value: check(kept[folder], file), file };
    } catch {
      // unreadable or from another version: measured again below and rewritten
    }
  }
  showStatus(status);
  let value: T;
  try {
    value = measure();
  } finally {
    clearStatus();
  }
  if (file) {
    try {
      mkdirSync(dirname(file), { recursive: true });
      writeFileAtomic(file, `${JSON.stringify({ key, [folder]: value, measured: new Date().toISOString() }, null, 2)}\n`);
    } catch {
      // measured again next time
    }
  }
  return { value, file };
}
