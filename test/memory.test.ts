// resource limits: a model or a cache that cannot fit in memory is refused before loading, with numbers
// (needed vs free), not an out-of-memory crash part way. The big model here is a real safetensors file of
// full size whose data is a hole (a sparse file): nothing is read or allocated before the refusal.
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, copyFileSync, ftruncateSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { PER_LAYER } from "../src/model/loader.ts";
import { cpuFreeMemory } from "../src/native/memory.ts";
import { DEFAULT_MODEL_DIR } from "../src/util/paths.ts";
import { configJson, makeTempDir, RANDOM_SPECS, type RandomModelSpec, writeRandomModel } from "../src/model/random-model.ts";

const root = makeTempDir("eagle-mem-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

const CLI = join(import.meta.dir, "..", "src", "cli.ts");

function eagle(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawnSync([process.execPath, CLI, ...args], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

/** A model directory whose safetensors header is complete and whose data is a hole of the right size. */
function writeSparseModel(dir: string, spec: RandomModelSpec): number {
  mkdirSync(dir);
  writeFileSync(join(dir, "config.json"), JSON.stringify(configJson(spec)));
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(DEFAULT_MODEL_DIR, f), join(dir, f));
  const h = spec.hiddenSize, hd = h / spec.heads, kv = spec.kvHeads * hd;
  const shapes: Record<string, number[]> = {
    "model.embed_tokens.weight": [spec.vocabSize, h], "model.norm.weight": [h], "lm_head.weight": [spec.vocabSize, h],
  };
  const perLayer: Record<string, number[]> = {
    "input_layernorm.weight": [h], "self_attn.q_proj.weight": [h, h], "self_attn.k_proj.weight": [kv, h],
    "self_attn.v_proj.weight": [kv, h], "self_attn.o_proj.weight": [h, h], "post_attention_layernorm.weight": [h],
    "mlp.gate_proj.weight": [spec.intermediateSize, h], "mlp.up_proj.weight": [spec.intermediateSize, h],
    "mlp.down_proj.weight": [h, spec.intermediateSize],
  };
  for (let l = 0; l < spec.layers; l++) {
    for (const [name, shape] of Object.entries(perLayer)) {
      expect(name in PER_LAYER).toBe(true);
      shapes[`model.layers.${l}.${name}`] = shape;
    }
  }
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of Object.entries(shapes)) {
    const bytes = 2 * shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: "BF16", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header).padEnd(Math.ceil(JSON.stringify(header).length / 8) * 8, " "));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const fd = openSync(join(dir, "model.safetensors"), "w");
  writeSync(fd, len);
  writeSync(fd, json);
  ftruncateSync(fd, 8 + json.length + offset);
  closeSync(fd);
  return offset;
}

describe("memory limits", () => {
  test("a 70B-shaped bf16 model is refused up front with needed and free memory", () => {
    const dir = join(root, "llama-70b-shape");
    const spec = { name: "70b", hiddenSize: 8192, intermediateSize: 28672, layers: 80, heads: 64, kvHeads: 8, vocabSize: 32000, dtype: "BF16" as const };
    const bytes = writeSparseModel(dir, spec);
    expect(bytes / 2 ** 30).toBeGreaterThan(120);
    const t0 = performance.now();
    const r = eagle(["generate", "-m", dir, "-p", "Once", "-n", "4", "--dtype", "bf16", "--device", "cpu", "--spec", "none"]);
    expect(performance.now() - t0).toBeLessThan(20000);
    expect(r.code).toBe(1);
    console.log(`memory check: ${r.stderr.trim()}`);
    const free = cpuFreeMemory();
    expect(free).not.toBeNull();
    expect(r.stderr).toMatch(/needs 128\.\d GiB on cpu \(weights in bf16 128\.\d GiB\) but only \d+\.\d GiB is free \(MemAvailable|cgroup/);
    expect(r.stderr).toMatch(/EAGLE_NO_MEMORY_CHECK=1/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    // in f32 the same weights need twice as much, and the hint says what to try
    const f32 = eagle(["info", "-m", dir]);
    expect(f32.code).toBe(0); // info reads headers only: it never needs the memory
    const r32 = eagle(["generate", "-m", dir, "-p", "Once", "-n", "4", "--dtype", "f32", "--device", "cpu", "--spec", "none"]);
    expect(r32.stderr).toMatch(/needs 257\.\d GiB .* try --dtype bf16/);
  });

  test("a KV cache larger than free memory is refused before it is allocated", () => {
    const dir = join(root, "long-context");
    mkdirSync(dir);
    writeRandomModel(dir, { ...RANDOM_SPECS[0], maxPositions: 2_000_000_000 }, 3);
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(DEFAULT_MODEL_DIR, f), join(dir, f));
    // 2 layers x 4 kv heads x 16 dims x 2 (k, v) x 4 bytes = 1 KiB a token: a billion tokens is 954 GiB
    const r = eagle(["generate", "-m", dir, "-p", "Once", "-n", "1000000000", "--device", "cpu", "--spec", "none", "--temp", "0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/needs 95\d\.\d GiB on cpu \(KV cache for 100000000\d tokens 95\d\.\d GiB\) but only .* is free/);
    expect(r.stderr).toMatch(/ask for fewer new tokens/);
    // a request that fits runs
    const ok = eagle(["generate", "-m", dir, "-p", "Once", "-n", "5", "--device", "cpu", "--spec", "none", "--temp", "0"]);
    expect(ok.code).toBe(0);
  });
});
