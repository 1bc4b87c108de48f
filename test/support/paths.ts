// where tests find the llama2.c originals: ../shared beside the checkout (CI lays it out the same way)
import { resolve } from "node:path";

export const SHARED_STORIES = resolve(import.meta.dir, "../../../shared/models/stories260K");
