// the CLI end to end: text on stdout, stats on stderr; every bad input is one `eagle:` line on stderr
// and a non-zero exit, never a stack trace or a crash.
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_MODEL_DIR, REPO_ROOT } from "../src/util/paths.ts";
import { makeTempDir, RANDOM_SPECS, type RandomModelSpec, writeRandomDraftHead, writeRandomModel } from "../src/model/random-model.ts";

const root = makeTempDir("eagle-cli-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Run { code: number; stdout: string; stderr: string }

function eagle(args: string[], stdin?: string): Run {
  const p = Bun.spawnSync([process.execPath, join(REPO_ROOT, "src/cli.ts"), ...args], {
    stdin: stdin === undefined ? "ignore" : Buffer.from(stdin), env: { ...process.env, NO_COLOR: "1" },
  });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

function expectCleanError(r: Run, pattern: RegExp, code?: number): void {
  expect(r.code).not.toBe(0);
  if (code !== undefined) expect(r.code).toBe(code);
  const first = r.stderr.split("\n")[0];
  expect(first).toMatch(/^eagle: /);
  expect(first).toMatch(pattern);
  expect(r.stderr).not.toMatch(/^\s+at /m); // no stack trace
}

/** A copy of the shipped model to damage. */
function modelCopy(name: string): string {
  const dir = join(root, name);
  cpSync(DEFAULT_MODEL_DIR, dir, { recursive: true });
  return dir;
}

describe("generate", () => {
  test("greedy text on stdout, stats on stderr", () => {
    const r = eagle(["generate", "--temp", "0", "-n", "30"]);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith("Once upon a time, there was a little girl named Lily.")).toBe(true);
    expect(r.stderr).toMatch(/decode: 30 tokens .* tok\/s/);
  });

  test("reads the prompt from stdin and continues it with its leading space", () => {
    const r = eagle(["generate", "--temp", "0", "-n", "8", "--no-stats"], "Once upon a");
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith(" time")).toBe(true);
    expect(r.stderr).toBe("");
  });

  test("the same seed gives the same text", () => {
    const args = ["generate", "--temp", "1", "--seed", "42", "-n", "30", "--no-stats"];
    expect(eagle(args).stdout).toBe(eagle(args).stdout);
  });
});

describe("bad input", () => {
  test("missing model directory", () => {
    expectCleanError(eagle(["generate", "-m", join(root, "nope")]), /nope: model directory not found/);
  });

  test("missing config.json", () => {
    const dir = join(root, "empty");
    mkdirSync(dir);
    expectCleanError(eagle(["generate", "-m", dir]), /config\.json: file not found/);
  });

  test("truncated safetensors", () => {
    const dir = modelCopy("truncated");
    truncateSync(join(dir, "model.safetensors"), 5000);
    expectCleanError(eagle(["generate", "-m", dir]), /model\.safetensors/);
  });

  test("malformed config and unsupported architecture", () => {
    const dir = modelCopy("badconfig");
    writeFileSync(join(dir, "config.json"), "{ not json");
    expectCleanError(eagle(["generate", "-m", dir]), /config\.json: not valid JSON/);
    const config = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, "config.json"), "utf8"));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, architectures: ["GPT2LMHeadModel"] }));
    expectCleanError(eagle(["generate", "-m", dir]), /architecture "GPT2LMHeadModel" is not supported/);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, num_key_value_heads: 3 }));
    expectCleanError(eagle(["generate", "-m", dir]), /num_key_value_heads \(3\)/);
  });

  test("a tensor whose shape does not match the config", () => {
    const dir = modelCopy("badshape");
    const config = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, "config.json"), "utf8"));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, intermediate_size: 100 }));
    expectCleanError(eagle(["generate", "-m", dir]), /mlp\.(gate|up|down)_proj\.weight.*shape/);
  });

  test("an unexpected tensor name", () => {
    const dir = join(root, "renamed");
    mkdirSync(dir);
    writeRandomModel(dir, RANDOM_SPECS[0], 1);
    const path = join(dir, "model.safetensors");
    const bytes = readFileSync(path);
    writeFileSync(path, Buffer.from(bytes.toString("latin1").replace("model.norm.weight", "model.nurm.weight"), "latin1"));
    expectCleanError(eagle(["generate", "-m", dir]), /unexpected tensor "model\.nurm\.weight"/);
  });

  test("a prompt longer than the context", () => {
    expectCleanError(eagle(["generate", "-p", "once upon a time ".repeat(200)]), /context is 512/);
  });

  test("bad flags are usage errors (exit 2)", () => {
    expectCleanError(eagle(["generate", "--temp", "-1"]), /--temp -1/, 2);
    expectCleanError(eagle(["generate", "--top-p", "0"]), /--top-p 0/, 2);
    expectCleanError(eagle(["generate", "--bogus"]), /Unknown argument/, 2);
    expectCleanError(eagle(["generate", "--threads", "100000"]), /--threads 100000: must be an integer in \[1, \d+\]/, 2);
    expectCleanError(eagle(["generate", "--n", "nan"]), /--n NaN/, 2);
    expectCleanError(eagle([]), /name a command/, 2);
  });
});

