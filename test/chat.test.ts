// chat: the pieces (input lines, slash commands, fitting the context) on their own, then the REPL as a
// pipe (lines in, answers out, exit 0 at end of input) and as a person uses it in a terminal (tmux).
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseCommand } from "../src/chat/commands.ts";
import { Conversation } from "../src/chat/conversation.ts";
import { InputAssembler } from "../src/chat/input.ts";
import { loadPromptFormat } from "../src/chat/template.ts";
import { DEFAULT_MODEL_DIR, REPO_ROOT } from "../src/util/paths.ts";
import { makeTempDir, RANDOM_SPECS, type RandomModelSpec, writeRandomDraftHead, writeRandomModel } from "../src/model/random-model.ts";

const root = makeTempDir("eagle-chat-");
const CLI = join(REPO_ROOT, "src/cli.ts");
const TMUX = Bun.which("tmux");
const SOCKET = `eagle-chat-test-${process.pid}`; // our own tmux server, killed at the end

afterAll(() => {
  if (TMUX) Bun.spawnSync([TMUX, "-L", SOCKET, "kill-server"], { stderr: "ignore" });
  rmSync(root, { recursive: true, force: true });
});

interface Run { code: number; stdout: string; stderr: string }

// plain decoding unless a test names a head: the shipped stories260K-eagle would be used by default
const plainUnlessHead = (args: string[]) => (args.includes("--draft") || args.includes("--spec") ? args : ["--spec", "none", ...args]);

