// int8 draft heads (--draft-dtype int8, et_dtype ET_I8): each product's weights rounded to int8 with one scale
// per output. A head loaded so computes what a float32 head holding those rounded weights computes, up to the
// order of rounding in a sum; and that is measurably not the head as stored, so the weights really are
// int8. Run once per instruction set by cpu-kernels.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { listModelTensors, readTensorF32, writeSafetensors } from "../src/formats/safetensors.ts";
import { loadDraft } from "../src/model/draft.ts";
import { type LoadedModel, loadModel } from "../src/model/loader.ts";
import { makeTempDir, RANDOM_SPECS, writeRandomDraftHead, writeRandomModel } from "../src/model/random-model.ts";
import { cpuKernels, draftForward, forward, KvCache, StepOutput } from "../src/native/engine.ts";
import { TEST_PLACEMENT } from "./support/device.ts";

const onKernels = TEST_PLACEMENT.device === "cpu" && cpuKernels() !== "off";
const root = makeTempDir("eagle-int8-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Round half to even, as the shim's std::nearbyint does. */
function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 ? 2 * Math.round(v / 2) : r;
}

/** w (rows x cols) as the shim holds it in int8, widened back to float32: per row s = max|w| / 127, q·s. */
function roundTripInt8(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let j = 0; j < rows; j++) {
    let most = 0;
    for (let k = 0; k < cols; k++) most = Math.max(most, Math.abs(w[j * cols + k]));
    const s = most > 0 ? Math.fround(most / 127) : 1;
    for (let k = 0; k < cols; k++) out[j * cols + k] = Math.fround(roundEven(Math.fround(w[j * cols + k] / s)) * s);
  }
  return out;
}

