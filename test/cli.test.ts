// the CLI end to end: text on stdout, stats on stderr; every bad input is one `eagle:` line on stderr
// and a non-zero exit, never a stack trace or a crash.
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_MODEL_DIR, REPO_ROOT } from "../src/util/paths.ts";
import { cpuHalfCompute } from "../src/model/loader.ts";
import { cpuKernels, torchVersion } from "../src/native/engine.ts";
import { parseCommand } from "../src/chat/commands.ts";
import { makeTempDir, RANDOM_SPECS, type RandomModelSpec, writeRandomDraftHead, writeRandomModel } from "../src/model/random-model.ts";

const root = makeTempDir("eagle-cli-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Run { code: number; stdout: string; stderr: string }

function eagle(args: string[], stdin?: string, opts: { cwd?: string; env?: Record<string, string | undefined> } = {}): Run {
  const p = Bun.spawnSync([process.execPath, join(REPO_ROOT, "src/cli.ts"), ...args], {
    stdin: stdin === undefined ? "ignore" : Buffer.from(stdin), env: withEnv({ ...process.env, NO_COLOR: "1" }, opts.env ?? {}), cwd: opts.cwd,
  });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

/** `base` with `changes` applied; an undefined value removes the variable. */
function withEnv(base: Record<string, string | undefined>, changes: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...base, ...changes })) if (v !== undefined) env[k] = v;
  return env;
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
    expectCleanError(eagle(["generate", "--n", "nan"]), /--n nan: must be a number/, 2);
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
      // one per-position figure per depth the mode's trees can reach, however deep this run's went
      const figures = { none: 0, eagle1: 5, eagle2: 8 }[spec]!;
      if (spec !== "none") expect(r.stderr).toMatch(new RegExp(`acceptance per position ${Array(figures).fill("\\d\\.\\d\\d").join(" ")} \\(draft`));
      return r.stdout;
    });
    expect(texts[1]).toBe(texts[0]);
    expect(texts[2]).toBe(texts[0]);
  });

  test("--draft-dtype bf16 and int8: the shipped head so beside the f32 model, the same greedy text; refused off the CPU kernels", () => {
    const run = (spec: string, extra: string[] = []) => eagle(["generate", "--temp", "0", "-n", "48", "--spec", spec, ...extra]);
    const plain = run("none");
    for (const dtype of ["bf16", "int8"]) {
      const narrow = run("eagle2", ["--draft-dtype", dtype]);
      expect(narrow.code).toBe(0);
      expect(narrow.stdout).toBe(plain.stdout);
      const tau = Number(/eagle2: tau (\d+\.\d+)/.exec(narrow.stderr)?.[1]);
      expect(tau).toBeGreaterThan(2); // the trained head still drafts well so (about 6 in f32)
      const off = eagle(["generate", "-n", "4", "--draft-dtype", dtype], undefined, { env: { ET_CPU_KERNELS: "0" } });
      expectCleanError(off, new RegExp(`--draft-dtype ${dtype}: a head's dtype may differ from the model's \\(f32\\) only on the CPU kernels`), 2);
    }
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

// the first runs of a new user (issue 17): each of these once went wrong
describe("a new user's first runs", () => {
  test("--version, help CMD, and an unknown command named as one", () => {
    const v = eagle(["--version"]);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toBe(JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")).version);
    const help = eagle(["help", "generate"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toBe(eagle(["generate", "--help"]).stdout);
    expect(help.stdout).toContain("--prompt");
    expectCleanError(eagle(["frobnicate"]), /^eagle: unknown command frobnicate \(commands: generate, /, 2);
    expectCleanError(eagle(["help", "frobnicate"]), /^eagle: unknown command frobnicate/, 2);
  });

  const HEAD_DIR = `${DEFAULT_MODEL_DIR}-eagle`;
  /** stderr as lines, without the final newline */
  const lines = (r: Run) => r.stderr.replace(/\n$/, "").split("\n");

  test("-m . inside the model folder finds the head beside it (generate, info, grow)", () => {
    for (const m of [".", "./", "../stories260K/."]) {
      const r = eagle(["generate", "-m", m, "--spec", "eagle2", "--temp", "0", "-n", "8"], undefined, { cwd: DEFAULT_MODEL_DIR });
      expect(r.stderr).toMatch(/eagle2: tau \d/);
      expect(r.code).toBe(0);
    }
    const info = JSON.parse(eagle(["info", "-m", ".", "--json"], undefined, { cwd: DEFAULT_MODEL_DIR }).stdout);
    expect(info.draft?.dir).toBe(HEAD_DIR);
    const out = join(root, "grown-from-dot");
    const g = eagle(["grow", "-m", ".", "--out", out, "--layers", "6"], undefined, { cwd: DEFAULT_MODEL_DIR });
    expect(g.code).toBe(0);
    expect(existsSync(join(`${out}-eagle`, "config.json"))).toBe(true);
  });

  test("a draft head given as -m is named as one", () => {
    const r = eagle(["generate", "-m", HEAD_DIR, "-n", "2"]);
    expectCleanError(r, /stories260K-eagle: this is an EAGLE draft head, not a model; pass it with --draft$/, 2);
  });

  test("--tree takes inline JSON as well as a file", () => {
    const r = eagle(["generate", "--spec", "eagle1", "--tree", "[[0],[1],[0,0]]", "--temp", "0", "-n", "12"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/eagle1: tau \d.* acceptance per position \d\.\d\d \d\.\d\d \(draft/); // this tree is 2 deep
    expect(r.stdout).toBe(eagle(["generate", "--spec", "none", "--temp", "0", "-n", "12"]).stdout);
    expectCleanError(eagle(["generate", "--spec", "eagle1", "--tree", "[[0],[1,0]]"]), /^eagle: --tree \[\[0\],\[1,0\]\]: tree choices: path \[1,0\] lacks its prefix \[1\]$/, 2);
    expectCleanError(eagle(["generate", "--spec", "eagle1", "--tree", "[[0],"]), /^eagle: --tree \[\[0\],: not valid JSON/, 2);
  });

  test("a bad flag is one line and a pointer to the command's help, exit 2", () => {
    const cases: [string[], RegExp][] = [
      [["generate", "--bogus"], /^eagle: Unknown argument: --bogus$/],
      [["generate", "--spec", "bogus"], /^eagle: --spec bogus: must be one of none, eagle1, eagle2, auto$/],
      [["bench", "--methods", "none", "fast"], /^eagle: --methods fast: must be one of none, eagle1, eagle2, auto$/],
      [["generate", "--temp", "-1"], /^eagle: --temp -1: must be a number >= 0$/],
      [["chat", "--top-p", "2"], /^eagle: --top-p 2: must be in \(0, 1\]$/],
    ];
    for (const [args, first] of cases) {
      const r = eagle(args);
      expect(r.code).toBe(2);
      expect(lines(r)).toEqual([expect.stringMatching(first), `see eagle ${args[0]} --help`]);
    }
    expect(lines(eagle([]))).toEqual(["eagle: name a command", "see eagle --help"]);
  });

  test("a repeated flag takes its last value (as llama.cpp does)", () => {
    expect(eagle(["generate", "--spec", "none", "-n", "5", "-n", "7", "--temp", "0"]).stderr).toMatch(/decode: 7 tokens/);
    expect(eagle(["generate", "--spec", "none", "-n", "5", "--max-tokens", "6", "--temp", "0"]).stderr).toMatch(/decode: 6 tokens/);
    const last = eagle(["generate", "--spec", "none", "-p", "Tom had", "-p", "Lily", "--temp", "0", "-n", "10", "--no-stats"]);
    expect(last.code).toBe(0);
    expect(last.stdout).toBe(eagle(["generate", "--spec", "none", "-p", "Lily", "--temp", "0", "-n", "10", "--no-stats"]).stdout);
  });

  test("a flag without its value is refused, named as typed", () => {
    const cases: [string[], string][] = [
      [["generate", "-p"], "-p"],
      [["generate", "-n"], "-n"],
      [["generate", "-p", "-n", "3"], "-p"],
      [["generate", "--prompt"], "--prompt"],
      [["chat", "-m"], "-m"],
      [["generate", "--tree"], "--tree"],
    ];
    for (const [args, flag] of cases) {
      const r = eagle(args);
      expect(r.code).toBe(2);
      expect(lines(r)).toEqual([`eagle: ${flag}: needs a value`, `see eagle ${args[0]} --help`]);
    }
    // an empty value is a value, and a negative number is one too
    expect(eagle(["generate", "-p", "", "--spec", "none", "-n", "3", "--no-stats"]).code).toBe(0);
    expect(eagle(["generate", "--seed", "-1", "--spec", "none", "-n", "3", "--no-stats"]).code).toBe(0);
  });

  test("messages name the flag and value as typed", () => {
    expectCleanError(eagle(["generate", "-n", "abc"]), /^eagle: -n abc: must be a number$/, 2);
    expectCleanError(eagle(["generate", "--max-tokens", "1.5"]), /^eagle: --max-tokens 1\.5: must be an integer >= 1$/, 2);
    expectCleanError(eagle(["generate", "-t", "0"]), /^eagle: -t 0: must be an integer in \[1, \d+\]/, 2);
    expectCleanError(eagle(["generate", "--top-k=-2"]), /^eagle: --top-k -2: must be an integer >= 0$/, 2);
  });

  test("NO_COLOR (any non-empty value) turns the red prefix off", () => {
    const bad = ["generate", "--temp", "-1"];
    expect(eagle(bad, undefined, { env: { NO_COLOR: undefined, FORCE_COLOR: "1" } }).stderr).toStartWith("\x1b[31meagle:");
    expect(eagle(bad, undefined, { env: { NO_COLOR: "", FORCE_COLOR: "1" } }).stderr).toStartWith("\x1b[31meagle:");
    for (const v of ["1", "true", "0"]) {
      expect(eagle(bad, undefined, { env: { NO_COLOR: v, FORCE_COLOR: "1" } }).stderr).toStartWith("eagle: --temp -1");
    }
  });

  test("--dtype f16 on the CPU runs on the kernels, and without them is refused up front where libtorch cannot compute in f16", () => {
    expect(cpuHalfCompute("1.13.0")).toBe(false);
    expect(cpuHalfCompute("2.0.1")).toBe(false);
    expect(cpuHalfCompute("2.1.0")).toBe(true);
    expect(cpuHalfCompute("2.13.0+cpu")).toBe(true);
    if (cpuKernels() !== "off") expect(eagle(["generate", "--device", "cpu", "--dtype", "f16", "-n", "2", "--temp", "0"]).code).toBe(0);
    const version = torchVersion();
    if (cpuHalfCompute(version)) return; // this libtorch computes f16 on the CPU: nothing to refuse
    const why = "f16 compute is not available on the CPU with this libtorch";
    const off = { ET_CPU_KERNELS: "0" };
    expectCleanError(eagle(["generate", "--device", "cpu", "--dtype", "f16", "-n", "2"], undefined, { env: off }), new RegExp(`^eagle: --dtype f16: ${why} \\(${version.replaceAll(".", "\\.")}\\); use --dtype f32 or bf16$`), 2);
    expectCleanError(eagle(["generate", "--device", "cpu", "-n", "2"], undefined, { env: { ...off, EAGLE_DTYPE: "f16" } }), new RegExp(`^eagle: EAGLE_DTYPE=f16: ${why}`), 2);
  });

  test("config.json: what the forward does not compute is refused, naming the field", () => {
    const dir = modelCopy("gelu");
    const config = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, "config.json"), "utf8"));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, hidden_act: "gelu" }));
    expectCleanError(eagle(["generate", "-m", dir]), /config\.json: field "hidden_act" must be "silu" \(the MLP is SiLU-gated\), got "gelu"$/);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, model_type: "gpt2" }));
    expectCleanError(eagle(["generate", "-m", dir]), /config\.json: field "model_type" is "gpt2" but architecture "LlamaForCausalLM" is "llama"$/);
    const { architectures: _, ...noArch } = config;
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...noArch, model_type: "gpt2" }));
    expectCleanError(eagle(["generate", "-m", dir]), /config\.json: field "model_type" "gpt2" is not supported \(llama, mistral, qwen2\)$/);
    const { hidden_act: __, ...noAct } = config;
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...noAct, model_type: "llama" }));
    expect(eagle(["generate", "-m", dir, "--spec", "none", "-n", "2"]).code).toBe(0);
  });

  test("-n 0 is refused by generate and chat as /set max 0 is", () => {
    const want = "must be an integer >= 1";
    expectCleanError(eagle(["generate", "-n", "0"]), new RegExp(`^eagle: -n 0: ${want}$`), 2);
    expectCleanError(eagle(["chat", "-n", "0"]), new RegExp(`^eagle: -n 0: ${want}$`), 2);
    expect(parseCommand("/set max 0")).toEqual({ kind: "error", message: `/set max 0: ${want}` });
  });
});

