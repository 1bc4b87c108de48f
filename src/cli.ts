#!/usr/bin/env bun
// cli.ts — the `eagle` command line. The only place that catches: an EagleError becomes one line on
// stderr and a non-zero exit; a usage error also prints the command's help.
import chalk from "chalk";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { runBench, benchFlags } from "./commands/bench.ts";
import { benchDeviceFlags, runBenchDevice } from "./commands/bench-device.ts";
import { batchFlags, runBatch } from "./commands/batch.ts";
import { chatFlags, runChat } from "./commands/chat.ts";
import { convertFlags, runConvert } from "./commands/convert.ts";
import { growFlags, runGrow } from "./commands/grow.ts";
import { generateFlags, runGenerate } from "./commands/generate.ts";
import { runTrainDraft, trainDraftFlags } from "./commands/train-draft.ts";
import { infoFlags, runInfo } from "./commands/info.ts";
import { EagleError } from "./util/errors.ts";

function report(e: unknown): never {
  if (e instanceof EagleError) {
    process.stderr.write(`${chalk.red("eagle:")} ${e.message}\n`);
    process.exit(e.exitCode);
  }
  const sys = e as NodeJS.ErrnoException;
  if (typeof sys?.code === "string" && typeof sys.syscall === "string") {
    // an operating-system error no reader turned into an EagleError (a file that vanished, a full disk)
    process.stderr.write(`${chalk.red("eagle:")} ${sys.path && !sys.message.includes(sys.path) ? `${sys.path}: ` : ""}${sys.message}\n`);
    process.exit(1);
  }
  const err = e as Error;
  process.stderr.write(`${chalk.red("eagle: internal error:")} ${err?.stack ?? String(e)}\n`);
  process.exit(70);
}

async function main(argv: string[]): Promise<void> {
  await yargs(argv)
    .scriptName("eagle")
    .usage("$0 <command> [options]\n\nLossless speculative decoding (EAGLE) for Llama-family models.")
    .command("generate", "generate text from a prompt (stdout), with timing stats (stderr)",
      (y) => generateFlags(y), (a) => runGenerate(a))
    .command("convert-llama2c", "convert a llama2.c checkpoint + tokenizer into a Hugging Face model directory",
      (y) => convertFlags(y), (a) => runConvert(a))
    .command("grow", "make a model (and its EAGLE head) larger without changing what it computes",
      (y) => growFlags(y), (a) => runGrow(a))
    .command("chat", "chat with a model in the terminal (its chat template, or continuation for base models)",
      (y) => chatFlags(y), (a) => runChat(a))
    .command("info", "what a model directory holds: shape, weights, tokenizer, chat template, draft head",
      (y) => infoFlags(y), (a) => runInfo(a))
    .command("bench", "measure prompt and decode speed on a fixed workload",
      (y) => benchFlags(y), (a) => runBench(a))
    .command("bench-device", "plain decoding against the memory-bandwidth limit and EAGLE's step-time ratios, on random models of real shapes",
      (y) => benchDeviceFlags(y), (a) => runBenchDevice(a))
    .command("batch", "generate for many prompts (stdin or --input, plain or JSONL), one JSON result per line", (y) => batchFlags(y), (a) => runBatch(a))
    .command("train-draft", "train an EAGLE draft head for a target model (on text the target generates, or --data)",
      (y) => trainDraftFlags(y), (a) => runTrainDraft(a, argv))
    .demandCommand(1, "name a command")
    .strict()
    .help()
    .alias("h", "help")
    .version(false)
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err, y) => {
      if (err) throw err;
      process.stderr.write(`${chalk.red("eagle:")} ${msg}\n\n`);
      y.showHelp((s: string) => process.stderr.write(`${s}\n`));
      process.exit(2);
    })
    .parseAsync();
}

main(hideBin(process.argv)).catch(report);
