// regenerate models/stories260K from the llama2.c originals in ../shared/models/stories260K.
// usage: bun scripts/convert-stories.ts [--force] [--in DIR] [--out DIR]
import { join, resolve } from "node:path";
import { convertLlama2c } from "../src/convert/llama2c.ts";
import { EagleError } from "../src/util/errors.ts";

const root = resolve(import.meta.dir, "..");
const args = process.argv.slice(2);
const option = (flag: string) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const input = resolve(root, option("--in") ?? "../shared/models/stories260K");
const out = resolve(root, option("--out") ?? "models/stories260K");

try {
  convertLlama2c({
    checkpoint: join(input, "stories260K.bin"),
    tokenizer: join(input, "tok512.bin"),
    out,
    force: args.includes("--force"),
  });
  console.log(`wrote ${out}`);
} catch (err) {
  if (!(err instanceof EagleError)) throw err;
  console.error(`convert-stories: ${err.message}`);
  process.exit(err.exitCode);
}
