// paths.ts — where the shipped files are: in this checkout, or where the compiled executable
// (src/standalone.ts) extracted them, as it says through EAGLE_DEFAULT_* variables.
import { join } from "node:path";

export const REPO_ROOT = join(import.meta.dir, "..", "..");
export const DEFAULT_MODEL_DIR = process.env.EAGLE_DEFAULT_MODEL ?? join(REPO_ROOT, "models", "stories260K");
export const DEFAULT_PROMPTS = process.env.EAGLE_DEFAULT_PROMPTS ?? join(REPO_ROOT, "test", "prompts", "stories.txt");
