// color.ts — the colours a stream gets: none under NO_COLOR (no-color.org: set and not empty), else what
// chalk detects for that stream (a terminal, or FORCE_COLOR).
import { Chalk, type ChalkInstance, supportsColor, supportsColorStderr } from "chalk";

export function paintFor(stream: "stdout" | "stderr"): ChalkInstance {
  const detected = stream === "stderr" ? supportsColorStderr : supportsColor;
  return new Chalk({ level: process.env.NO_COLOR || !detected ? 0 : detected.level });
}