describe("speculative decoding flags", () => {
  const storiesShape: RandomModelSpec = { name: "head", hiddenSize: 64, intermediateSize: 172, layers: 1, heads: 8, kvHeads: 4, vocabSize: 512 };
  const head = join(root, "stories-head");
  mkdirSync(head);
  writeRandomDraftHead(head, storiesShape, 4);

  test("eagle1 and eagle2 print the same greedy text as plain decoding, with tau", () => {
    const texts = ["none", "eagle1", "eagle2"].map((spec) => {
      const r = eagle(["generate", "--temp", "0", "-n", "40", "--spec", spec, "--draft", head]);
      expect(r.code).toBe(0);
      if (spec !== "none") expect(r.stderr).toMatch(new RegExp(`${spec}: tau \\d+\\.\\d+ tokens/step`));
      return r.stdout;
    });
    expect(texts[1]).toBe(texts[0]);
    expect(texts[2]).toBe(texts[0]);
  });

  test("a head for another model", () => {
    const other = join(root, "wide-head");
    mkdirSync(other);
    writeRandomDraftHead(other, { ...storiesShape, hiddenSize: 32, intermediateSize: 64, heads: 4, kvHeads: 2 }, 4);
    expectCleanError(eagle(["generate", "--spec", "eagle2", "--draft", other]), /hidden_size 32 does not match the target's 64/);
    expectCleanError(eagle(["generate", "--spec", "eagle1", "--draft", DEFAULT_MODEL_DIR]), /num_hidden_layers is 5; an EAGLE head has 1/);
  });

  test("a malformed tree file and impossible tree sizes", () => {
    const tree = join(root, "tree.json");
    writeFileSync(tree, "[[0], [1, 0]]");
    expectCleanError(eagle(["generate", "--spec", "eagle1", "--draft", head, "--tree", tree]), /tree\.json: .*lacks its prefix \[1\]/);
    writeFileSync(tree, "{ nope");
    expectCleanError(eagle(["generate", "--spec", "eagle1", "--draft", head, "--tree", tree]), /tree\.json/);
    expectCleanError(eagle(["generate", "--spec", "eagle2", "--draft", head, "--spec-tokens", "5000"]), /--spec-tokens 5000/, 2);
    expectCleanError(eagle(["generate", "--spec", "eagle2", "--draft", head, "--spec-topk", "0"]), /--spec-topk 0/, 2);
    expectCleanError(eagle(["generate", "-m", modelCopy("no-head"), "--spec", "eagle2"]), /needs a draft head/, 2);
  });
});

describe("a folder where a file should be", () => {
  test("every file a command reads: one line naming it, never an internal error", () => {
    const withFolder = (name: string) => {
      const dir = modelCopy(`folder-${name}`);
      rmSync(join(dir, name), { force: true });
      mkdirSync(join(dir, name));
      return dir;
    };
    const runs: [string[], RegExp][] = [];
    const folder = join(root, "a-folder");
    mkdirSync(folder, { recursive: true });
    runs.push([["generate", "--spec", "eagle1", "--tree", folder], /a-folder: cannot open tree file: not a regular file/]);
    runs.push([["batch", "--input", folder], /a-folder: cannot open batch input: not a regular file/]);
    runs.push([["bench", "--prompts", folder, "-n", "2"], /a-folder: cannot open prompt file: not a regular file/]);
    runs.push([["chat", "--chat-template", folder], /a-folder: cannot open chat template: not a regular file/]);
    runs.push([["train-draft", "--target", DEFAULT_MODEL_DIR, "--out", join(root, "head-x"), "--data", folder], /a-folder: cannot open --data corpus: not a regular file/]);
    for (const [args, pattern] of runs) expectCleanError(eagle(args), pattern);
    for (const name of ["tokenizer.json", "tokenizer_config.json", "model.safetensors", "config.json"]) {
      expectCleanError(eagle(["generate", "-m", withFolder(name), "--spec", "none", "-n", "2"]), new RegExp(`${name.replace(".", "\\.")}: cannot open .*not a regular file`));
    }
  });
});
