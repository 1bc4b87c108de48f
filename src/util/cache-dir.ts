// cache-dir.ts — where eagle keeps what it can rebuild (measured step costs, extracted files): the first
// writable of $XDG_CACHE_HOME/eagle, ~/.cache/eagle and a private folder under the temp dir; null when
// none is writable (callers then rebuild each time).
import { accessSync, constants, mkdirSync } from "node:fs";
import { homedir, tmpdir, userInfo } from "node:os";
import { join } from "node:path";

function writable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false; // read-only, missing parent we may not create, not a folder: try the next
  }
}

function candidates(): string[] {
  const out: string[] = [];
  if (process.env.XDG_CACHE_HOME) out.push(join(process.env.XDG_CACHE_HOME, "eagle"));
  let home = "";
  try {
    home = homedir();
  } catch {
    home = ""; // no home directory at all
  }
  if (home) out.push(join(home, ".cache", "eagle"));
  let user = "user";
  try {
    user = String(userInfo().uid);
  } catch {
    user = "user";
  }
  out.push(join(tmpdir(), `eagle-${user}`));
  return out;
}

let chosen: string | null | undefined;

/** The cache folder (made if needed), or null if no candidate is writable. */
export function cacheDir(): string | null {
  if (chosen === undefined) chosen = candidates().find(writable) ?? null;
  return chosen;
}
