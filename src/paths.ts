// paths.ts — where the shipped files are, relative to this checkout.
import { join } from "node:path";

export const REPO_ROOT = join(import.meta.dir, "..");
export const DEFAULT_MODEL_DIR = join(REPO_ROOT, "models", "stories260K");
