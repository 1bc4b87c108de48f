// write a file too big to hold in memory, piece by piece, so that readers see either the old file or the
// new one, never half of it: the pieces go into a temporary file beside it, flushed to disk, then renamed
// over it; on any failure the temporary file is removed (as writeFileAtomic does for a file in memory).
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { EagleError } from "./errors.ts";

/** A sink for one file's bytes, in order; `written` counts what went in so far. */
export interface ByteStream {
  write(chunk: Uint8Array): void;
  readonly written: number;
}

/** Writes `path` from what `fill` writes into the stream; returns what `fill` returns. */
export function writeFileStreamed<T>(path: string, fill: (out: ByteStream) => T): T {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, "w");
    let result: T;
    try {
      let written = 0;
      result = fill({
        write(chunk) {
          for (let done = 0; done < chunk.byteLength; ) done += writeSync(fd, chunk, done, chunk.byteLength - done);
          written += chunk.byteLength;
        },
        get written() {
          return written;
        },
      });
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    return result;
  } catch (err) {
    rmSync(tmp, { force: true });
    if (err instanceof EagleError) throw err;
    throw new EagleError(`${path}: cannot write: ${(err as Error).message}`);
  }
}
