// write a whole file so that readers see either the old file or the new one, never half of it: into a
// temporary file beside it, flushed to disk, then renamed over it (a crash or a full disk leaves the old one).
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { EagleError } from "./errors.ts";

export function writeFileAtomic(path: string, data: string | Uint8Array | Uint8Array[]): void {
  const tmp = `${path}.tmp-${process.pid}`;
  // an array of chunks is written back to back, so big tensors are never joined into one buffer
  const chunks = typeof data === "string" ? [Buffer.from(data, "utf8")] : Array.isArray(data) ? data : [data];
  try {
    const fd = openSync(tmp, "w");
    try {
      for (const chunk of chunks) writeAll(fd, chunk);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new EagleError(`${path}: cannot write: ${(err as Error).message}`);
  }
}

function writeAll(fd: number, chunk: Uint8Array): void {
  for (let done = 0; done < chunk.byteLength; ) done += writeSync(fd, chunk, done, chunk.byteLength - done);
}
