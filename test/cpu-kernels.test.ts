// the float32 CPU kernels (ffi/cpu_kernels*.{h,cpp}): every instruction set this CPU runs, and libtorch's
// path (ET_CPU_KERNELS=0), pass the shim's reference tests; and a token's logits are the same bits
// whether it is decoded alone or verified inside a tree, which makes greedy EAGLE identical to plain
// decoding by construction.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { cpuKernels, forward, KvCache, setThreads, StepOutput, threadCount } from "../src/native/engine.ts";
import { type LoadedModel, loadModel, resolvePlacement } from "../src/model/loader.ts";
import { RANDOM_SPECS, makeTempDir, writeRandomModel } from "../src/model/random-model.ts";
import { readSafetensorsHeader, readTensorF32, writeSafetensors } from "../src/formats/safetensors.ts";
import { REPO_ROOT } from "../src/util/paths.ts";
import { TEST_PLACEMENT } from "./support/device.ts";

const onCpu = TEST_PLACEMENT.device === "cpu";

function run(args: string[], env: Record<string, string>): { code: number; out: string } {
  const p = Bun.spawnSync([process.execPath, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
  return { code: p.exitCode ?? -1, out: p.stdout.toString() + p.stderr.toString() };
}

function isaUnder(env: Record<string, string>): string {
  const r = run(["-e", 'import { cpuKernels } from "./src/native/engine.ts"; console.log(cpuKernels())'], env);
  expect(r.code).toBe(0);
  return r.out.trim();
}

const ISAS = ["generic", "avx2", "avx512", "avx512bf16"];
/** The table whose bfloat16 products round their inputs to bfloat16 (the dot-product instruction). */
const roundsInputs = () => cpuKernels() === "avx512bf16";

describe("instruction sets", () => {
  const native = cpuKernels();
  const wanted = ISAS.filter((isa) => isaUnder({ ET_CPU_ISA: isa }) === isa);

  test("the kernels run, and ET_CPU_ISA / ET_CPU_KERNELS are obeyed", () => {
    expect(ISAS).toContain(native);
    expect(wanted).toContain("generic"); // every CPU runs the baseline
    expect(wanted).toContain(native);
    expect(isaUnder({ ET_CPU_KERNELS: "0" })).toBe("off");
  });

  // the vector tables differ in width, not in arithmetic: each output lane is the same chain of fused
  // multiply-adds (8-float heads, for one, take two cache slots a vector on AVX-512 and one on AVX2)
  test("AVX2 and AVX-512 give the same float32 logits, bit for bit: prompts, and a tree over slots that are not consecutive", () => {
    const vector = ["avx2", "avx512", "avx512bf16"].filter((isa) => wanted.includes(isa));
    if (vector.length < 2) return; // this CPU runs one of them at most
    const root = makeTempDir("eagle-isa-bits-");
    try {
      const dirs = [`${REPO_ROOT}/models/stories260K`];
      for (const spec of RANDOM_SPECS.filter((s) => ["llama-mha", "llama-gqa-tied", "llama3-headdim", "narrow-heads"].includes(s.name))) {
        const dir = join(root, spec.name);
        mkdirSync(dir);
        writeRandomModel(dir, spec, 3);
        dirs.push(dir);
      }
      const digests = vector.map((isa) => {
        const r = run(["test/support/logit-bits.ts", ...dirs], { ET_CPU_ISA: isa });
        expect(r.code).toBe(0);
        return r.out.trim();
      });
      expect(digests[0].split("\n")).toHaveLength(dirs.length);
      for (const d of digests.slice(1)) expect(d).toBe(digests[0]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  // each run is the whole shim reference suite (every random shape against the TypeScript forward) and the
  // int8 heads' products
  const settings: Record<string, string>[] = [...ISAS.map((isa) => ({ ET_CPU_ISA: isa })), { ET_CPU_KERNELS: "0" }];
  for (const env of settings) {
    const name = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ");
    test(`the shim's reference tests and int8 heads pass under ${name}`, () => {
      if (env.ET_CPU_ISA && !wanted.includes(env.ET_CPU_ISA)) return; // this CPU lacks it
      const r = run(["test", "test/shim.test.ts", "test/int8-head.test.ts"], env);
      expect(r.out).toMatch(/\b0 fail\b/);
      expect(r.code).toBe(0);
    });
  }
});

// node: parent (depth): 0 root, 1: 0, 2: 0, 3: 1, 4: 1, 5: 3, 6: 2
const PARENTS = [-1, 0, 0, 1, 1, 3, 2, 5];

function pathTo(node: number): number[] {
  const path: number[] = [];
  for (let n = node; n !== -1; n = PARENTS[n]) path.unshift(n);
  return path;
}

// the first `n` nodes of PARENTS (parents come first, so any prefix is a tree) verified in one forward after a
// prompt, against each node's path decoded one token at a time: the same logits, bit for bit
function expectTreeRowsAsAlone(loaded: LoadedModel, n: number): void {
  const vocab = loaded.config.vocabSize;
  const parents = PARENTS.slice(0, n);
  const prompt = Int32Array.from({ length: 9 }, (_, i) => 1 + ((i * 37) % (vocab - 1)));
  const treeTokens = Int32Array.from(parents, (_, i) => 2 + ((i * 53) % (vocab - 2)));
  const depth = parents.map((_, i) => pathTo(i).length - 1);
  const mask = new Uint8Array(n * n);
  parents.forEach((_, i) => pathTo(i).forEach((a) => (mask[i * n + a] = 1)));

  const kv = KvCache.create(loaded.model, 64);
  const out = StepOutput.create();
  forward(loaded.model, kv, { tokens: prompt, positions: Int32Array.from(prompt, (_, i) => i) }, out);
  forward(loaded.model, kv, { tokens: treeTokens, positions: Int32Array.from(depth, (d) => prompt.length + d), mask }, out);
  const tree = parents.map((_, i) => out.logitsRow(i, new Float32Array(vocab)));

  for (let node = 0; node < n; node++) {
    const alone = KvCache.create(loaded.model, 64);
    const single = StepOutput.create();
    forward(loaded.model, alone, { tokens: prompt, positions: Int32Array.from(prompt, (_, i) => i) }, single);
    for (const a of pathTo(node)) {
      const pos = prompt.length + depth[a];
      forward(loaded.model, alone, { tokens: Int32Array.of(treeTokens[a]), positions: Int32Array.of(pos) }, single);
    }
    expect(Array.from(single.logitsRow(0, new Float32Array(vocab)))).toEqual(Array.from(tree[node]));
    single.dispose();
    alone.dispose();
  }
  out.dispose();
  kv.dispose();
}

// products of at least 1 MiB of weights: on AVX2 a few rows take the streamed path there (groups of 3 and 2
// rows, block by block of inputs; a later group of 3 one panel at a time)
const WIDE = { name: "wide", hiddenSize: 512, intermediateSize: 1024, layers: 2, heads: 8, kvHeads: 4, vocabSize: 2048 };

describe("batch invariance", () => {
  const root = makeTempDir("eagle-cpu-kernels-");
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const specs = [...RANDOM_SPECS.filter((s, i) => i < 4 || s.name === "narrow-heads"), WIDE];
  for (const spec of specs) {
    let loaded: LoadedModel;
    beforeAll(() => {
      const dir = join(root, spec.name);
      mkdirSync(dir);
      writeRandomModel(dir, spec, 11);
      loaded = loadModel(dir, TEST_PLACEMENT);
    });
    afterAll(() => loaded.model.dispose());

    const sizes = spec === WIDE ? [2, 3, 4, 5, 6, 7, 8] : [PARENTS.length];
    test(`${spec.name}: tree rows equal the same tokens decoded one at a time, bit for bit (trees of ${sizes.join(", ")})`, () => {
      if (!onCpu || cpuKernels() === "off" || loaded.placement.dtype !== "f32") return;
      for (const n of sizes) expectTreeRowsAsAlone(loaded, n);
    });
  }
});

// argmax: the lowest id among equal maxima, wherever they fall in the row (the kernels compare a vector of
// logits at a time). An LM head whose rows repeat makes whole ranks of tokens tie: rows 37 and 300 one vector,
// every other row its negation, so each row's maximum is held either by 37 and 300 or by all the others.
test("argmax picks the lowest id among tied maxima, on every kernel table", () => {
  if (!onCpu) return;
  const root = makeTempDir("eagle-cpu-ties-");
  try {
    const spec = RANDOM_SPECS.find((s) => s.name === "llama-mha")!;
    writeRandomModel(root, spec, 9);
    const file = join(root, "model.safetensors");
    const infos = readSafetensorsHeader(file);
    const tensors = infos.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: readTensorF32(t) }));
    const head = tensors.find((t) => t.name === "lm_head.weight")!;
    const h = spec.hiddenSize;
    for (let r = 0; r < spec.vocabSize; r++)
      for (let k = 0; k < h; k++) head.data[r * h + k] = (r === 37 || r === 300 ? 1 : -1) * ((k % 7) - 3) / 8;
    writeSafetensors(file, tensors, { format: "pt" });
    const script = `import { loadModel } from "./src/model/loader.ts";
      import { forward, KvCache, StepOutput } from "./src/native/engine.ts";
      const m = loadModel(${JSON.stringify(root)}, { device: "cpu", dtype: "f32" });
      const kv = KvCache.create(m.model, 64), out = StepOutput.create();
      const tokens = Int32Array.from({ length: 40 }, (_, i) => 1 + ((i * 97) % 500));
      forward(m.model, kv, { tokens, positions: Int32Array.from(tokens, (_, i) => i) }, out);
      const firstMax = (r) => { const row = out.logitsRow(r, new Float32Array(${spec.vocabSize})); let b = 0;
        for (let i = 1; i < row.length; i++) if (row[i] > row[b]) b = i; return b; };
      const want = Array.from(tokens, (_, r) => firstMax(r));
      console.log(JSON.stringify({ want, got: Array.from(out.argmax()) }));`;
    const seen = new Set<number>();
    const settings: Record<string, string>[] = [...["generic", "avx2", "avx512", "avx512bf16"].map((isa) => ({ ET_CPU_ISA: isa })), { ET_CPU_KERNELS: "0" }];
    for (const env of settings) {
      const r = run(["-e", script], env);
      expect(r.code).toBe(0);
      const { want, got } = JSON.parse(r.out.trim().split("\n").pop()!);
      expect(got).toEqual(want);
      if (env.ET_CPU_ISA) for (const w of want) seen.add(w); // (libtorch's product may round the rows apart)
    }
    expect([...seen].sort((a, b) => a - b)).toEqual([0, 37]); // both kinds of tie occurred on the kernels
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

// a forward's attention takes each token's key/value heads in groups sized to its longest key list (all of
// them together over short lists, one at a time over long ones); a head's results must not depend on its group
test("a long prompt's rows (key/value heads attended one at a time) equal the same tokens decoded one at a time (all heads together), bit for bit", () => {
  if (!onCpu || cpuKernels() === "off") return;
  const root = makeTempDir("eagle-cpu-groups-");
  const spec = RANDOM_SPECS.find((s) => s.name === "llama3-headdim")!; // 16-dim heads, 2 query heads each
  writeRandomModel(root, spec, 7);
  const m = loadModel(root, TEST_PLACEMENT);
  const n = 600, vocab = spec.vocabSize;
  const tokens = Int32Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % (vocab - 1)));
  const whole = KvCache.create(m.model, n), one = KvCache.create(m.model, n);
  const out = StepOutput.create(), step = StepOutput.create();
  try {
    forward(m.model, whole, { tokens, positions: Int32Array.from(tokens, (_, i) => i) }, out);
    let differing = 0;
    for (let i = 0; i < n; i++) {
      forward(m.model, one, { tokens: tokens.subarray(i, i + 1), positions: Int32Array.of(i) }, step);
      const a = out.logitsRow(i, new Float32Array(vocab)), b = step.logitsRow(0, new Float32Array(vocab));
      if (a.some((x, j) => !Object.is(x, b[j]))) differing++;
    }
    expect(differing).toBe(0);
  } finally {
    for (const h of [whole, one, out, step]) h.dispose();
    m.model.dispose();
    rmSync(root, { recursive: true, force: true });
  }
});

// bfloat16 weights: where the products round their inputs (avx512bf16) a row is still computed in one fixed
// order: one row against four panels, a few against two, many in tiles of six; odd panel counts and an odd
// number of inputs (the down product's 99) take the tails
const ODD = { name: "odd", hiddenSize: 96, intermediateSize: 99, layers: 2, heads: 4, kvHeads: 2, vocabSize: 1000 };
describe("batch invariance in bfloat16", () => {
  const root = makeTempDir("eagle-cpu-bf16-rows-");
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  for (const spec of [WIDE, ODD]) {
    test(`${spec.name}: tree rows equal the same tokens decoded one at a time, bit for bit (trees of 2-8)`, () => {
      if (!onCpu || cpuKernels() === "off") return;
      const dir = join(root, spec.name);
      mkdirSync(dir);
      writeRandomModel(dir, { ...spec, dtype: "BF16" }, 13);
      const loaded = loadModel(dir, { device: "cpu", dtype: "bf16" });
      try {
        for (let n = 2; n <= PARENTS.length; n++) expectTreeRowsAsAlone(loaded, n);
      } finally {
        loaded.model.dispose();
      }
    });
  }
});

const splits = [{ spec: WIDE, dtype: "F32" as const }, { spec: ODD, dtype: "BF16" as const }];
for (const { spec, dtype } of splits) test(`products and attention split over the kernels' threads (pieces taken by whichever is free) give the same bits as one thread (${spec.name}, ${dtype})`, () => {
  if (!onCpu || cpuKernels() === "off") return;
  const root = makeTempDir("eagle-cpu-threads-");
  writeRandomModel(root, { ...spec, dtype }, 3);
  const m = loadModel(root, dtype === "BF16" ? { device: "cpu", dtype: "bf16" } : TEST_PLACEMENT);
  const before = threadCount();
  const logits = (threads: number, n: number) => {
    setThreads(threads);
    const kv = KvCache.create(m.model, 64);
    const out = StepOutput.create();
    const tokens = Int32Array.from({ length: n }, (_, i) => 5 + i * 3);
    forward(m.model, kv, { tokens, positions: Int32Array.from(tokens, (_, i) => i) }, out);
    const rows = Array.from({ length: n }, (_, r) => Array.from(out.logitsRow(r, new Float32Array(spec.vocabSize))));
    out.dispose();
    kv.dispose();
    return rows;
  };
  try {
    // the pieces a job is cut into follow the thread count, and whichever thread is free takes the next one
    for (const n of [1, 5, 24]) {
      const alone = logits(1, n);
      for (const threads of [2, 3]) expect(logits(threads, n)).toEqual(alone);
    }
  } finally {
    setThreads(before);
    m.model.dispose();
    rmSync(root, { recursive: true, force: true });
  }
});

// bfloat16 models on the CPU kernels: the products read the bfloat16 weights as they are, everything else is
// float32, so the logits are those of the float32 forward on the same (exactly widened) weights, bit for bit
// (but on avx512bf16, whose products round their inputs to bfloat16 for the dot-product instruction);
// libtorch's bfloat16 path (ET_CPU_KERNELS=0), which rounds every activation to bfloat16, agrees loosely
describe("bfloat16 weights", () => {
  const root = makeTempDir("eagle-cpu-bf16-");
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const specs = [RANDOM_SPECS[1], RANDOM_SPECS[2]].map((s) => ({ ...s, name: `${s.name}-bf16`, dtype: "BF16" as const }));
  for (const base of [RANDOM_SPECS[1], RANDOM_SPECS[2]]) test(`${base.name} in float16: the same bits as float32 on the same weights`, () => {
    if (!onCpu || cpuKernels() === "off") return;
    const dir = join(root, `${base.name}-f16`);
    mkdirSync(dir);
    writeRandomModel(dir, { ...base, dtype: "F16" }, 19);
    const asF16 = loadModel(dir, { device: "cpu", dtype: "f16" });
    const asF32 = loadModel(dir, { device: "cpu", dtype: "f32" });
    try {
      expect(lastLogits(asF16)).toEqual(lastLogits(asF32));
      expect(asF16.model.weightBytes()).toBeLessThan(0.55 * asF32.model.weightBytes());
    } finally {
      asF16.model.dispose();
      asF32.model.dispose();
    }
  });

  const prompt = Int32Array.from({ length: 11 }, (_, i) => 1 + ((i * 41) % 500));
  const lastLogits = (m: LoadedModel) => {
    const kv = KvCache.create(m.model, 32);
    const out = StepOutput.create();
    forward(m.model, kv, { tokens: prompt, positions: Int32Array.from(prompt, (_, i) => i) }, out);
    forward(m.model, kv, { tokens: Int32Array.of(7, 9), positions: Int32Array.of(prompt.length, prompt.length + 1) }, out);
    const rows = [0, 1].map((r) => Array.from(out.logitsRow(r, new Float32Array(m.config.vocabSize))));
    out.dispose();
    kv.dispose();
    return rows;
  };
  test("a checkpoint stored wholly in bf16 or f16 runs so on the CPU by default (the same bits, half the bytes); others as f32", () => {
    if (!onCpu || cpuKernels() === "off" || process.env.EAGLE_DTYPE || process.env.EAGLE_DEVICE) return;
    const dirs = Object.fromEntries((["BF16", "F16", "F32"] as const).map((dtype) => {
      const dir = join(root, `default-${dtype}`);
      mkdirSync(dir);
      writeRandomModel(dir, { ...RANDOM_SPECS[0], dtype }, 5);
      return [dtype, dir];
    }));
    expect(resolvePlacement(undefined, undefined, dirs.BF16)).toEqual({ device: "cpu", dtype: "bf16" });
    expect(resolvePlacement(undefined, undefined, dirs.F16)).toEqual({ device: "cpu", dtype: "f16" });
    expect(resolvePlacement(undefined, undefined, dirs.F32)).toEqual({ device: "cpu", dtype: "f32" });
    expect(resolvePlacement(undefined, "f32", dirs.BF16)).toEqual({ device: "cpu", dtype: "f32" }); // asked for
    expect(resolvePlacement(undefined, undefined, join(root, "missing"))).toEqual({ device: "cpu", dtype: "f32" });
    // and what bench says it runs
    const r = run(["src/cli.ts", "bench", "-m", dirs.BF16, "--methods", "none", "-n", "2"], {});
    expect(r.out).toMatch(/params, cpu bf16\)/);
  });

  for (const spec of specs) {
    test(`${spec.name}: the same bits as float32 on the same weights (avx512bf16: close to them), and close to libtorch's bfloat16`, () => {
      if (!onCpu || cpuKernels() === "off") return;
      const dir = join(root, spec.name);
      mkdirSync(dir);
      writeRandomModel(dir, spec, 17);
      const asBf16 = loadModel(dir, { device: "cpu", dtype: "bf16" });
      const asF32 = loadModel(dir, { device: "cpu", dtype: "f32" });
      try {
        const a = lastLogits(asBf16);
        if (!roundsInputs()) expect(a).toEqual(lastLogits(asF32));
        else { // the inputs rounded to bfloat16: close to float32, not equal
          const b = lastLogits(asF32);
          const scale = Math.max(...b.flat().map(Math.abs));
          const worst = Math.max(...a.flat().map((x, i) => Math.abs(x - b.flat()[i])));
          expect(worst).toBeLessThan(0.05 * scale);
          expect(worst).toBeGreaterThan(0);
        }
        // the bfloat16 model's weights stay 2 bytes each in memory: it reads half the bytes a float32 step reads
        expect(asBf16.model.weightBytes()).toBeLessThan(0.55 * asF32.model.weightBytes());
      } finally {
        asBf16.model.dispose();
        asF32.model.dispose();
      }
      // libtorch's own bfloat16 forward, in a process without the kernels
      const r = run(["-e", `
        import { loadModel } from "./src/model/loader.ts";
        import { forward, KvCache, StepOutput } from "./src/native/engine.ts";
        const m = loadModel(${JSON.stringify(dir)}, { device: "cpu", dtype: "bf16" });
        const kv = KvCache.create(m.model, 32), out = StepOutput.create();
        const p = Int32Array.from(${JSON.stringify(Array.from(prompt))});
        forward(m.model, kv, { tokens: p, positions: Int32Array.from(p, (_, i) => i) }, out);
        console.log(JSON.stringify(Array.from(out.logitsRow(p.length - 1, new Float32Array(m.config.vocabSize)))));`], { ET_CPU_KERNELS: "0" });
      expect(r.code).toBe(0);
      const torchRow: number[] = JSON.parse(r.out.trim().split("\n").at(-1)!);
      const kernels = loadModel(dir, { device: "cpu", dtype: "bf16" });
      const kv = KvCache.create(kernels.model, 32);
      const out = StepOutput.create();
      forward(kernels.model, kv, { tokens: prompt, positions: Int32Array.from(prompt, (_, i) => i) }, out);
      const ours = Array.from(out.logitsRow(prompt.length - 1, new Float32Array(kernels.config.vocabSize)));
      for (const h of [out, kv]) h.dispose();
      kernels.model.dispose();
      const scale = Math.max(...ours.map(Math.abs));
      const worst = Math.max(...ours.map((x, i) => Math.abs(x - torchRow[i])));
      expect(worst).toBeLessThan(0.05 * scale); // bfloat16 activations carry 8 bits of mantissa
      expect(worst).toBeGreaterThan(0);         // they are rounded everywhere there, here at most at the products
    });
  }
});