function chat(args: string[], stdin: string): Run {
  const p = Bun.spawnSync([process.execPath, CLI, "chat", ...plainUnlessHead(args)], {
    stdin: Buffer.from(stdin), env: { ...process.env, NO_COLOR: "1" },
  });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

function generate(args: string[]): string {
  const p = Bun.spawnSync([process.execPath, CLI, "generate", "--no-stats", ...args], { env: { ...process.env, NO_COLOR: "1" } });
  expect(p.exitCode).toBe(0);
  return p.stdout.toString();
}

describe("input lines", () => {
  test("a trailing backslash continues the message on the next line", () => {
    const input = new InputAssembler();
    expect(input.push("one \\")).toEqual({ kind: "more" });
    expect(input.pending).toBe(true);
    expect(input.push("two")).toEqual({ kind: "done", text: "one \ntwo" });
    expect(input.pending).toBe(false);
  });

  test('""" opens and closes a block, with text allowed on the fence lines', () => {
    const input = new InputAssembler();
    expect(input.push('"""')).toEqual({ kind: "more" });
    expect(input.push("a \\")).toEqual({ kind: "more" }); // no continuation rule inside a block
    expect(input.push("b")).toEqual({ kind: "more" });
    expect(input.push('"""')).toEqual({ kind: "done", text: "a \\\nb" });
    expect(input.push('"""x')).toEqual({ kind: "more" });
    expect(input.push('y"""')).toEqual({ kind: "done", text: "x\ny" });
    expect(input.push('"""one line"""')).toEqual({ kind: "done", text: "one line" });
  });

  test("reset drops a half-typed message", () => {
    const input = new InputAssembler();
    input.push('"""');
    input.push("lost");
    input.reset();
    expect(input.push("kept")).toEqual({ kind: "done", text: "kept" });
  });
});

describe("slash commands", () => {
  test("valid ones", () => {
    expect(parseCommand("/set temp 0.5")).toEqual({ kind: "set", key: "temp", value: 0.5 });
    expect(parseCommand("/set top_p 1")).toEqual({ kind: "set", key: "topP", value: 1 });
    expect(parseCommand("/set top_k 0")).toEqual({ kind: "set", key: "topK", value: 0 });
    expect(parseCommand("/set seed -1")).toEqual({ kind: "set", key: "seed", value: -1 });
    expect(parseCommand("/set max 400")).toEqual({ kind: "set", key: "max", value: 400 });
    expect(parseCommand("/spec eagle1")).toEqual({ kind: "spec", mode: "eagle1" });
    for (const kind of ["help", "stats", "show", "clear", "bye"]) expect(parseCommand(`/${kind}`)).toEqual({ kind } as never);
  });

  test("/set takes the command line's flag names too, with or without their dashes", () => {
    const set = parseCommand;
    expect(set("/set top-p 0.5")).toEqual({ kind: "set", key: "topP", value: 0.5 });
    expect(set("/set --top-p 0.5")).toEqual({ kind: "set", key: "topP", value: 0.5 });
    expect(set("/set top-k 3")).toEqual({ kind: "set", key: "topK", value: 3 });
    expect(set("/set --temp 0.2")).toEqual({ kind: "set", key: "temp", value: 0.2 });
    for (const n of ["-n", "n", "--n-predict", "max-tokens"]) expect(set(`/set ${n} 64`)).toEqual({ kind: "set", key: "max", value: 64 });
    expect(parseCommand("/set -n 0")).toEqual({ kind: "error", message: "/set -n 0: must be an integer >= 1" });
    // names from Object's prototype are no settings (this once crashed the REPL)
    for (const name of ["constructor", "toString", "__proto__"]) {
      expect(parseCommand(`/set ${name} 1`)).toEqual({ kind: "error", message: `/set ${name}: unknown setting (temp|top_p|top_k|seed|max)` });
    }
    expect(parseCommand("/show all")).toEqual({ kind: "error", message: "usage: /show" });
  });

  test("bad ones are one-line messages", () => {
    const bad: [string, RegExp][] = [
      ["/set temp -1", /^\/set temp -1: must be a number >= 0$/],
      ["/set temp abc", /must be a number/],
      ["/set top_p 0", /in \(0, 1\]/],
      ["/set top_k 1.5", /an integer >= 0/],
      ["/set seed -2", /an integer >= -1/],
      ["/set max 0", /an integer >= 1/],
      ["/set max", /^usage: \/set temp\|top_p\|top_k\|seed\|max <value>$/],
      ["/set nope 1", /unknown setting/],
      ["/spec eagle3", /must be none, eagle1, eagle2 or auto/],
      ["/frobnicate", /unknown command \/frobnicate \(try \/help\)/],
    ];
    for (const [text, message] of bad) {
      const c = parseCommand(text);
      expect(c.kind).toBe("error");
      if (c.kind === "error") {
        expect(c.message).toMatch(message);
        expect(c.message).not.toContain("\n");
      }
    }
  });
});

describe("fitting the context", () => {
  // one token per character: prompt sizes are easy to count
  const encode = (text: string) => Array.from(text, (ch) => ch.charCodeAt(0));
  const continuation = loadPromptFormat(DEFAULT_MODEL_DIR);

  test("continuation mode joins the running text, spacing the user's words", () => {
    expect(continuation.template).toBeNull();
    const c = new Conversation(continuation, null);
    c.record("Once upon a time", ", there was");
    expect(continuation.render(c.messages(c.turns, "a dog"))).toBe("Once upon a time, there was a dog");
  });

  test("the oldest turns go first; a message that cannot fit is refused and drops nothing", () => {
    const c = new Conversation(continuation, "S:"); // the system text always stays
    for (let i = 0; i < 4; i++) c.record(`u${i}`, `:answer${i}`); // "S:" then 4 turns " uI:answerI" of 11
    // + " hello": a 52-token prompt, and 10 new tokens fit a context of 64
    expect(c.plan("hello", encode, 64, 10)).toMatchObject({ fits: true, dropped: 0, maxNew: 10 });
    // context 40 leaves 30 for the prompt: two turns go
    const plan = c.plan("hello", encode, 40, 10);
    expect(plan).toMatchObject({ fits: true, dropped: 2, maxNew: 10 });
    expect(c.turns.map((t) => t.user)).toEqual(["u2", "u3"]);
    // room left for fewer tokens than asked: every turn goes, the answer is shorter
    expect(c.plan("hello", encode, 12, 10)).toMatchObject({ fits: true, dropped: 2, maxNew: 4 });
    c.record("u4", ":answer4");
    expect(c.plan("x".repeat(20), encode, 12, 10)).toEqual({ fits: false, tokens: 23 });
    expect(c.turns).toHaveLength(1);
  });

  test("a chat template renders the messages", () => {
    const dir = join(root, "template-only");
    mkdirSync(dir);
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ bos_token: "<s>", eos_token: "</s>", chat_template: TEMPLATE }));
    const c = new Conversation(loadPromptFormat(dir), "be brief");
    c.record("hi", "hello");
    expect(c.format.render(c.messages(c.turns, "bye"))).toBe(
      "<s>[system] be brief[user] hi[assistant] hello</s>[user] bye[assistant]"); // trim_blocks, as in transformers
  });
});

const TEMPLATE = "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{% if m.role == 'assistant' %}{{ eos_token }}{% endif %}\n" +
  "{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}";

