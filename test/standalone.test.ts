// the compiled executable: built with `bun build --compile`, it runs from an empty folder with no
// checkout and no node_modules, and prints what `bun src/cli.ts` prints.
import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../src/util/paths.ts";
import { makeTempDir } from "../src/model/random-model.ts";

const root = makeTempDir("eagle-exe-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

function run(cmd: string[], cwd: string, env: Record<string, string> = { HOME: join(root, "home") }): { code: number; stdout: string; stderr: string } {
  const p = Bun.spawnSync(cmd, { cwd, env: { PATH: "/usr/bin:/bin", NO_COLOR: "1", TMPDIR: join(root, "tmp"), ...env } });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

test("dist-style executable generates (auto with the shipped head), benches and reports errors without the source tree", () => {
  const exe = join(root, "eagle");
  const build = Bun.spawnSync([process.execPath, "build", "--compile", "--minify", join(REPO_ROOT, "src/standalone.ts"), "--outfile", exe]);
  expect(build.exitCode).toBe(0);
  const args = ["generate", "--temp", "0", "-n", "40", "--no-stats"];
  const fromExe = run([exe, ...args], root);
  expect(fromExe.code).toBe(0);
  expect(fromExe.stdout.startsWith("Once upon a time, there was a little girl named Lily.")).toBe(true);
  expect(fromExe.stdout).toBe(run([process.execPath, join(REPO_ROOT, "src/cli.ts"), ...args], REPO_ROOT).stdout);

  // the shipped head comes along: auto by default, same greedy text
  const withStats = run([exe, "generate", "--temp", "0", "-n", "40"], root);
  expect(withStats.stderr).toMatch(/auto: tau \d/);
  expect(withStats.stdout).toBe(fromExe.stdout);

  const bench = run([exe, "bench", "-n", "8", "--json"], root);
  expect(bench.code).toBe(0);
  const methods = JSON.parse(bench.stdout).methods.map((m: { name: string }) => m.name);
  expect(methods).toEqual(["none", "eagle1", "eagle2", "auto"]);

  // no usable home: the files unpack under the temp dir instead, with or without HOME set
  for (const env of [{ HOME: "/nonexistent" }, {}] as Record<string, string>[]) {
    const homeless = run([exe, "generate", "--temp", "0", "-n", "40", "--no-stats"], root, env);
    expect(homeless.stderr).toBe("");
    expect(homeless.stdout).toBe(fromExe.stdout);
  }

  const bad = run([exe, "generate", "-m", join(root, "missing")], root);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toMatch(/^eagle: .*missing: model directory not found/);
});