// a copy of a head's folder whose product weights (every matrix) are rounded as int8 holds them
function roundedCopy(dir: string, to: string): void {
  mkdirSync(to);
  copyFileSync(join(dir, "config.json"), join(to, "config.json"));
  const tensors = [...listModelTensors(dir).values()].map((t) => {
    const data = readTensorF32(t);
    const isProduct = t.shape.length === 2 && t.name !== "embed_tokens.weight";
    return { name: t.name, dtype: "F32" as const, shape: t.shape, data: isProduct ? roundTripInt8(data, t.shape[0], t.shape[1]) : data };
  });
  writeSafetensors(join(to, "model.safetensors"), tensors);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// three of the random shapes: biases on q/k/v, outputs that are not whole panels of 32, narrow heads; and
// widths that are not whole groups of four inputs (down's 74: the byte dot product's padding)
const SPECS = [
  ...RANDOM_SPECS.filter((s) => ["qwen2-bias", "llama3-headdim", "narrow-heads"].includes(s.name)),
  { name: "odd-widths", hiddenSize: 40, intermediateSize: 74, layers: 1, heads: 5, kvHeads: 1, vocabSize: 512 },
];

for (const spec of SPECS) {
  describe(`int8 head beside ${spec.name}`, () => {
    let target: LoadedModel;
    const headDir = join(root, `${spec.name}-eagle`);
    const roundedDir = join(root, `${spec.name}-eagle-rounded`);
    beforeAll(() => {
      const dir = join(root, spec.name);
      mkdirSync(dir);
      writeRandomModel(dir, spec, 5);
      mkdirSync(headDir);
      writeRandomDraftHead(headDir, spec, 6);
      roundedCopy(headDir, roundedDir);
      target = loadModel(dir, TEST_PLACEMENT);
    });
    afterAll(() => target.model.dispose());

    test("its logits are the rounded weights' in float32, not the stored ones'; a byte a product weight", () => {
      if (!onKernels) {
        expect(() => loadDraft(headDir, target, "int8")).toThrow(/--draft-dtype int8: .* only on the CPU kernels/);
        return;
      }
      const vocab = target.config.vocabSize;
      const prompt = Int32Array.from({ length: 12 }, (_, i) => 1 + ((i * 41) % (vocab - 1)));
      const features = StepOutput.create();
      const kv = KvCache.create(target.model, 32);
      forward(target.model, kv, { tokens: prompt, positions: Int32Array.from(prompt, (_, i) => i) }, features);
      // six rows (a tile), then one row, then five (a few rows' groups); or all twelve at once
      const logits = (dir: string, dtype: "int8" | "f32", parts = [6, 1, 5]) => {
        const head = loadDraft(dir, target, dtype);
        const dkv = KvCache.create(head.model, 32);
        const out = StepOutput.create();
        const rows: Float32Array[] = [];
        const feed = (from: number, n: number) => {
          const tokens = prompt.slice(from, from + n);
          const at = Int32Array.from(tokens, (_, i) => from + i);
          draftForward(head.model, dkv, { tokens, positions: at }, features, at, out);
          for (let r = 0; r < n; r++) rows.push(out.logitsRow(r, new Float32Array(vocab)));
        };
        let from = 0;
        for (const n of parts) feed(from, n), from += n;
        const bytes = head.model.weightBytes();
        out.dispose();
        dkv.dispose();
        head.model.dispose();
        return { rows, bytes };
      };
      const int8 = logits(headDir, "int8");
      const rounded = logits(roundedDir, "f32");
      const stored = logits(headDir, "f32");
      const worst = (a: Float32Array[], b: Float32Array[]) => Math.max(...a.map((row, i) => maxAbsDiff(row, b[i])));
      const scale = Math.max(...rounded.rows.map((row) => Math.max(...row.map(Math.abs))));
      // the byte dot product (avx512bf16's table) quantizes the inputs too, per block of 32: about 1% of the
      // logits' scale on these heads; otherwise the sums are the rounded weights' in float32
      const bytes = cpuKernels() === "avx512bf16";
      expect(worst(int8.rows, rounded.rows)).toBeLessThan((bytes ? 3e-2 : 1e-5) * scale);
      if (bytes) expect(worst(int8.rows, rounded.rows)).toBeGreaterThan(1e-5 * scale); // (the inputs' rounding shows)
      // each row's bits do not depend on the rows beside it in the call
      const whole = logits(headDir, "int8", [12]);
      whole.rows.forEach((row, i) => expect(Array.from(row)).toEqual(Array.from(int8.rows[i])));
      expect(worst(int8.rows, stored.rows)).toBeGreaterThan(1e-3 * scale); // rounding to int8 shows
      // a byte for each product weight where float32 holds four; norms, biases and the shared tables as they were
      let products = 0;
      for (const t of listModelTensors(headDir).values()) if (t.shape.length === 2 && t.name !== "embed_tokens.weight") products += t.shape[0] * t.shape[1];
      expect(stored.bytes - int8.bytes).toBe(3 * products);
      features.dispose();
      kv.dispose();
    });
  });
}

test("a head whose weight holds NaN is refused as int8, naming the weight and the head", () => {
  const spec = SPECS[0];
  const dir = join(root, "nan-target");
  mkdirSync(dir);
  writeRandomModel(dir, spec, 5);
  const target = loadModel(dir, TEST_PLACEMENT);
  const head = join(root, "nan-eagle");
  mkdirSync(head);
  writeRandomDraftHead(head, spec, 6);
  const tensors = [...listModelTensors(head).values()].map((t) => ({ name: t.name, dtype: "F32" as const, shape: t.shape, data: readTensorF32(t) }));
  tensors.find((t) => t.name === "layers.0.mlp.up_proj.weight")!.data[5] = NaN;
  writeSafetensors(join(head, "model.safetensors"), tensors);
  try {
    if (!onKernels) return;
    expect(() => loadDraft(head, target, "int8")).toThrow(new RegExp(`^${head}: .*int8 weights: weight up of layer 0 holds a value that is not finite`));
  } finally {
    target.model.dispose();
  }
});

test("roundTripInt8 rounds each row by its own scale, half to even", () => {
  const w = Float32Array.of(127, -63.5, 0.5, 2, -1.5, 0.25);
  // row 0: scale 1, so the weights themselves round (63.5 -> 64 is even); row 1: scale 2/127
  expect(Array.from(roundTripInt8(w, 2, 3).slice(0, 3))).toEqual([127, -64, 0]);
  const s = Math.fround(2 / 127);
  expect(Array.from(roundTripInt8(w, 2, 3).slice(3))).toEqual([Math.fround(127 * s), Math.fround(-95 * s), Math.fround(16 * s)]);
});
