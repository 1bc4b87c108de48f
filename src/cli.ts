#!/usr/bin/env bun
// cli.ts — the `eagle` command line. The only place that catches: an EagleError becomes one line on
// stderr and a non-zero exit; a usage error also prints the command's help.
import chalk from "chalk";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { runBench, benchFlags } from "./commands/bench.ts";
import { convertFlags, runConvert } from "./commands/convert.ts";
import { generateFlags, runGenerate } from "./commands/generate.ts";
import { EagleError } from "./errors.ts";

function report(e: unknown): never {
  if (e instanceof EagleError) {
    process.stderr.write(`${chalk.red("eagle:")} ${e.message}\n`);
    process.exit(e.exitCode);
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
    .command("bench", "measure prompt and decode speed on a fixed workload",
      (y) => benchFlags(y), (a) => runBench(a))
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
