// the whole tree typechecks under tsconfig.json's strict settings
import { expect, test } from "bun:test";
import { join } from "node:path";
import { REPO_ROOT } from "../src/util/paths.ts";

test("tsc --noEmit reports no errors", () => {
  const p = Bun.spawnSync([process.execPath, join(REPO_ROOT, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", REPO_ROOT]);
  const out = p.stdout.toString() + p.stderr.toString();
  expect(out).toBe("");
  expect(p.exitCode).toBe(0);
});
