// standalone.ts — the entry of the compiled executable (scripts/build-exe.sh). `bun build --compile`
// embeds the shim and the shipped model; the first run copies them to a cache folder keyed by content
// (dlopen needs a real file), points the CLI at them, and runs it. libtorch itself must be installed.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cacheDir } from "./util/cache-dir.ts";
import shim from "../build/libet.so" with { type: "file" };
import modelConfig from "../models/stories260K/config.json" with { type: "file" };
import modelGeneration from "../models/stories260K/generation_config.json" with { type: "file" };
import modelWeights from "../models/stories260K/model.safetensors" with { type: "file" };
import modelTokenizer from "../models/stories260K/tokenizer.json" with { type: "file" };
import modelTokenizerConfig from "../models/stories260K/tokenizer_config.json" with { type: "file" };
import headConfig from "../models/stories260K-eagle/config.json" with { type: "file" };
import headWeights from "../models/stories260K-eagle/model.safetensors" with { type: "file" };
import prompts from "../test/prompts/stories.txt" with { type: "file" };

// the first writable of $XDG_CACHE_HOME/eagle, ~/.cache/eagle and a private folder under the temp dir
const found = cacheDir();
if (!found) {
  process.stderr.write("eagle: no writable folder for the files this executable unpacks: set XDG_CACHE_HOME " +
    "to a writable directory (tried $XDG_CACHE_HOME/eagle, ~/.cache/eagle and the temp dir)\n");
  process.exit(1);
}
const cacheRoot: string = found;

/** Copies embedded files (file name -> embedded path) into cache/<name>-<hash of their bytes>/ once. */
async function extract(name: string, files: Record<string, string>, at?: string): Promise<string> {
  const names = Object.keys(files);
  const blobs = await Promise.all(names.map(async (f) => new Uint8Array(await Bun.file(files[f]).arrayBuffer())));
  const hash = createHash("sha256");
  for (const b of blobs) hash.update(b);
  const dir = at ?? join(cacheRoot, `${name}-${hash.digest("hex").slice(0, 16)}`);
  if (existsSync(dir)) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  mkdirSync(tmp, { recursive: true });
  names.forEach((f, i) => writeFileSync(join(tmp, f), blobs[i]));
  try {
    renameSync(tmp, dir);
  } catch (e) {
    if (!existsSync(dir)) throw e; // another process won the race: use its copy
  }
  return dir;
}

process.env.ET_LIB ??= join(await extract("shim", { "libet.so": shim }), "libet.so");
// JSON imported as a file is its path, whatever TypeScript infers from the JSON
const path = (imported: unknown) => imported as string;
if (!process.env.EAGLE_DEFAULT_MODEL) {
  const head = { "config.json": path(headConfig), "model.safetensors": headWeights };
  // the head's bytes are part of the model folder's key, so a rebuilt head never meets a stale copy
  const model = await extract("stories260K", {
    "config.json": path(modelConfig), "generation_config.json": path(modelGeneration), "model.safetensors": modelWeights,
    "tokenizer.json": path(modelTokenizer), "tokenizer_config.json": path(modelTokenizerConfig),
    "eagle-head.safetensors": headWeights,
  });
  // the shipped head goes beside the model as <model>-eagle, where the CLI looks for a default head
  await extract("stories260K-eagle", head, `${model}-eagle`);
  process.env.EAGLE_DEFAULT_MODEL = model;
}
process.env.EAGLE_DEFAULT_PROMPTS ??= join(await extract("prompts", { "stories.txt": prompts }), "stories.txt");
await import("./cli.ts");