// what llama.cpp / ollama / llm users expect (issue 17)
describe("conventions of other tools", () => {
  const stat = (r: Run) => /decode: (\d+) tokens .* \| stop: (\w+)$/m.exec(r.stderr);

  test("the shipped model ends its story: default settings, a fixed seed, stop: eos before the limit", () => {
    const r = eagle(["generate", "--seed", "29"]); // auto's trees follow this machine's costs, its samples do not
    expect(r.code).toBe(0);
    const [, tokens, stop] = stat(r)!;
    expect(stop).toBe("eos");
    expect(Number(tokens)).toBeLessThan(256);
    expect(r.stdout.match(/Once upon a time/g)).toHaveLength(1); // one story, not the start of the next
  });

  test("--ignore-eos keeps generating past end-of-sequence tokens", () => {
    const ended = eagle(["generate", "--seed", "29", "-n", "400"]);
    const past = eagle(["generate", "--seed", "29", "--spec", "none", "-n", "400", "--ignore-eos"]);
    expect(stat(ended)!.slice(1)).toEqual(["210", "eos"]);
    expect(stat(past)!.slice(1)).toEqual(["400", "max_tokens"]);
    expect(past.stdout.startsWith(ended.stdout.replace(/\n$/, ""))).toBe(true); // the same story, then the next one
    expect(past.stdout.length).toBeGreaterThan(ended.stdout.length + 100);
  });

  test("-f FILE reads the prompt; a prompt from a file or stdin loses its one trailing newline", () => {
    const args = ["generate", "--temp", "0", "-n", "12", "--spec", "none", "--no-stats"];
    const want = eagle([...args, "-p", "Once upon a"]).stdout;
    const file = join(root, "prompt.txt");
    writeFileSync(file, "Once upon a\n");
    expect(eagle([...args, "-f", file]).stdout).toBe(want);
    expect(eagle([...args, "--file", file]).stdout).toBe(want);
    expect(eagle(args, "Once upon a\n").stdout).toBe(want);
    expect(eagle(args, "Once upon a\r\n").stdout).toBe(want);
    writeFileSync(file, "Once upon a\n\n"); // only one goes
    expect(eagle([...args, "-f", file]).stdout).toBe(eagle([...args, "-p", "Once upon a\n"]).stdout);
    expectCleanError(eagle([...args, "-f", file, "-p", "x"]), /^eagle: -p and -f: give the prompt one way, not both$/, 2);
    expectCleanError(eagle([...args, "-f", join(root, "no-prompt.txt")]), /no-prompt\.txt: cannot open prompt file: no such file$/);
  });

  test("--stop ends the text before the stop string (stop: stop); every --stop counts", () => {
    const args = ["generate", "-p", "Once upon a time", "--temp", "0", "-n", "60", "--spec", "none"];
    const plain = eagle(args).stdout;
    expect(plain).toStartWith(", there was a little girl named Lily. She loved to play outside in the park.");
    const r = eagle([...args, "--stop", "Lily", "--stop", "girl", "--stop", "zzz"]); // the earliest of them, not the last flag's
    expect(r.stdout).toBe(", there was a little \n");
    expect(stat(r)![2]).toBe("stop");
    expect(eagle([...args, "--stop", "named Li", "--no-stats"]).stdout).toBe(", there was a little girl \n"); // across tokens
    expect(eagle([...args, "--stop=park", "--no-stats"]).stdout).toBe(", there was a little girl named Lily. She loved to play outside in the \n");
    expect(eagle([...args, "--stop", "\\n", "-n", "200", "--no-stats"]).stdout).toBe(`${plain.split("\n")[0]}\n`); // \n is an escape
    expect(eagle([...args, "--spec", "eagle2", "--stop", "park", "--no-stats"]).stdout).toBe(eagle([...args, "--stop", "park", "--no-stats"]).stdout);
    expectCleanError(eagle([...args, "--stop", ""]), /^eagle: --stop "": must be a non-empty string$/, 2);
    expectCleanError(eagle([...args, "--stop"]), /^eagle: --stop: needs a value$/, 2);
  });

  test("--seed -1 prints the seed it picked, which repeats the run", () => {
    const args = ["generate", "--temp", "1", "-n", "20", "--spec", "none"];
    const r = eagle(args);
    const seed = /^seed (\d+)$/m.exec(r.stderr)?.[1];
    expect(seed).toBeDefined();
    const again = eagle([...args, "--seed", seed!]);
    expect(again.stdout).toBe(r.stdout);
    expect(again.stderr).not.toMatch(/^seed /m); // a seed given is not repeated back
    expect(eagle([...args, "--no-stats"]).stderr).toBe("");
  });

  test("--help lists -m and -p first (generate), -m first (chat, batch)", () => {
    const options = (cmd: string) => {
      const help = eagle([cmd, "--help"]).stdout.split("\n");
      return help.slice(help.indexOf("Options:") + 1).map((l) => l.trim());
    };
    const gen = options("generate");
    expect(gen[0]).toStartWith("-m, --model");
    expect(gen[1]).toStartWith("-p, --prompt");
    expect(gen[2]).toStartWith("-f, --file");
    expect(options("chat")[0]).toStartWith("-m, --model");
    expect(options("batch")[0]).toStartWith("-m, --model");
  });

  test("eagle completion prints a bash completion script; it completes commands, flags and choices", () => {
    const script = eagle(["completion"], undefined, { env: { SHELL: "/bin/bash" } });
    expect(script.code).toBe(0);
    expect(script.stdout).toContain("complete -o bashdefault -o default -F _eagle_yargs_completions eagle");
    const complete = (...words: string[]) => eagle(["--get-yargs-completions", "eagle", ...words]).stdout.split("\n");
    expect(complete("gen")).toContain("generate");
    expect(complete("generate", "--")).toEqual(expect.arrayContaining(["--model", "--prompt", "--stop", "--ignore-eos", "--file"]));
    expect(complete("generate", "--spec", "")).toEqual(expect.arrayContaining(["none", "eagle1", "eagle2", "auto"]));
  });

  test("info --template prints the chat template's text, or says there is none", () => {
    const none = eagle(["info", "--template"]);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe("");
    expect(none.stderr).toMatch(/stories260K: no chat template .*: chat uses continuation mode\n$/);
    const dir = modelCopy("templated-info");
    const template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}<|assistant|>";
    const config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ ...config, chat_template: template }));
    const shown = eagle(["info", "-m", dir, "--template"]);
    expect(shown).toMatchObject({ code: 0, stdout: `${template}\n`, stderr: "" });
    expect(JSON.parse(eagle(["info", "-m", dir, "--template", "--json"]).stdout)).toEqual({ chat_template: template });
    expect(JSON.parse(eagle(["info", "--template", "--json"]).stdout)).toEqual({ chat_template: null });
  });
});

