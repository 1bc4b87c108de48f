#!/usr/bin/env bun
// cli.ts — the `eagle` command line. The only place that catches: an EagleError becomes one line on
// stderr and a non-zero exit; a usage error (exit 2) adds a second line pointing at the command's help.
import yargs, { type Argv } from "yargs";
import { hideBin } from "yargs/helpers";
import { runBench, benchFlags } from "./commands/bench.ts";
import { benchDeviceFlags, runBenchDevice } from "./commands/bench-device.ts";
import { batchFlags, runBatch } from "./commands/batch.ts";
import { chatFlags, runChat } from "./commands/chat.ts";
import { convertFlags, runConvert } from "./commands/convert.ts";
import { growFlags, runGrow } from "./commands/grow.ts";
import { runServe, serveFlags } from "./commands/serve.ts";
import { generateFlags, runGenerate } from "./commands/generate.ts";
import { runTrainDraft, trainDraftFlags } from "./commands/train-draft.ts";
import { infoFlags, runInfo } from "./commands/info.ts";
import { checkFlags, type OptionTable, scanFlags, type TypedFlags, typedMessage, unknownAsTyped } from "./commands/typed-flags.ts";
import { paintFor } from "./util/color.ts";
import { EagleError, FlagError } from "./util/errors.ts";
import pkg from "../package.json";

const VERSION = pkg.version;
const COMMANDS = ["generate", "chat", "batch", "serve", "bench", "bench-device", "info", "train-draft", "grow", "convert-llama2c", "completion", "help"];

/** What a failure report needs of the run: the command and its flags as typed (known once parsed). */
interface Invocation {
  argv: string[];
  command: string | null;
  flags: TypedFlags | null;
}

/** `eagle: <message>`, and for a usage error a pointer to the help that lists the flags. */
function printError(inv: Invocation, message: string, usage: boolean): void {
  const red = paintFor("stderr").red;
  const help = usage ? `see eagle ${inv.command ? `${inv.command} ` : ""}--help\n` : "";
  process.stderr.write(`${red("eagle:")} ${message}\n${help}`);
}

function report(inv: Invocation, e: unknown): never {
  const red = paintFor("stderr").red;
  if (e instanceof EagleError) {
    printError(inv, e instanceof FlagError && inv.flags ? typedMessage(e, inv.flags) : e.message, e.exitCode === 2);
    process.exit(e.exitCode);
  }
  const sys = e as NodeJS.ErrnoException;
  if (typeof sys?.code === "string" && typeof sys.syscall === "string") {
    // an operating-system error no reader turned into an EagleError (a file that vanished, a full disk)
    process.stderr.write(`${red("eagle:")} ${sys.path && !sys.message.includes(sys.path) ? `${sys.path}: ` : ""}${sys.message}\n`);
    process.exit(1);
  }
  const err = e as Error;
  process.stderr.write(`${red("eagle: internal error:")} ${err?.stack ?? String(e)}\n`);
  process.exit(70);
}

async function main(inv: Invocation): Promise<void> {
  const cli = yargs(inv.argv);
  // a command's builder runs only when that command is chosen: it notes the name for error reports
  const chosen = <T>(name: string, flags: (y: Argv) => Argv<T>) => (y: Argv) => {
    inv.command = name;
    return flags(y);
  };
  await cli
    .scriptName("eagle")
    .usage("$0 <command> [options]\n\nLossless speculative decoding (EAGLE) for Llama-family models.")
    .command("generate", "generate text from a prompt (stdout), with timing stats (stderr)",
      chosen("generate", generateFlags), (a) => runGenerate(a))
    .command("convert-llama2c", "convert a llama2.c checkpoint + tokenizer into a Hugging Face model directory",
      chosen("convert-llama2c", convertFlags), (a) => runConvert(a))
    .command("grow", "make a model (and its EAGLE head) larger without changing what it computes",
      chosen("grow", growFlags), (a) => runGrow(a))
    .command("chat", "chat with a model in the terminal (its chat template, or continuation for base models)",
      chosen("chat", chatFlags), (a) => runChat(a))
    .command("info", "what a model directory holds: shape, weights, tokenizer, chat template, draft head",
      chosen("info", infoFlags), (a) => runInfo(a))
    .command("bench", "measure prompt and decode speed on a fixed workload",
      chosen("bench", benchFlags), (a) => runBench(a))
    .command("bench-device", "plain decoding against the memory-bandwidth limit and EAGLE's step-time ratios, on random models of real shapes",
      chosen("bench-device", benchDeviceFlags), (a) => runBenchDevice(a))
    .command("batch", "generate for many prompts (stdin or --input, plain or JSONL), one JSON result per line", chosen("batch", batchFlags), (a) => runBatch(a))
    .command("serve", "an OpenAI-compatible HTTP server (completions, chat, streaming, /metrics); requests run one at a time",
      chosen("serve", serveFlags), (a) => runServe(a))
    .command("train-draft", "train an EAGLE draft head for a target model (on text the target generates, or --data)",
      chosen("train-draft", trainDraftFlags), (a) => runTrainDraft(a, inv.argv))
    // before yargs' own checks: the flags as typed, a value for each, the last of a repeated one
    .middleware((parsed) => {
      // the option table of the command being run (yargs' getOptions, not in its types)
      const table = (cli as unknown as { getOptions(): OptionTable }).getOptions();
      inv.flags = scanFlags(inv.argv, table);
      checkFlags(inv.flags, table, parsed);
    }, true)
    .command("help [command]", "help for a command (or for all of them)", (y) => y.positional("command", { type: "string" }),
      (a) => showHelp(a.command as string | undefined))
    // `eagle completion >> ~/.bashrc`: tab completion of commands and flags (yargs' own script)
    .completion("completion", "print a bash completion script (add it to ~/.bashrc; zsh: to ~/.zshrc)")
    .demandCommand(1, "name a command")
    .strict()
    .help()
    .alias("h", "help")
    .version("version", "print eagle's version", VERSION)
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err) => {
      if (err) throw err;
      let oneLine = msg.split("\n").map((l) => l.trim()).filter((l) => l !== "").join(" ");
      // a first word that is no command: say so, rather than yargs' "Unknown argument"
      const first = inv.argv.find((t) => !t.startsWith("-"));
      if (inv.command === null && first !== undefined && !COMMANDS.includes(first)) {
        oneLine = `unknown command ${first} (commands: ${COMMANDS.join(", ")})`;
      }
      printError(inv, unknownAsTyped(oneLine, inv.argv), true);
      process.exit(2);
    })
    .parseAsync();
}

/** `eagle help CMD`: the same text as `eagle CMD --help` (yargs prints it and exits). */
async function showHelp(command: string | undefined): Promise<void> {
  if (command !== undefined && !COMMANDS.includes(command)) {
    throw new EagleError(`unknown command ${command} (commands: ${COMMANDS.join(", ")})`, 2);
  }
  await main({ argv: command && command !== "help" ? [command, "--help"] : ["--help"], command: null, flags: null });
}

const invocation: Invocation = { argv: hideBin(process.argv), command: null, flags: null };
main(invocation).catch((e) => report(invocation, e));
