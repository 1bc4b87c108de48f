// paths.ts — where the shipped files are: in this checkout, or where the compiled executable
// (src/standalone.ts) extracted them, as it says through EAGLE_DEFAULT_* variables.
import { basename, join, resolve } from "node:path";

export const REPO_ROOT = join(import.meta.dir, "..", "..");
export const DEFAULT_MODEL_DIR = process.env.EAGLE_DEFAULT_MODEL ?? join(REPO_ROOT, "models", "stories260K");
export const DEFAULT_PROMPTS = process.env.EAGLE_DEFAULT_PROMPTS ?? join(REPO_ROOT, "test", "prompts", "stories.txt");

/** A model's name: its folder's; the shipped model's, stories260K, also where the executable unpacked it. */
export function modelName(modelDir: string): string {
  return resolve(modelDir) === resolve(DEFAULT_MODEL_DIR) ? "stories260K" : basename(resolve(modelDir));
}

/** Where a model's own EAGLE head is looked for: `<model>-eagle` beside the model directory, named from its
 * absolute, normalised path (so `-m .` inside the model folder finds `../<name>-eagle`). */
export function siblingHeadDir(modelDir: string): string {
  return `${resolve(modelDir)}-eagle`;
}
