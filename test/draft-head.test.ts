// draft heads by the official EAGLE-1/2 layout: what such a head never holds, or holds only as its config
// says, is refused with a message rather than silently used; which file is read when both exist.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { listModelTensors, readTensorF32, writeSafetensors } from "../src/formats/safetensors.ts";
import { defaultHeadDtype, headWeightsFile, loadDraft, NARROW_HEAD_BYTES } from "../src/model/draft.ts";
import { type LoadedModel, loadModel } from "../src/model/loader.ts";
import { makeTempDir, type RandomModelSpec, writeRandomDraftHead, writeRandomModel } from "../src/model/random-model.ts";
import { TEST_PLACEMENT } from "./support/device.ts";
import { cpuKernels } from "../src/native/engine.ts";
import { modelInfo } from "../src/commands/info.ts";

const root = makeTempDir("eagle-head-");
const spec: RandomModelSpec = { name: "t", hiddenSize: 32, intermediateSize: 64, layers: 2, heads: 4, kvHeads: 2, vocabSize: 64 };
let target: LoadedModel;
beforeAll(() => {
  writeRandomModel(root, spec, 1);
  target = loadModel(root, TEST_PLACEMENT);
});
afterAll(() => {
  target.model.dispose();
  rmSync(root, { recursive: true, force: true });
});

function head(name: string, edit: (dir: string) => void = () => {}): string {
  const dir = join(root, name);
  mkdirSync(dir);
  writeRandomDraftHead(dir, spec, 2);
  edit(dir);
  return dir;
}

function addTensor(dir: string, name: string, shape: number[]): void {
  const file = join(dir, "model.safetensors");
  const tensors = [...listModelTensors(dir).values()].map((t) => ({ name: t.name, dtype: "F32" as const, shape: t.shape, data: readTensorF32(t) }));
  tensors.push({ name, dtype: "F32", shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(1) });
  writeSafetensors(file, tensors);
}

function setBias(dir: string, bias: boolean): void {
  const path = join(dir, "config.json");
  writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, "utf8")), bias }));
}

test("a head as published loads", () => {
  loadDraft(head("good"), target).model.dispose();
});

test("a head may hold its weights in bf16, f16 or int8 beside an f32 target, on the CPU kernels only", () => {
  const dir = head("narrow");
  if (TEST_PLACEMENT.device !== "cpu" || cpuKernels() === "off") {
    expect(() => loadDraft(dir, target, "bf16")).toThrow(/--draft-dtype bf16: .* only on the CPU kernels/);
    expect(() => loadDraft(dir, target, "int8")).toThrow(/--draft-dtype int8: .* only on the CPU kernels/);
    return;
  }
  const bytes = (dtype?: "bf16" | "f16" | "int8") => {
    const d = loadDraft(dir, target, dtype);
    try {
      expect(d.dtype).toBe(dtype ?? "f32");
      return d.model.weightBytes();
    } finally {
      d.model.dispose();
    }
  };
  const full = bytes();
  expect(bytes("bf16")).toBeLessThan(full);
  expect(bytes("f16")).toBe(bytes("bf16"));
  expect(bytes("int8")).toBeLessThan(bytes("bf16"));
});

test("by default a head of 16 MiB or more goes int8 on the CPU kernels; others keep the model's dtype", () => {
  const cpu = { device: "cpu", dtype: "f32" } as const;
  expect(defaultHeadDtype(cpu, NARROW_HEAD_BYTES, true)).toBe("int8");
  expect(defaultHeadDtype({ device: "cpu", dtype: "bf16" }, NARROW_HEAD_BYTES, true)).toBe("int8");
  expect(defaultHeadDtype(cpu, NARROW_HEAD_BYTES - 4, true)).toBe("f32");
  expect(defaultHeadDtype(cpu, NARROW_HEAD_BYTES, false)).toBe("f32"); // cuda, the kernels off, a wide head
  expect(defaultHeadDtype({ device: "cuda", dtype: "bf16" }, NARROW_HEAD_BYTES, false)).toBe("bf16");
  const small = loadDraft(head("small"), target);
  expect(small.dtype).toBe(TEST_PLACEMENT.dtype);
  small.model.dispose();
});

test("layers.0.input_layernorm.weight (never in an EAGLE-1/2 head) is refused, naming it", () => {
  const dir = head("input-norm", (d) => addTensor(d, "layers.0.input_layernorm.weight", [spec.hiddenSize]));
  expect(() => loadDraft(dir, target)).toThrow(/model\.safetensors: holds layers\.0\.input_layernorm\.weight, which EAGLE-1\/2 heads do not have/);
});

test("fc.bias against a config saying bias false is refused, and its absence against bias true", () => {
  expect(() => loadDraft(head("bias-false", (d) => setBias(d, false)), target)).toThrow(/holds fc\.bias but .*config\.json says "bias": false/);
  const noBias = join(root, "no-bias");
  mkdirSync(noBias);
  writeRandomDraftHead(noBias, spec, 2, { fcBias: false });
  loadDraft(noBias, target).model.dispose();
  setBias(noBias, true);
  expect(() => loadDraft(noBias, target)).toThrow(/has no fc\.bias but .*says "bias": true/);
});

test("with model.safetensors and pytorch_model.bin both present, model.safetensors is the one read", () => {
  const dir = head("both", (d) => writeFileSync(join(d, "pytorch_model.bin"), "not a checkpoint"));
  expect(headWeightsFile(dir)).toBe("model.safetensors");
  loadDraft(dir, target).model.dispose(); // the broken .bin is never opened
  // info says so
  expect(modelInfo(root, dir).draft).toMatchObject({ fits: true, weightsFile: "model.safetensors (pytorch_model.bin is there too, not read)" });
});
