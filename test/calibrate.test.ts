// auto's calibration on the shipped pair, measured for real: every field a cost, and the host's own time
// for drafting (from real drafted rounds) above a plain round's, and the draft's acceptance from a real run. No
// bound here depends on this machine's speed.
import { afterAll, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { measureCosts } from "../src/decoding/calibrate.ts";
import { stepUs } from "../src/decoding/cost-model.ts";
import { loadDraft } from "../src/model/draft.ts";
import { loadModel } from "../src/model/loader.ts";
import { makeTempDir } from "../src/model/random-model.ts";
import { DEFAULT_MODEL_DIR, REPO_ROOT } from "../src/util/paths.ts";
import { TEST_PLACEMENT } from "./support/device.ts";

const target = loadModel(DEFAULT_MODEL_DIR, TEST_PLACEMENT);
const head = loadDraft(`${DEFAULT_MODEL_DIR}-eagle`, target);
afterAll(() => {
  head.model.dispose();
  target.model.dispose();
});

test("measureCosts: finite, non-negative costs; drafting costs the host a pass and a round's planning beyond a plain round", () => {
  const c = measureCosts(target, head);
  for (const step of [c.target, c.draft]) {
    const { table, ...line } = step;
    for (const v of Object.values(line)) {
      expect(Number.isFinite(v)).toBe(true);
      expect(v).toBeGreaterThanOrEqual(0);
    }
    expect(stepUs(step, 1, 32)).toBeGreaterThan(0);
    expect(stepUs(step, 16, 32)).toBeGreaterThan(stepUs(step, 1, 32)); // more rows never cost less
    if (step === c.draft) expect(table).toBeUndefined();
  }
  // the target's 1-8 tokens as measured, never falling
  const table = c.target.table!;
  expect(table.length).toBe(8);
  table.forEach((us, i) => expect(us).toBeGreaterThanOrEqual(i === 0 ? 0 : table[i - 1]));
  expect(table[0]).toBeGreaterThan(0);
  for (const v of [c.roundUs, c.buildUs, c.passUs, c.batch!.oneUs, c.batch!.twoUs]) expect(Number.isFinite(v)).toBe(true);
  expect(c.roundUs).toBeGreaterThan(0);
  // a drafted round plans a tree (the root's candidates, the tree, the catch-up's bookkeeping) on top of a plain
  // round's work, and every pass builds a level: both are host time a plain round does not spend
  expect(c.buildUs).toBeGreaterThan(0);
  expect(c.passUs).toBeGreaterThan(0);
  expect(c.batch!.twoUs).toBeGreaterThan(0);
  // the draft's acceptance by its confidence, from a real greedy run: hundreds of outcomes, at many levels
  const a = c.acceptance!;
  const seen = a.seen.reduce((x, y) => x + y, 0);
  expect(seen).toBeGreaterThan(100);
  expect(a.seen.filter((n) => n > 0).length).toBeGreaterThan(5);
  a.accepted.forEach((n, k) => expect(n).toBeLessThanOrEqual(a.seen[k]));
  expect(a.accepted.reduce((x, y) => x + y, 0)).toBeGreaterThan(0);
  // and how far its first choices carry, from the same run: rounds by the dozen, fewer at each depth
  const chain = c.chain!;
  expect(chain.seen[0]).toBeGreaterThanOrEqual(40);
  chain.accepted.forEach((n, d) => {
    expect(n).toBeLessThanOrEqual(chain.seen[d]);
    if (d > 0) expect(chain.seen[d]).toBeLessThanOrEqual(chain.accepted[d - 1]); // a depth is reached through the one above
  });
  expect(chain.accepted[0]).toBeGreaterThan(chain.seen[0] / 2); // the shipped head's first choice is mostly right
  // and what a sampled run's matched verification would accept of it: probabilities, at most one per round
  chain.sampled.forEach((p, d) => {
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThanOrEqual(chain.seen[d]);
  });
  expect(chain.sampled[0]).toBeGreaterThan(chain.seen[0] / 4);
});

test("a cached cost model that prices rounds far above what they cost is dropped by a run, and measured again by the next", () => {
  const cache = makeTempDir("eagle-review-");
  const env = { ...process.env, XDG_CACHE_HOME: cache };
  const generate = () => Bun.spawnSync([process.execPath, "src/cli.ts", "generate", "-p", "Once upon a time", "-n", "300",
    "--ignore-eos", "--temp", "0", "--spec", "auto"], { cwd: REPO_ROOT, env });
  const costFiles = () => {
    const dir = join(cache, "eagle", "costs");
    return existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : [];
  };
  try {
    expect(generate().exitCode).toBe(0);
    const [file] = costFiles();
    expect(file).toBeDefined();
    // as if measured while the machine was a thousand times busier: every time priced 1000x
    const saved = JSON.parse(readFileSync(file, "utf8"));
    const inflate = (v: unknown): unknown => typeof v === "number" ? v * 1000 : Array.isArray(v) ? v.map(inflate)
      : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, inflate(x)])) : v;
    // (times only: the acceptance counts are outcomes, not times)
    const outcomes = { acceptance: saved.costs.acceptance, chain: saved.costs.chain };
    writeFileSync(file, JSON.stringify({ ...saved, costs: { ...(inflate(saved.costs) as object), ...outcomes } }));
    expect(generate().exitCode).toBe(0); // 300 rounds at most, each far under the 1000x price
    expect(costFiles()).toEqual([]);
    expect(generate().exitCode).toBe(0);
    expect(JSON.parse(readFileSync(costFiles()[0], "utf8")).costs).not.toEqual(inflate(saved.costs));
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});
