// convert-llama2c — a llama2.c checkpoint + tokenizer into a Hugging Face model directory.
import type { Argv } from "yargs";
import { convertLlama2c } from "../convert/llama2c.ts";

export function convertFlags<T>(y: Argv<T>) {
  return y
    .option("checkpoint", { type: "string", demandOption: true, describe: "llama2.c .bin checkpoint" })
    .option("tokenizer", { type: "string", demandOption: true, describe: "llama2.c tokenizer .bin" })
    .option("out", { type: "string", demandOption: true, describe: "output model directory" })
    .option("force", { type: "boolean", default: false, describe: "replace an existing output directory" });
}

export function runConvert(a: { checkpoint: string; tokenizer: string; out: string; force: boolean }): void {
  convertLlama2c(a);
  process.stderr.write(`converted ${a.checkpoint} -> ${a.out}\n`);
}
