// `eagle batch` end to end on the shipped stories260K model: plain and JSON lines in, one JSON result
// per line out in input order; bad lines become error records; --output is atomic and never clobbers;
// a closed pipe ends the run quietly; speculation does not change greedy text.
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { type ItemContext, parseItems } from "../src/batch/items.ts";
import { Progress } from "../src/batch/progress.ts";
import { OrderedWriter } from "../src/batch/sink.ts";
import { DEFAULT_MODEL_DIR, modelName, REPO_ROOT } from "../src/util/paths.ts";
import { makeTempDir, writeRandomDraftHead } from "../src/model/random-model.ts";

const root = makeTempDir("eagle-batch-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

const CLI = join(REPO_ROOT, "src/cli.ts");
const ENV = { ...process.env, NO_COLOR: "1" };

interface Run { code: number; stdout: string; stderr: string; results: Record<string, unknown>[] }

// one libtorch thread: these runs are tiny, and the test machine may be busy
function batch(args: string[], stdin: string): Run {
  const p = Bun.spawnSync([process.execPath, CLI, "batch", "-t", "1", ...args], { stdin: Buffer.from(stdin), env: ENV });
  const stdout = p.stdout.toString();
  const results = stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
  return { code: p.exitCode ?? -1, stdout, stderr: p.stderr.toString(), results };
}

const jsonl = (...lines: unknown[]) => lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n") + "\n";

describe("parsing input lines", () => {
  const defaults = { maxTokens: 10, temperature: 0.8, topK: 40, topP: 0.95, seed: -1, stop: [] };
  const context: ItemContext = { defaults, model: "stories260K" };

  test("plain and JSON lines, blank lines skipped, ids default to the line number", () => {
    const items = parseItems('Once upon a time\r\n\n  \n{"prompt": "x", "id": "a", "max_tokens": 3, "top_k": 0}\n{"messages": [{"role": "user", "content": "hi"}]}\n', context);
    expect(items.map((i) => i.id)).toEqual([1, "a", 5]);
    expect(items[0]).toMatchObject({ kind: "item", input: { prompt: "Once upon a time" }, options: defaults });
    expect(items[1]).toMatchObject({ kind: "item", options: { ...defaults, maxTokens: 3, topK: 0 } });
    expect(items[2]).toMatchObject({ kind: "item", input: { messages: [{ role: "user", content: "hi" }] } });
  });

  test("bad lines: one-line messages, the id kept when it can be read", () => {
    const bad = [
      ["{nope", /invalid JSON/],
      ['{"id": 9}', /missing "prompt"/],
      ['{"prompt": 1}', /"prompt" must be a string/],
      ['{"prompt": "x", "messages": []}', /not both/],
      ['{"messages": [{"role": "user"}]}', /"messages"\[0\]/],
      ['{"prompt": "x", "max_tokens": 1.5}', /"max_tokens" 1.5: must be an integer >= 0/],
      ['{"prompt": "x", "temperature": "hot"}', /"temperature" "hot"/],
      ['{"prompt": "x", "top_p": 0}', /"top_p" 0: must be a number in \(0, 1\]/],
      ['{"prompt": "x", "seed": -2}', /"seed" -2/],
      ['{"prompt": "x", "max_token": 5}', /unknown field "max_token"/],
      ['{"prompt": "x", "id": [1]}', /"id" must be/],
    ] as const;
    const items = parseItems(bad.map(([line]) => line).join("\n"), context);
    items.forEach((item, i) => {
      expect(item.kind).toBe("bad");
      if (item.kind === "bad") expect(item.error).toMatch(bad[i][1]);
    });
    expect(items[1].id).toBe(9);
    expect(items[10].id).toBe(11);
  });

  test("OpenAI's model field: absent or the model folder's name is fine, anything else is an error naming it", () => {
    const lines = [
      { prompt: "a" }, { prompt: "b", model: "stories260K" }, { prompt: "c", model: "gpt-4o" }, { prompt: "d", model: 3 },
    ].map((o) => JSON.stringify(o)).join("\n");
    const items = parseItems(lines, context);
    expect(items.map((i) => i.kind)).toEqual(["item", "item", "bad", "bad"]);
    if (items[2].kind === "bad") expect(items[2].error).toBe('"model" "gpt-4o": this run serves "stories260K" (-m); name it or leave the field out');
    if (items[3].kind === "bad") expect(items[3].error).toBe('"model" must be a string');
  });

  test("the name a model field may give: the folder's, and stories260K for the shipped model wherever it is", () => {
    expect(modelName(DEFAULT_MODEL_DIR)).toBe("stories260K");
    expect(modelName("/some/where/tiny-llama/")).toBe("tiny-llama");
    expect(modelName(".")).toBe(basename(process.cwd()));
  });

  test("OpenAI's stop field: a string or a list of them, replacing --stop's", () => {
    const withStop = { ...context, defaults: { ...defaults, stop: ["from the flag"] } };
    const items = parseItems([
      '{"prompt": "a", "stop": "\\n"}', '{"prompt": "b", "stop": [".", "!"]}', '{"prompt": "c"}', '{"prompt": "d", "stop": null}',
      '{"prompt": "e", "stop": ""}', '{"prompt": "f", "stop": [1]}', '{"prompt": "g", "stop": {"x": 1}}',
    ].join("\n"), withStop);
    expect(items.slice(0, 4).map((i) => (i.kind === "item" ? i.options.stop : i.error))).toEqual([["\n"], [".", "!"], ["from the flag"], []]);
    for (const item of items.slice(4)) {
      expect(item.kind).toBe("bad");
      if (item.kind === "bad") expect(item.error).toMatch(/^"stop" .*: must be a non-empty string or an array of them$/);
    }
  });
});

describe("ordered output", () => {
  test("results are written in input order as they become ready; flush writes the ones left waiting", async () => {
    const lines: string[] = [];
    const writer = new OrderedWriter({ write: async (l) => void lines.push(l), close() {}, abort() {} });
    const rec = (id: number) => ({ id, error: `e${id}` });
    await writer.put(2, rec(2));
    await writer.put(4, rec(4));
    expect(lines).toEqual([]);
    await writer.put(0, rec(0));
    expect(lines.map((l) => JSON.parse(l).id)).toEqual([0]);
    await writer.flush(); // slots 1 and 3 never come (an interrupted run)
    expect(lines.map((l) => JSON.parse(l).id)).toEqual([0, 2, 4]);
    await writer.flush();
    expect(lines.length).toBe(3);
  });
});

describe("progress bar", () => {
  const sink = (isTTY: boolean) => {
    const written: string[] = [];
    return { written, stream: { isTTY, columns: 80, write: (s: string) => written.push(s) } };
  };

  test("silent unless stderr is a terminal", () => {
    const s = sink(false);
    const p = new Progress(2, s.stream, {});
    p.token();
    p.itemDone();
    p.finish();
    expect(s.written).toEqual([]);
  });

  test("items done / total and tok/s; colour only without NO_COLOR", () => {
    const plain = sink(true);
    const p = new Progress(3, plain.stream, { NO_COLOR: "1" });
    p.itemDone();
    p.itemDone();
    expect(plain.written.at(-1)).toMatch(/2\/3 \| \d+\.\d tok\/s$/);
    expect(plain.written.join("")).not.toContain("\x1b[32m");
    const colored = sink(true);
    new Progress(3, colored.stream, {}).itemDone();
    expect(colored.written.join("")).toContain("\x1b[32m");
  });
});

describe("eagle batch", () => {
  test("plain and JSON lines in input order, with ids and per-item options", () => {
    const r = batch(["-n", "20", "--temp", "0", "--spec", "none"], jsonl(
      "Once upon a time",
      { prompt: "Once upon a time", id: "short", max_tokens: 5 },
      { prompt: "The cat", temperature: 1, seed: 7, id: 3 },
      "",
      { prompt: "The cat", temperature: 1, seed: 7, id: 4.5 },
      { messages: [{ role: "user", content: "Once upon a time" }] },
    ));
    expect(r.code).toBe(0);
    expect(r.results.map((x) => x.id)).toEqual([1, "short", 3, 4.5, 6]);
    const [greedy, short, seeded, reseeded, chat] = r.results;
    expect(greedy).toMatchObject({ prompt_tokens: 5, completion_tokens: 20, finish_reason: "length", tau: null });
    expect(greedy.text).toStartWith(", there was a little girl named Lily.");
    for (const k of ["decode_tokens_per_s", "prompt_ms", "decode_ms"]) expect(typeof greedy[k]).toBe("number");
    expect(short.completion_tokens).toBe(5);
    expect(greedy.text as string).toStartWith(short.text as string); // temperature 0: the same path, cut short
    expect(seeded.text).toBe(reseeded.text); // same seed, same sample
    expect(chat.text).toBe(greedy.text);     // no chat template: contents joined, so the same prompt
    expect(r.stderr).toMatch(/^batch: 5 ok, 0 failed, [\d.]+ tok\/s, parallel \d+ \(measured\)\n$/);
    // temperature 0 and a fixed seed give the same text in another run
    const again = batch(["-n", "20", "--temp", "0", "--spec", "none"], jsonl("Once upon a time", { prompt: "The cat", temperature: 1, seed: 7 }));
    expect(again.results.map((x) => x.text)).toEqual([greedy.text, seeded.text]);
  });

  test("finish_reason is OpenAI's: length at the token limit, stop at a stop string or an end-of-sequence token", () => {
    const r = batch(["-n", "20", "--temp", "0", "--spec", "none", "--stop", "zzz"], jsonl(
      "Once upon a time",
      { prompt: "Once upon a time", stop: ["girl", "Lily"], model: "stories260K" },
      { prompt: "Once upon a time", stop: "named Li" }, // a stop string over several tokens
      { prompt: "", temperature: 0.8, seed: 3, max_tokens: 256 }, // this story ends (with BOS) at its 208th token
    ));
    expect(r.code).toBe(0);
    const [limit, listed, spanning, ended] = r.results;
    expect(limit).toMatchObject({ completion_tokens: 20, finish_reason: "length" });
    expect(limit.text).toStartWith(", there was a little girl named Lily.");
    expect(listed).toMatchObject({ text: ", there was a little ", finish_reason: "stop" });
    expect(spanning).toMatchObject({ text: ", there was a little girl ", finish_reason: "stop" });
    expect(ended).toMatchObject({ completion_tokens: 208, finish_reason: "stop" });
  });

  test("--output in a folder that does not exist: one line naming the folder, before any work", () => {
    const out = join(root, "no-such-folder", "results.jsonl");
    const r = batch(["--output", out], "Once upon a time\n");
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toBe(`eagle: --output ${out}: the folder ${join(root, "no-such-folder")} does not exist`);
    expect(r.stderr).not.toContain("batch:");
  });

  test("bad lines in the middle become error records; the rest succeed; exit 1", () => {
    const r = batch(["-n", "5", "--temp", "0"], jsonl(
      "Once upon a time",
      "{not json",
      { id: "no-prompt" },
      { prompt: "x", top_p: 2 },
      "once upon a time ".repeat(200),
      "The dog",
    ));
    expect(r.code).toBe(1);
    expect(r.results.map((x) => x.id)).toEqual([1, 2, "no-prompt", 4, 5, 6]);
    expect(r.results.map((x) => "error" in x)).toEqual([false, true, true, true, true, false]);
    expect(r.results[4].error).toMatch(/context is 512/);
    for (const x of r.results) if ("error" in x) expect(Object.keys(x)).toEqual(["id", "error"]);
    expect(r.stderr).toMatch(/^batch: 2 ok, 4 failed, [\d.]+ tok\/s, parallel \d+ \(measured\)\n$/);
  });

  test("--output writes the file once done and refuses to overwrite without --force", () => {
    const input = join(root, "prompts.txt");
    writeFileSync(input, "Once upon a time\nThe cat\n");
    const out = join(root, "results.jsonl");
    const r = batch(["-n", "8", "--temp", "0", "--input", input, "--output", out], "");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    const written = readFileSync(out, "utf8");
    const texts = (jsonLines: string) => jsonLines.split("\n").filter(Boolean).map((l) => [JSON.parse(l).id, JSON.parse(l).text]);
    expect(texts(written)).toEqual(texts(batch(["-n", "8", "--temp", "0"], readFileSync(input, "utf8")).stdout));

    const refused = batch(["-n", "8", "--input", input, "--output", out], "");
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/^eagle: .*results\.jsonl: already exists \(use --force to overwrite\)\n$/);
    expect(readFileSync(out, "utf8")).toBe(written);

    const forced = batch(["-n", "3", "--temp", "0", "--input", input, "--output", out, "--force"], "");
    expect(forced.code).toBe(0);
    expect(readFileSync(out, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l).completion_tokens)).toEqual([3, 3]);
    expect(readdirSync(root).filter((f) => f.includes(".tmp-"))).toEqual([]);
    expect(batch(["--input", join(root, "missing.txt")], "").stderr).toMatch(/^eagle: .*missing\.txt: input file not found/);
  });

  test("a closed downstream pipe (| head -1) ends the run quietly with exit 0", () => {
    const input = join(root, "many.txt");
    writeFileSync(input, "Once upon a time\n".repeat(40));
    const cmd = `'${process.execPath}' '${CLI}' batch -t 1 -n 40 --temp 0 --input '${input}' | head -1; exit \${PIPESTATUS[0]}`;
    const p = Bun.spawnSync(["bash", "-c", cmd], { env: ENV });
    const stdout = p.stdout.toString();
    const stderr = p.stderr.toString();
    expect(p.exitCode).toBe(0);
    expect(stdout.split("\n").filter(Boolean)).toHaveLength(1);
    expect(JSON.parse(stdout).id).toBe(1);
    expect(stderr).not.toMatch(/^\s+at /m);
    expect(stderr).not.toMatch(/EPIPE|error/i);
    expect(stderr).not.toContain("batch:"); // it stopped at the closed pipe, not after all 40 items
  });

  test("spec none and spec eagle2 give the same greedy texts", () => {
    const head = join(root, "head");
    mkdirSync(head);
    writeRandomDraftHead(head, { name: "head", hiddenSize: 64, intermediateSize: 172, layers: 1, heads: 8, kvHeads: 4, vocabSize: 512 }, 4);
    const input = jsonl("Once upon a time", "The cat sat", { prompt: "Lily", max_tokens: 7 }, "One day");
    const [plain, eagle2] = ["none", "eagle2"].map((spec) => batch(["-n", "40", "--temp", "0", "--spec", spec, "--draft", head], input));
    expect(plain.code).toBe(0);
    expect(eagle2.code).toBe(0);
    expect(eagle2.results.map((x) => x.text)).toEqual(plain.results.map((x) => x.text));
    expect(plain.results.every((x) => x.tau === null)).toBe(true);
    expect(eagle2.results.every((x) => typeof x.tau === "number")).toBe(true);
  });

  test("messages go through the model's chat template when it has one", () => {
    const model = join(root, "chat-model");
    cpSync(DEFAULT_MODEL_DIR, model, { recursive: true });
    const configPath = join(model, "tokenizer_config.json");
    const config = JSON.parse(readFileSync(configPath, "utf8"));
    const template = "{{ bos_token }}{% for m in messages %}{{ m.content }}{% if not loop.last %} {% endif %}{% endfor %}";
    writeFileSync(configPath, JSON.stringify({ ...config, chat_template: template }));
    const r = batch(["-m", model, "-n", "12", "--temp", "0"], jsonl(
      { messages: [{ role: "user", content: "Once upon" }, { role: "assistant", content: "a time" }] },
      "Once upon a time",
    ));
    expect(r.code).toBe(0);
    // the template writes BOS itself, so the tokenizer adds no second one: the same ids as the plain line
    expect(r.results[0].prompt_tokens).toBe(r.results[1].prompt_tokens);
    expect(r.results[0].text).toBe(r.results[1].text);
    expect(existsSync(configPath)).toBe(true);
  });
});
