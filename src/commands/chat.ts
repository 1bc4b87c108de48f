// chat — a terminal chat with a model: its own chat template, or plain continuation for base models.
import chalk, { Chalk } from "chalk";
import type { Argv } from "yargs";
import { Conversation } from "../chat/conversation.ts";
import { runRepl } from "../chat/repl.ts";
import { type ChatOutput, ChatSession } from "../chat/session.ts";
import { loadPromptFormat, tokenizerConfig, tokenText } from "../chat/template.ts";
import { loadModel, resolvePlacement } from "../model/loader.ts";
import { DEFAULT_MODEL_DIR, modelName } from "../util/paths.ts";
import { TextTokenizer } from "../model/tokenizer.ts";
import { writeOut } from "../util/io.ts";
import { type ResolvedSpec, resolveSpec } from "../decoding/spec-mode.ts";
import { applyThreads, helpFirst, type RuntimeArgs, runtimeFlags, type SpecArgs, specFlags, stopFlag, stopStrings } from "./common.ts";
import { checkSamplingFlags } from "./generate.ts";

export interface ChatArgs extends RuntimeArgs, SpecArgs {
  model: string;
  n: number;
  temp: number;
  topK: number;
  topP: number;
  seed: number;
  stop?: string[];
  system?: string;
  chatTemplate?: string;
}

export function chatFlags<T>(y: Argv<T>) {
  const own = helpFirst(y, ["model", "system"])
    .option("model", { alias: "m", type: "string", default: DEFAULT_MODEL_DIR, describe: "model directory (Hugging Face layout)", defaultDescription: "models/stories260K" })
    .option("system", { type: "string", describe: "system message (without a chat template: text the conversation starts with)" })
    .option("n", { alias: ["n-predict", "max-tokens"], type: "number", default: 256, describe: "tokens per answer at most (/set max)" })
    .option("temp", { type: "number", default: 0.8, describe: "temperature; 0 = greedy (/set temp)" })
    .option("top-k", { type: "number", default: 40, describe: "keep the k most likely tokens; 0 = off (/set top-k)" })
    .option("top-p", { type: "number", default: 0.95, describe: "keep the smallest set with this much mass; 1 = off (/set top-p)" })
    .option("seed", { type: "number", default: -1, describe: "random seed for each answer; -1 = pick one (/set seed)" });
  return specFlags(runtimeFlags(stopFlag(own)
    .option("chat-template", { type: "string", describe: "Jinja chat template file, instead of the model's own" })));
}

/** Colours only for a terminal, and never under NO_COLOR. */
function paint(stream: NodeJS.WriteStream) {
  const on = stream.isTTY === true && !process.env.NO_COLOR;
  return new Chalk({ level: on ? Math.max(chalk.level, 1) as 1 | 2 | 3 : 0 });
}

export async function runChat(a: ChatArgs): Promise<void> {
  checkSamplingFlags(a);
  const stop = stopStrings(a.stop);
  applyThreads(a.threads);
  const format = loadPromptFormat(a.model, a.chatTemplate);
  const tokenizer = TextTokenizer.load(a.model);
  const err = paint(process.stderr);
  const out: ChatOutput = {
    text: (s) => void writeOut(s),
    notice: (s) => void process.stderr.write(`${err.dim(s)}\n`),
    error: (s) => void process.stderr.write(`${err.red(s)}\n`),
  };
  const loaded = loadModel(a.model, resolvePlacement(a.device, a.dtype, a.model));
  let spec: ResolvedSpec | null = null;
  try {
    spec = resolveSpec(a, a.model, loaded);
    const bos = tokenText(tokenizerConfig(a.model).bos_token) ?? "";
    const conversation = new Conversation(format, a.system ?? null);
    const session = new ChatSession(loaded, spec.head, spec.config, tokenizer, bos, conversation,
      { temp: a.temp, topP: a.topP, topK: a.topK, seed: a.seed, max: a.n, stop }, out);
    const head = spec.head ? `, draft head ${spec.head.dir}` : "";
    out.notice(`eagle chat: ${modelName(a.model)}, spec ${spec.config.mode}${head}. /help for commands, /bye to leave.`);
    if (format.template === null) out.notice("(no chat template: continuation mode)");
    await runRepl(session, out, { prompt: paint(process.stdout).green.bold });
  } finally {
    spec?.head?.model.dispose();
    loaded.model.dispose();
  }
}
