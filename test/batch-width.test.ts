// The default of --parallel: the rule that picks a width from a measured curve, the series' end, a real
// measurement on the shipped model (its shape, not its speed), and batch's use of it: measured once,
// kept in the cache, measured again when the kept file is bad, not at all when --parallel is given.
import { afterAll, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chooseWidth, GAIN, MAX_WIDTH, measureWidth, WITHIN, type WidthPoint, widthSeriesEnds } from "../src/decoding/batch-width.ts";
import { loadModel, resolvePlacement } from "../src/model/loader.ts";
import { makeTempDir } from "../src/model/random-model.ts";
import { setThreads } from "../src/native/engine.ts";
import { DEFAULT_MODEL_DIR, REPO_ROOT } from "../src/util/paths.ts";

const root = makeTempDir("eagle-width-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

const curve = (...rates: number[]): WidthPoint[] => rates.map((tokensPerS, i) => ({ sequences: 2 ** i, tokensPerS }));

test("the width is the fewest sequences within 5% of the best throughput", () => {
  expect(chooseWidth(curve(100, 180, 300, 420, 430, 400))).toBe(8); // 420 >= 0.95 * 430
  expect(chooseWidth(curve(100, 180, 300, 400, 430, 400))).toBe(16); // 400 < 408.5
  expect(chooseWidth(curve(100, 90, 80))).toBe(1); // batching never gains
  expect(chooseWidth(curve(100, 200))).toBe(2);
  expect(chooseWidth([])).toBe(1);
  expect(WITHIN).toBe(0.95);
});

test("a series ends after `patience` doublings in a row that gain less than 5%", () => {
  expect(GAIN).toBe(1.05);
  expect(widthSeriesEnds(curve(100, 180), 1)).toBe(false);
  expect(widthSeriesEnds(curve(100, 104), 1)).toBe(true);
  expect(widthSeriesEnds(curve(100, 104), 2)).toBe(false); // too short to tell
  expect(widthSeriesEnds(curve(100, 180, 185), 2)).toBe(false); // one slow doubling: the next may gain again
  expect(widthSeriesEnds(curve(100, 180, 185, 190), 2)).toBe(true);
  expect(widthSeriesEnds(curve(100, 180, 185, 200), 2)).toBe(false);
  expect(widthSeriesEnds(curve(100, 180, 150, 140), 2)).toBe(true); // losing counts as not gaining
});

test("measured on the shipped model: doublings from 1, at least two, and the width chosen from them", () => {
  setThreads(1);
  const target = loadModel(DEFAULT_MODEL_DIR, resolvePlacement("cpu", "f32", DEFAULT_MODEL_DIR));
  try {
    const w = measureWidth(target);
    expect(w.curve.map((p) => p.sequences)).toEqual(w.curve.map((_, i) => 2 ** i));
    for (const p of w.curve) expect(p.tokensPerS).toBeGreaterThan(0);
    // two doublings at least: a fast model's series needs two without gain to end (a run of 4 sequences takes
    // a few ms, far under the time that ends a series early)
    expect(w.curve.length).toBeGreaterThanOrEqual(3);
    expect(w.curve.length).toBeLessThanOrEqual(Math.log2(MAX_WIDTH) + 1);
    expect(w.parallel).toBe(chooseWidth(w.curve));
  } finally {
    target.model.dispose();
  }
});

function batch(args: string[], cache: string) {
  const p = Bun.spawnSync([process.execPath, join(REPO_ROOT, "src/cli.ts"), "batch", "-t", "1", "-n", "4", "--temp", "0", "--spec", "none", ...args],
    { stdin: Buffer.from("Once upon a time\nThe dog\n"), env: { ...process.env, NO_COLOR: "1", XDG_CACHE_HOME: cache } });
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

test("batch measures the width once, keeps it, measures again when the kept file is bad, and skips it for --parallel", () => {
  const cache = join(root, "cache");
  const folder = join(cache, "eagle", "batch-width");
  const files = () => (existsSync(folder) ? readdirSync(folder).map((f) => join(folder, f)) : []);
  const given = batch(["--parallel", "3"], cache);
  expect(given.code).toBe(0);
  expect(given.stderr).toMatch(/, parallel 3\n$/);
  expect(files()).toEqual([]);

  const first = batch([], cache);
  expect(first.code).toBe(0);
  const [file] = files();
  const kept = JSON.parse(readFileSync(file, "utf8"))["batch-width"];
  expect(first.stderr).toEndWith(`, parallel ${kept.parallel} (measured)\n`);
  expect(kept.parallel).toBe(chooseWidth(kept.curve));
  const texts = (out: string) => out.trim().split("\n").map((l) => JSON.parse(l).text);
  expect(texts(first.stdout)).toEqual(texts(given.stdout)); // the same texts, whatever the width

  // a kept width is used as it is (one set by hand here: the run must not measure again)
  const saved = JSON.parse(readFileSync(file, "utf8"));
  writeFileSync(file, JSON.stringify({ ...saved, "batch-width": { parallel: 5, curve: [] } }));
  const mtime = statSync(file).mtimeMs;
  expect(batch([], cache).stderr).toEndWith(", parallel 5 (measured)\n");
  expect(statSync(file).mtimeMs).toBe(mtime);

  // a bad one is measured again and rewritten
  writeFileSync(file, JSON.stringify({ ...saved, "batch-width": { parallel: 0, curve: [] } }));
  const again = batch([], cache);
  expect(again.code).toBe(0);
  const rewritten = JSON.parse(readFileSync(file, "utf8"))["batch-width"];
  expect(rewritten.parallel).toBe(chooseWidth(rewritten.curve));
  expect(again.stderr).toEndWith(`, parallel ${rewritten.parallel} (measured)\n`);
});