describe("a missing libtorch", () => {
  const options = /apt-get install libtorch-dev, or set LIBTORCH=\/path\/to\/libtorch or LIBTORCH_USE_PYTORCH=1/;

  test("a shim that is not there: one line saying what to install or set", () => {
    const r = eagle(["generate", "-n", "2"], undefined, { env: { ET_LIB: join(root, "nowhere", "libet.so") } });
    expectCleanError(r, /shim not built: .*nowhere\/libet\.so is missing \(run: npm run setup; it needs libtorch: /);
    expect(r.stderr.split("\n")[0]).toMatch(options);
  });

  const cc = Bun.which("cc") ?? Bun.which("gcc");
  test.skipIf(!cc)("a shim whose libtorch.so is gone: the loader's reason, and what to install or set", () => {
    // a library linked against a libtorch that is then removed: what dlopen meets without libtorch (a version
    // no system has, so that the loader cannot find an installed one instead)
    const dir = join(root, "lost-libtorch");
    mkdirSync(dir);
    writeFileSync(join(dir, "torch.c"), "int torch_stub(void) { return 1; }\n");
    writeFileSync(join(dir, "et.c"), "int torch_stub(void);\nint et_stub(void) { return torch_stub(); }\n");
    const build = (args: string[]) => expect(Bun.spawnSync([cc!, ...args], { cwd: dir }).exitCode).toBe(0);
    build(["-shared", "-fPIC", "-o", "libtorch.so", "-Wl,-soname,libtorch.so.99", "torch.c"]);
    build(["-shared", "-fPIC", "-o", "libet.so", "et.c", "-L.", "-ltorch", `-Wl,-rpath,${dir}`]);
    rmSync(join(dir, "libtorch.so"));
    const r = eagle(["generate", "-n", "2"], undefined, { env: { ET_LIB: join(dir, "libet.so") } });
    expectCleanError(r, /^eagle: cannot load the shim .*libet\.so: .*libtorch\.so\.99: cannot open shared object file/);
    expect(r.stderr.split("\n")[0]).toMatch(options);
    expect(r.stderr.split("\n")).toHaveLength(2); // one line (and the final newline)
  });
});