describe("chat through a pipe", () => {
  test("answers each line, takes commands, exits 0 at end of input", () => {
    const r = chat(["--temp", "0", "-n", "20"], "Once upon a time\n/set top_k x\n/spec eagle2\n/stats\nThe dog\n/set temp 0.5\n");
    expect(r.code).toBe(0);
    const answers = r.stdout.split("\n");
    // the first answer is what generate continues the same prompt with (less its leading space)
    expect(answers[0]).toBe(generate(["--temp", "0", "-n", "20", "-p", "Once upon a time"]).trim());
    expect(answers[1].length).toBeGreaterThan(0);
    expect(answers.slice(2)).toEqual([""]);
    expect(r.stderr).toContain("(no chat template: continuation mode)");
    expect(r.stderr).toContain("temp = 0.5\n");
    expect(r.stderr).toContain("/set top_k x: must be an integer >= 0 (0 = off)\n");
    expect(r.stderr).toContain("/spec eagle2: no draft head loaded");
    expect(r.stderr).toMatch(/last answer: 20 tokens in \d+ ms \([\d.]+ tok\/s\) \| stop: max_tokens \| spec: none/);
  });

  test("an answer cut at the token limit says so; one that ends by itself does not; --stop ends one before the string", () => {
    const r = chat(["--temp", "0", "-n", "20"], "Once upon a time\n");
    expect(r.code).toBe(0);
    expect(r.stderr).toEndWith("\n(stopped at the token limit of 20: /set max N for longer answers)\n");
    const ended = chat(["-n", "400", "--seed", "1"], "Lily\n/stats\n"); // a story that ends (with BOS) at its 362nd token
    expect(ended.stderr).toMatch(/last answer: 362 tokens .* \| stop: eos \| spec: none/); // the story ended: no marker
    expect(ended.stderr).not.toContain("(stopped");
    const stopped = chat(["--temp", "0", "-n", "60", "--stop", "Lily", "--stop", "girl"], "Once upon a time\n/stats\n/show\n");
    expect(stopped.stdout).toBe(", there was a little \n");
    expect(stopped.stderr).toMatch(/\| stop: stop \| spec: none/);
    expect(stopped.stderr).not.toContain("(stopped");
    expect(stopped.stderr).toContain('max 60, spec none, stop "Lily" "girl"\n');
    expect(stopped.stderr).toContain("prompt so far (1 turn):\nOnce upon a time, there was a little \n"); // the history keeps what was shown
  });

  test("/show: the settings, the template (or continuation mode) and the prompt so far", () => {
    const r = chat(["--temp", "0", "-n", "8", "--system", "A story."], "/show\nOnce upon a time\n/set top-k 5\n/show\n");
    expect(r.code).toBe(0);
    const answer = r.stdout.split("\n")[0];
    const shows = r.stderr.split("settings: ").slice(1).map((s) => `settings: ${s}`);
    expect(shows[0]).toStartWith([
      "settings: temp 0, top_p 0.95, top_k 40, seed -1, max 8, spec none",
      "chat template: none (continuation mode: the conversation is one running text)",
      "prompt so far (0 turns and the system message):",
      "A story.",
      "",
    ].join("\n"));
    expect(shows[1]).toStartWith("settings: temp 0, top_p 0.95, top_k 5, seed -1, max 8, spec none\n");
    expect(shows[1]).toContain(`prompt so far (1 turn and the system message):\nA story. Once upon a time${answer}\n`);

    const dir = join(root, "show-template");
    mkdirSync(dir);
    for (const f of ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"]) copyFileSync(join(DEFAULT_MODEL_DIR, f), join(dir, f));
    const config = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, "tokenizer_config.json"), "utf8"));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ ...config, chat_template: TEMPLATE }));
    const t = chat(["-m", dir, "--temp", "0", "-n", "4"], "hi\n/show\n");
    const said = t.stdout.split("\n")[0];
    expect(t.stderr).toContain(`chat template:\n${TEMPLATE}\nprompt so far (1 turn):\n<s>[user] hi[assistant] ${said}</s>[assistant]`);
  });

  test("a draft head: auto by default, the same greedy text, tau and acceptance in /stats", () => {
    const shape: RandomModelSpec = { name: "head", hiddenSize: 64, intermediateSize: 172, layers: 1, heads: 8, kvHeads: 4, vocabSize: 512 };
    const head = join(root, "stories-head");
    mkdirSync(head);
    writeRandomDraftHead(head, shape, 4);
    const lines = "Once upon a time\n/stats\n/spec eagle2\nThe dog\n/stats\n/spec eagle1\nThe cat\n/stats\n/spec none\n/clear\nOnce upon a time\n";
    const r = chat(["--temp", "0", "-n", "12", "--draft", head, "--spec-tokens", "10", "--spec-depth", "3"], lines); // a small tree: CPU time
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`spec auto, draft head ${head}`);
    expect(r.stderr).toMatch(/spec: auto\ntau: [\d.]+ tokens per target forward over \d+ forwards \(mean acceptance length\)\n/);
    expect(r.stderr).toMatch(/spec: eagle2\ntau: [\d.]+ tokens per target forward over \d+ forwards \(mean acceptance length\)\nacceptance per position: [\d. ]+ \(/);
    expect(r.stderr).toMatch(/draft acceptance rate: [\d.]+ \(/);
    expect(r.stderr).toMatch(/spec: eagle1\ntau: /);
    expect(r.stderr).toContain("spec = none");
    expect(r.stderr).toContain("(history cleared)");
    const [first, , , fourth] = r.stdout.split("\n");
    expect(fourth).toBe(first); // after /clear the same prompt, greedy, plain decoding: the same text
  });

  test("a template model with a short context drops old turns and refuses a message that cannot fit", () => {
    const dir = join(root, "templated");
    mkdirSync(dir);
    const spec = { ...RANDOM_SPECS[0], maxPositions: 64 };
    writeRandomModel(dir, spec, 7);
    copyFileSync(join(DEFAULT_MODEL_DIR, "tokenizer.json"), join(dir, "tokenizer.json"));
    const config = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, "tokenizer_config.json"), "utf8"));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ ...config, chat_template: TEMPLATE }));
    const lines = ["hi there", "what now", "and then", "one more", "story ".repeat(80), "/stats", "bye"].join("\n");
    const r = chat(["-m", dir, "--temp", "0", "-n", "16", "--system", "be kind"], `${lines}\n`);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain("continuation mode");
    expect(r.stderr).toMatch(/\(dropped \d+ old turns? to fit the context\)/);
    expect(r.stderr).toMatch(/that message makes a \d+-token prompt; the context holds 64: no room to answer/);
    expect(r.stdout.trim().length).toBeGreaterThan(0);

    // a --chat-template that fails on this conversation: one line per message, the chat goes on
    const strict = join(root, "strict.jinja");
    writeFileSync(strict, "{% if messages[0].role == 'system' %}{{ raise_exception('no system messages here') }}{% endif %}" + TEMPLATE);
    const s = chat(["-m", dir, "--temp", "0", "-n", "8", "--system", "be kind", "--chat-template", strict], "hi\n/set max 4\n");
    expect(s.code).toBe(0);
    expect(s.stderr).toContain("strict.jinja: chat template failed: no system messages here\n");
    expect(s.stderr).toContain("max = 4");
  });
});

