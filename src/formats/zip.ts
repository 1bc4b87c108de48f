// a minimal zip reader: just enough to find entries and where their bytes start.
// reads with positioned readSync only, so multi-GB archives never sit in memory.
// layout: [local header, data]* central-directory [zip64 eocd, zip64 locator] eocd
import { fstatSync, readSync } from "node:fs";
import { EagleError } from "../util/errors.ts";

export interface ZipEntry {
  name: string;
  method: number; // 0 stored, 8 deflated
  flags: number;
  compressedSize: number; // bytes in the archive
  size: number; // bytes after inflating
  localHeaderOffset: number;
}

export interface ZipArchive {
  path: string;
  fd: number;
  fileSize: number;
  entries: ZipEntry[];
}

const EOCD_SIG = 0x06054b50;
const EOCD64_SIG = 0x06064b50;
const LOCATOR_SIG = 0x07064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const EOCD_BYTES = 22;
const CENTRAL_BYTES = 46;
const LOCAL_BYTES = 30;
const MAX_COMMENT = 0xffff;
const MAX_CENTRAL_BYTES = 64 * 1024 * 1024; // a state dict needs ~100 bytes per tensor
const ZIP64_EXTRA = 0x0001;

export function readBytes(fd: number, position: number, length: number, path: string): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new EagleError(`${path}: truncated: wanted ${length} bytes at ${position}, got ${done}`);
    done += n;
  }
  return buf;
}

export function openZip(fd: number, path: string): ZipArchive {
  const fileSize = fstatSync(fd).size;
  const directory = findDirectory(fd, path, fileSize);
  const entries = readCentralDirectory(fd, path, directory);
  return { path, fd, fileSize, entries };
}

interface Directory {
  count: number;
  offset: number;
  size: number;
  end: number; // where the central directory must stop (start of the eocd records)
}

// the eocd is the last record; a comment of up to 64 KiB may follow it
function findDirectory(fd: number, path: string, fileSize: number): Directory {
  if (fileSize < EOCD_BYTES) throw new EagleError(`${path}: not a zip archive (${fileSize} bytes)`);
  const tailStart = Math.max(0, fileSize - EOCD_BYTES - MAX_COMMENT);
  const tail = readBytes(fd, tailStart, fileSize - tailStart, path);
  for (let i = tail.length - EOCD_BYTES; i >= 0; i--) {
    if (tail.readUInt32LE(i) !== EOCD_SIG) continue;
    if (i + EOCD_BYTES + tail.readUInt16LE(i + 20) > tail.length) continue;
    return directoryFromEocd(fd, path, fileSize, tail.subarray(i), tailStart + i);
  }
  throw new EagleError(`${path}: not a zip archive (no end-of-central-directory record)`);
}

function directoryFromEocd(fd: number, path: string, fileSize: number, eocd: Buffer, at: number): Directory {
  // disk numbers are 0 in a single-file archive (0xffff when a zip64 writer saturates every field)
  const disks = [eocd.readUInt16LE(4), eocd.readUInt16LE(6)];
  if (disks.some((d) => d !== 0 && d !== 0xffff)) {
    throw new EagleError(`${path}: multi-disk zip archives are not supported`);
  }
  let dir: Directory = { count: eocd.readUInt16LE(10), size: eocd.readUInt32LE(12), offset: eocd.readUInt32LE(16), end: at };
  // a zip64 locator sits right before the eocd when the archive needed 64-bit fields
  if (at >= 20 && readBytes(fd, at - 20, 4, path).readUInt32LE(0) === LOCATOR_SIG) {
    dir = readZip64Directory(fd, path, at - 20);
  }
  if (dir.offset + dir.size > dir.end || dir.end > fileSize) {
    throw new EagleError(`${path}: bad end-of-central-directory: directory at ${dir.offset} (+${dir.size}) runs past ${dir.end}`);
  }
  if (dir.size > MAX_CENTRAL_BYTES) throw new EagleError(`${path}: central directory of ${dir.size} bytes is too large`);
  if (dir.count * CENTRAL_BYTES > dir.size) {
    throw new EagleError(`${path}: bad end-of-central-directory: ${dir.count} entries cannot fit in ${dir.size} bytes`);
  }
  return dir;
}

