// bench --parallel: the batch curve. Each method at each width over the same workload, every item's tokens
// the same at every width (and, greedy, across methods), the ratios taken from the same run.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { curveItems, outputsAgree } from "../src/bench/batch-curve.ts";

const CLI = join(import.meta.dir, "..", "src", "cli.ts");

function bench(args: string[]) {
  const p = Bun.spawnSync([process.execPath, CLI, "bench", ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

test("the workload: the prompts in turn, as many items as asked", () => {
  expect(curveItems([[1], [2, 3]], 5)).toEqual([[1], [2, 3], [1], [2, 3], [1]]);
});

test("outputs agree: a method's at every width; greedy across methods; sampled, eagle1 apart", () => {
  const a = [[1, 2], [3]], b = [[1, 2], [4]];
  expect(outputsAgree([{ method: "none", outputs: a }, { method: "auto", outputs: a }], 0)).toBe(true);
  expect(outputsAgree([{ method: "none", outputs: a }, { method: "none", outputs: b }], 0)).toBe(false); // a width changed an item
  expect(outputsAgree([{ method: "none", outputs: a }, { method: "auto", outputs: b }], 0)).toBe(false);
  expect(outputsAgree([{ method: "none", outputs: a }, { method: "eagle1", outputs: b }], 1)).toBe(true);
  expect(outputsAgree([{ method: "eagle1", outputs: a }, { method: "eagle1", outputs: b }], 1)).toBe(false);
});

test("bench --parallel: every method at every width, the items' tokens and the ratios from the same run", () => {
  const r = bench(["--json", "--parallel", "1", "3", "-n", "12", "--items", "5", "--methods", "none", "eagle2", "--repeat", "2"]);
  expect(r.code).toBe(0);
  const report = JSON.parse(r.out);
  expect(report.workload).toMatchObject({ items: 5, prompts: 8, new_tokens: 12, repeat: 2 });
  expect(report.identical_outputs).toBe(true);
  expect(report.points.map((p: { method: string; parallel: number }) => `${p.method}@${p.parallel}`))
    .toEqual(["none@1", "eagle2@1", "none@3", "eagle2@3"]);
  for (const p of report.points) {
    expect(p.tokens).toBe(5 * 12 * 2); // end-of-sequence ignored: a fixed workload
    expect(p.tokens_per_s).toBeCloseTo((p.tokens * 1000) / p.ms, 6);
    if (p.parallel === 1) expect(p.vs_sequential).toBe(1);
    if (p.parallel === 1) expect(p.mean_batch).toBe(1);
    else expect(p.mean_batch).toBeGreaterThan(1.5); // 5 items 3 at a time: 3 running, then 2
    expect(p.mean_batch).toBeLessThanOrEqual(p.parallel);
    if (p.method === "none") expect(p.tau).toBe(1);
    else expect(p.tau).toBeGreaterThan(1.5); // eagle2 drafts real trees inside the batch too
  }
  const plainAt3 = report.points.find((p: { method: string; parallel: number }) => p.method === "none" && p.parallel === 3);
  expect(plainAt3.vs_plain_sequential).toBeCloseTo(plainAt3.vs_sequential, 9);
});

test("bench --parallel prints the curve; sampled, the items keep their seeds at every width", () => {
  const r = bench(["--parallel", "2", "1", "-n", "8", "--items", "3", "--temp", "1", "--methods", "none", "auto"]);
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/^none +1 +[\d.]+ +1\.00x +1\.00x +1\.00 +1\.0$/m);
  expect(r.out).toMatch(/^auto +2 +[\d.]+ +[\d.]+x +[\d.]+x +[\d.]+ +[\d.]+$/m);
  expect(r.out).toContain("sampled outputs identical across widths (and methods but eagle1: the same seeds): yes");
});

test("bench --parallel: a width outside 1..4096, a bad --items or --peer is refused up front", () => {
  expect(bench(["--parallel", "0"]).code).toBe(2);
  expect(bench(["--parallel", "2", "--items", "0"]).code).not.toBe(0);
  const peer = bench(["--parallel", "2", "--peer", "llama.cpp"]);
  expect(peer.code).toBe(2);
  expect(peer.err).toContain("--peer");
});