// ---- a person at a terminal: tmux gives the REPL a pseudo-terminal and lets us type and read the screen

function tmux(...args: string[]): string {
  const p = Bun.spawnSync([TMUX!, "-L", SOCKET, ...args]);
  if (p.exitCode !== 0) throw new Error(`tmux ${args.join(" ")}: ${p.stderr.toString()}`);
  return p.stdout.toString();
}

/** Starts `eagle chat ARGS` in a detached session of a fixed size; the shell line after it reports the exit. */
function startChat(name: string, args: string[]): void {
  const command = `cd ${REPO_ROOT} && NO_COLOR=1 ${process.execPath} ${CLI} chat ${plainUnlessHead(args).join(" ")}; echo "[exit $?]"; sleep 60`;
  tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "50", command);
}

const screen = (name: string) => tmux("capture-pane", "-p", "-J", "-t", name, "-S", "-");

async function waitFor(name: string, what: string, ok: (text: string) => boolean, timeoutMs = 20000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const text = screen(name);
    if (ok(text)) return text;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; the screen:\n${text}`);
    await Bun.sleep(100);
  }
}

/** The REPL is idle at its prompt: the last line on screen is `>`. */
const atPrompt = (text: string) => text.trimEnd().split("\n").at(-1) === ">";

async function type(name: string, line: string, expected: string | RegExp): Promise<string> {
  const before = screen(name).trimEnd().length;
  tmux("send-keys", "-t", name, "-l", line);
  tmux("send-keys", "-t", name, "Enter");
  const seen = (t: string) => (typeof expected === "string" ? t.includes(expected) : expected.test(t));
  return await waitFor(name, JSON.stringify(expected), (t) => t.trimEnd().length > before && seen(t.slice(before - 1)) && atPrompt(t));
}

describe.skipIf(!TMUX)("chat at a terminal", () => {
  if (!TMUX) console.warn("chat.test.ts: tmux is not installed, skipping the terminal tests (scripts/setup.sh installs it)");

  test("streams answers, takes commands, Ctrl-C stops an answer, /bye leaves", async () => {
    // stories260K with room for a 60000-token answer that stops only at EOS, which it never emits (not at the
    // BOS that ends each story), so the answer that Ctrl-C stops runs for seconds on any machine rather than
    // racing the keystroke
    const long = join(root, "stories-long-context");
    mkdirSync(long);
    for (const f of ["model.safetensors", "tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(DEFAULT_MODEL_DIR, f), join(long, f));
    writeFileSync(join(long, "generation_config.json"), JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }));
    const config = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, "config.json"), "utf8"));
    writeFileSync(join(long, "config.json"), JSON.stringify({ ...config, max_position_embeddings: 65536 }));
    const s = "repl";
    startChat(s, ["-m", long, "--temp", "0", "-n", "30"]);
    await waitFor(s, "the first prompt", (t) => t.includes("(no chat template: continuation mode)") && atPrompt(t));

    const golden = generate(["-m", long, "--temp", "0", "-n", "30", "-p", "Once upon a time"]).trim();
    await type(s, "Once upon a time", `> Once upon a time\n${golden}\n(stopped at the token limit of 30: /set max N for longer answers)\n>`);
    await type(s, "/set temp 0.5", "temp = 0.5\n>");
    await type(s, "/stats", /last answer: 30 tokens in \d+ ms \([\d.]+ tok\/s\) \| stop: max_tokens \| spec: none\n>/);
    await type(s, "/set temp hot", "/set temp hot: must be a number >= 0\n>");
    await type(s, "/set seed 7", "seed = 7\n>");
    await type(s, "/set max 60000", "max = 60000\n>");

    // a long answer: Ctrl-C as soon as it is streaming, and the prompt comes back before it could end
    tmux("send-keys", "-t", s, "-l", "The little dog");
    tmux("send-keys", "-t", s, "Enter");
    await waitFor(s, "the answer streaming", (t) => /> The little dog\n.{10,}/.test(t));
    tmux("send-keys", "-t", s, "C-c");
    const stopped = await waitFor(s, "the answer to stop", (t) => t.includes("(stopped)\n>") && atPrompt(t));
    await type(s, "/stats", /stop: interrupted \| spec: none\n>/);
    const tokens = Number(/(\d+) tokens in \d+ ms \([\d.]+ tok\/s\) \| stop: interrupted/.exec(screen(s))![1]);
    expect(tokens).toBeGreaterThan(0);
    expect(tokens).toBeLessThan(60000);
    expect(stopped).not.toContain("[exit");

    // the stopped answer stays in the history: a following line continues after it
    await type(s, "/set max 5", "max = 5\n>");
    // (what follows depends on where the stop fell, and may span lines)
    await type(s, "Then", /> Then\n[\s\S]+\n\(stopped at the token limit of 5: \/set max N for longer answers\)\n>/);

    tmux("send-keys", "-t", s, "-l", "/bye");
    tmux("send-keys", "-t", s, "Enter");
    await waitFor(s, "the exit", (t) => t.includes("[exit 0]"));
  });

  test("Ctrl-C twice at an empty prompt leaves; Ctrl-C on a typed line only clears it; so does Ctrl-D, ending its line", async () => {
    startChat("ctrl-c", ["--temp", "0", "-n", "5"]);
    startChat("ctrl-d", ["--temp", "0", "-n", "5"]);
    await waitFor("ctrl-c", "the first prompt", atPrompt);
    tmux("send-keys", "-t", "ctrl-c", "-l", "half typed");
    tmux("send-keys", "-t", "ctrl-c", "C-c");
    await waitFor("ctrl-c", "the line cleared", (t) => t.includes("> half typed^C\n>") && atPrompt(t));
    tmux("send-keys", "-t", "ctrl-c", "C-c");
    await waitFor("ctrl-c", "the hint", (t) => t.includes("(Ctrl-C again, Ctrl-D or /bye to leave)\n>"));
    tmux("send-keys", "-t", "ctrl-c", "C-c");
    await waitFor("ctrl-c", "the exit", (t) => t.includes("[exit 0]"));

    await waitFor("ctrl-d", "the first prompt", atPrompt);
    tmux("send-keys", "-t", "ctrl-d", "C-d");
    const left = await waitFor("ctrl-d", "the exit", (t) => t.includes("[exit 0]"));
    expect(left).toMatch(/^>\s*\n\[exit 0\]/m); // the shell's next line starts on a line of its own, not after "> "
  }, 30000);
});