function readZip64Directory(fd: number, path: string, locatorAt: number): Directory {
  const locator = readBytes(fd, locatorAt, 20, path);
  const recordAt = u64(locator, 8, path, "zip64 locator offset");
  if (recordAt + 56 > locatorAt) throw new EagleError(`${path}: bad zip64 locator: record offset ${recordAt}`);
  const record = readBytes(fd, recordAt, 56, path);
  if (record.readUInt32LE(0) !== EOCD64_SIG) throw new EagleError(`${path}: bad zip64 end-of-central-directory signature`);
  return {
    count: u64(record, 32, path, "zip64 entry count"),
    size: u64(record, 40, path, "zip64 directory size"),
    offset: u64(record, 48, path, "zip64 directory offset"),
    end: recordAt,
  };
}

function u64(buf: Buffer, at: number, path: string, what: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new EagleError(`${path}: ${what} ${v} is too large`);
  return Number(v);
}

function readCentralDirectory(fd: number, path: string, dir: Directory): ZipEntry[] {
  const buf = readBytes(fd, dir.offset, dir.size, path);
  const entries: ZipEntry[] = [];
  let at = 0;
  for (let i = 0; i < dir.count; i++) {
    if (at + CENTRAL_BYTES > buf.length || buf.readUInt32LE(at) !== CENTRAL_SIG) {
      throw new EagleError(`${path}: bad central directory header for entry ${i} at ${dir.offset + at}`);
    }
    const nameLen = buf.readUInt16LE(at + 28);
    const extraLen = buf.readUInt16LE(at + 30);
    const next = at + CENTRAL_BYTES + nameLen + extraLen + buf.readUInt16LE(at + 32);
    if (next > buf.length) throw new EagleError(`${path}: central directory entry ${i} runs past the directory`);
    const name = buf.toString("utf8", at + CENTRAL_BYTES, at + CENTRAL_BYTES + nameLen);
    const extra = buf.subarray(at + CENTRAL_BYTES + nameLen, at + CENTRAL_BYTES + nameLen + extraLen);
    entries.push(centralEntry(buf.subarray(at, at + CENTRAL_BYTES), name, extra, path));
    at = next;
  }
  return entries;
}

// 0xffffffff in a 32-bit field means "see the zip64 extra field", which lists only those fields, in order
function centralEntry(header: Buffer, name: string, extra: Buffer, path: string): ZipEntry {
  const wide = zip64Fields(extra, path, name);
  const pick = (v: number): number => {
    if (v !== 0xffffffff) return v;
    const w = wide.shift();
    if (w === undefined) throw new EagleError(`${path}: entry "${name}": zip64 extra field is missing a value`);
    return w;
  };
  const size = pick(header.readUInt32LE(24));
  const compressedSize = pick(header.readUInt32LE(20));
  const localHeaderOffset = pick(header.readUInt32LE(42));
  return { name, method: header.readUInt16LE(10), flags: header.readUInt16LE(8), compressedSize, size, localHeaderOffset };
}

function zip64Fields(extra: Buffer, path: string, name: string): number[] {
  for (let at = 0; at + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(at);
    const len = extra.readUInt16LE(at + 2);
    if (at + 4 + len > extra.length) break;
    if (id === ZIP64_EXTRA) {
      const values: number[] = [];
      for (let k = 0; k + 8 <= len; k += 8) values.push(u64(extra, at + 4 + k, path, `entry "${name}" zip64 field`));
      return values;
    }
    at += 4 + len;
  }
  return [];
}

// the local header repeats name and extra; its extra length may differ from the central one
// (torch pads it so data starts 64-byte aligned), so the data offset must come from here
export function entryDataOffset(zip: ZipArchive, entry: ZipEntry): number {
  const { path, fd } = zip;
  if (entry.flags & 1) throw new EagleError(`${path}: entry "${entry.name}" is encrypted`);
  if (entry.localHeaderOffset + LOCAL_BYTES > zip.fileSize) {
    throw new EagleError(`${path}: entry "${entry.name}": local header offset ${entry.localHeaderOffset} is past the end`);
  }
  const header = readBytes(fd, entry.localHeaderOffset, LOCAL_BYTES, path);
  if (header.readUInt32LE(0) !== LOCAL_SIG) {
    throw new EagleError(`${path}: entry "${entry.name}": bad local header signature at ${entry.localHeaderOffset}`);
  }
  const start = entry.localHeaderOffset + LOCAL_BYTES + header.readUInt16LE(26) + header.readUInt16LE(28);
  if (start + entry.compressedSize > zip.fileSize) {
    throw new EagleError(`${path}: entry "${entry.name}": data (${entry.compressedSize} bytes at ${start}) runs past the end`);
  }
  return start;
}
