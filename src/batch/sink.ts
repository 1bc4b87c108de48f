// sink.ts — results out as JSON lines, in input order whatever order they finish in, each line as soon
// as every line before it is out. To stdout (a closed pipe ends the process quietly, see io.ts) or to a
// file that appears only when the run completes (written to a temporary file, renamed at the end).
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { EagleError } from "../util/errors.ts";
import { writeOut } from "../util/io.ts";
import type { BatchResult } from "./run-item.ts";

export interface LineOutput {
  write(line: string): Promise<void>;
  /** The run completed: make the output final. */
  close(): void;
  /** The run failed: leave no partial output behind where that is possible. */
  abort(): void;
}

export function stdoutOutput(): LineOutput {
  return { write: writeOut, close() {}, abort() {} };
}

/** Refuses an existing file unless `force`, and a folder that is not there: checked here, before any work is done. */
export function fileOutput(path: string, force: boolean): LineOutput {
  const folder = dirname(path);
  if (!existsSync(folder)) throw new EagleError(`--output ${path}: the folder ${folder} does not exist`, 2);
  if (!statSync(folder).isDirectory()) throw new EagleError(`--output ${path}: ${folder} is not a folder`, 2);
  if (existsSync(path) && !force) throw new EagleError(`${path}: already exists (use --force to overwrite)`);
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number | null = null; // opened on first use, so a run that fails before any output leaves nothing
  const cannot = (err: unknown) => new EagleError(`${path}: cannot write: ${(err as Error).message}`);
  const append = (bytes: Uint8Array) => {
    try {
      fd ??= openSync(tmp, "w");
      for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done, bytes.byteLength - done);
    } catch (err) {
      throw cannot(err);
    }
  };
  const closeFd = () => {
    if (fd !== null) closeSync(fd);
    fd = null;
  };
  return {
    async write(line) {
      append(Buffer.from(line, "utf8"));
    },
    close() {
      append(new Uint8Array(0)); // an empty run still makes its (empty) file
      try {
        fsyncSync(fd!);
      } catch (err) {
        throw cannot(err);
      }
      closeFd();
      try {
        renameSync(tmp, path);
      } catch (err) {
        throw cannot(err);
      }
    },
    abort() {
      closeFd();
      rmSync(tmp, { force: true });
    },
  };
}

/** Puts results back in input order: slot i is written once slots 0..i-1 have been. */
export class OrderedWriter {
  readonly #waiting = new Map<number, BatchResult>();
  #next = 0;

  constructor(private readonly out: LineOutput) {}

  async put(slot: number, result: BatchResult): Promise<void> {
    this.#waiting.set(slot, result);
    while (this.#waiting.has(this.#next)) {
      const ready = this.#waiting.get(this.#next)!;
      this.#waiting.delete(this.#next);
      this.#next++;
      await this.out.write(`${JSON.stringify(ready)}\n`);
    }
  }

  /** Writes what still waits for an earlier slot that will never come (an interrupted run), in slot order. */
  async flush(): Promise<void> {
    for (const slot of [...this.#waiting.keys()].sort((a, b) => a - b)) {
      const ready = this.#waiting.get(slot)!;
      this.#waiting.delete(slot);
      await this.out.write(`${JSON.stringify(ready)}\n`);
    }
  }
}
