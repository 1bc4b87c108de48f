// preloaded by bun test (bunfig.toml): end-to-end tests decode thousands of tokens on CPU
import { setDefaultTimeout } from "bun:test";

setDefaultTimeout(120_000);
