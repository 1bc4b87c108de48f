// info: a model directory described from its JSON files and safetensors headers, checked against the
// shapes the files were written with; it never needs the shim.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { modelInfo } from "../src/commands/info.ts";
import { DEFAULT_MODEL_DIR, REPO_ROOT } from "../src/util/paths.ts";
import { makeTempDir, RANDOM_SPECS, type RandomModelSpec, writeRandomDraftHead, writeRandomModel } from "../src/model/random-model.ts";

const root = makeTempDir("eagle-info-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Run { code: number; stdout: string; stderr: string }

// ET_LIB points nowhere: info must not touch libtorch
function eagle(args: string[]): Run {
  const p = Bun.spawnSync([process.execPath, join(REPO_ROOT, "src/cli.ts"), ...args], {
    env: { ...process.env, NO_COLOR: "1", ET_LIB: join(root, "no-such-shim.so") },
  });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

/** Parameters of a Llama-family model, counted from its shape. */
function expectedParameters(s: RandomModelSpec): number {
  const hd = s.headDim ?? s.hiddenSize / s.heads;
  const [H, q, kv] = [s.hiddenSize, s.heads * hd, s.kvHeads * hd];
  const attention = H * q + 2 * H * kv + q * H + (s.bias ? q + 2 * kv : 0);
  const layer = 2 * H + attention + 3 * H * s.intermediateSize;
  return s.vocabSize * H * (s.tied ? 1 : 2) + s.layers * layer + H;
}

describe("the shipped model", () => {
  const stories: RandomModelSpec = { name: "stories260K", hiddenSize: 64, intermediateSize: 172, layers: 5, heads: 8, kvHeads: 4, vocabSize: 512, tied: true };

  test("--json", () => {
    const r = eagle(["info", "--json"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({
      dir: DEFAULT_MODEL_DIR, architecture: "LlamaForCausalLM", modelType: "llama",
      parameters: expectedParameters(stories), // 260,032
      layers: 5, hiddenSize: 64, intermediateSize: 172, heads: 8, kvHeads: 4, headDim: 8, vocabSize: 512, context: 512,
      ropeTheta: 10000, ropeScaling: null, tiedEmbeddings: true,
      weights: { files: [{ file: "model.safetensors", bytes: 1044984, dtypes: ["F32"], tensors: 47 }], dtypes: ["F32"], bytes: 1044984 },
      tokenizer: {
        type: "BPE", addBos: true,
        special: { bos: { text: "<s>", id: 1 }, eos: { text: "</s>", id: 2 }, unk: { text: "<unk>", id: 0 } },
      },
      chatTemplate: false,
      // the shipped head sits beside the model as stories260K-eagle
      draft: expect.objectContaining({ fits: true }),
    });
  });

  test("text", () => {
    const r = eagle(["info", "-m", DEFAULT_MODEL_DIR]);
    expect(r.code).toBe(0);
    for (const line of [
      /^architecture +LlamaForCausalLM \(llama\)$/m,
      /^parameters +260\.0K \(260,032\)$/m,
      /^shape +5 layers, hidden 64, ffn 172, 8 heads, 4 kv heads, head_dim 8$/m,
      /^vocab +512$/m,
      /^context +512 tokens$/m,
      /^rope +theta 10000, no scaling$/m,
      /^weights +model\.safetensors: 47 tensors, F32, 1020\.5 KiB$/m,
      /^tokenizer +BPE; bos <s> \(1\), eos <\/s> \(2\), unk <unk> \(0\); adds bos$/m,
      /^chat template +none/m,
      /^draft head +\S*stories260K-eagle: fits \(hidden 64, vocab 512\); weights model\.safetensors; fc bias yes; own embedding no/m,
    ]) expect(r.stdout).toMatch(line);
  });

  test("a draft head given with --draft, and one for another model", () => {
    const head = join(root, "stories-head");
    mkdirSync(head);
    writeRandomDraftHead(head, { ...stories, layers: 1 }, 3, { ownEmbedding: true });
    const r = eagle(["info", "--draft", head]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^draft head +.*stories-head: fits \(hidden 64, vocab 512\); weights \S+; fc bias yes; own embedding yes; [\d.]+K parameters$/m);

    const wide = join(root, "wide-head");
    mkdirSync(wide);
    writeRandomDraftHead(wide, { ...stories, layers: 1, hiddenSize: 32, heads: 4, kvHeads: 2 }, 3);
    const w = JSON.parse(eagle(["info", "--json", "--draft", wide]).stdout);
    expect(w.draft).toMatchObject({ dir: wide, fits: false, hiddenSize: 32, vocabSize: 512 });
    expect(w.draft.problem).toMatch(/hidden_size 32 does not match the target's 64/);
  });
});

describe("random models", () => {
  for (const spec of RANDOM_SPECS) {
    test(spec.name, () => {
      const dir = join(root, spec.name);
      mkdirSync(dir);
      writeRandomModel(dir, spec, 5);
      const info = modelInfo(dir);
      const dtype = spec.dtype ?? "F32";
      expect(info).toMatchObject({
        architecture: spec.bias ? "Qwen2ForCausalLM" : "LlamaForCausalLM",
        parameters: expectedParameters(spec),
        layers: spec.layers, hiddenSize: spec.hiddenSize, heads: spec.heads, kvHeads: spec.kvHeads,
        headDim: spec.headDim ?? spec.hiddenSize / spec.heads, vocabSize: spec.vocabSize, context: spec.maxPositions ?? 512,
        ropeTheta: spec.ropeTheta ?? 10000, tiedEmbeddings: spec.tied === true,
        tokenizer: null, chatTemplate: false, draft: null,
      });
      expect(info.ropeScaling?.type ?? null).toBe(spec.ropeScaling?.type ?? null);
      expect(info.weights.dtypes).toEqual([dtype]);
      expect(info.weights.files.map((f) => f.file)).toEqual(
        spec.sharded ? ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] : ["model.safetensors"]);
      // the data alone is parameters x bytes per element; the headers come on top
      expect(info.weights.bytes).toBeGreaterThan(info.parameters * (dtype === "F32" ? 4 : 2));
    });
  }

  test("a head found beside the model as <model>-eagle", () => {
    const spec = RANDOM_SPECS[2]; // qwen2 with biases
    const dir = join(root, "sibling");
    mkdirSync(dir);
    mkdirSync(`${dir}-eagle`);
    writeRandomModel(dir, spec, 5);
    writeRandomDraftHead(`${dir}-eagle`, spec, 6, { fcBias: false });
    expect(modelInfo(dir).draft).toMatchObject({ dir: `${dir}-eagle`, fits: true, problem: null, fcBias: false, ownEmbedding: false });
    const r = eagle(["info", "-m", dir]);
    expect(r.stdout).toMatch(/^rope +theta 1000000, no scaling$/m);
    expect(r.stdout).toMatch(/^tokenizer +none \(no tokenizer\.json\)$/m);
    expect(r.stdout).toMatch(/sibling-eagle: fits \(hidden 64, vocab 512\); weights model\.safetensors; fc bias no; own embedding no \(shares the target's\)/);
  });
});

describe("errors", () => {
  test("a missing model directory", () => {
    const r = eagle(["info", "-m", join(root, "nope")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^eagle: .*nope: model directory not found\n$/);
    expect(r.stdout).toBe("");
  });

  test("a missing --draft directory", () => {
    const r = eagle(["info", "--draft", join(root, "nope")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^eagle: --draft .*nope: directory not found\nsee eagle info --help\n$/);
  });
});
