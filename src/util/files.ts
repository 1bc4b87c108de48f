// files.ts — opening and reading the files a user points at. Whatever is wrong (missing, a directory, a
// device, unreadable, not UTF-8 where text is expected) becomes one EagleError that names the file.
import { closeSync, fstatSync, openSync, readFileSync } from "node:fs";
import { EagleError } from "./errors.ts";

/** A descriptor of the regular file at `path`, opened for reading; `what` names it in errors. */
export function openRegularFile(path: string, what: string): number {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw new EagleError(`${path}: cannot open ${what}: ${reason(err as NodeJS.ErrnoException)}`);
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new EagleError(`${path}: cannot open ${what}: not a regular file`);
  }
  return fd;
}

// the usual causes in words; the path is already in the message
function reason(e: NodeJS.ErrnoException): string {
  if (e.code === "ENOENT") return "no such file";
  if (e.code === "EACCES") return "permission denied";
  if (e.code === "ENOTDIR") return "a folder on its path is a file";
  return e.message;
}

/** The whole text of the file at `path` (UTF-8; bad sequences read as U+FFFD). */
export function readTextFile(path: string, what: string): string {
  const fd = openRegularFile(path, what);
  try {
    return readFileSync(fd, "utf8");
  } catch (err) {
    throw new EagleError(`${path}: cannot read ${what}: ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
}
