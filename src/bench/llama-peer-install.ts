// llama-peer-install.ts — llama.cpp as bench's peer, installed on demand (never at set-up) into
// build/llama-peer/: node-llama-cpp at one exact version plus only its prebuilt CPU binary package.
// Optional dependencies are omitted (with all of them, CUDA and Vulkan builds included, it is ~700 MB)
// and install scripts are ignored, so nothing is built and nothing but those npm packages is downloaded.
// The install goes into a temporary folder, is checked, and is renamed into place only then.
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EagleError } from "../util/errors.ts";
import { REPO_ROOT } from "../util/paths.ts";

export const LLAMA_PEER_VERSION = "3.22.1";
export const LLAMA_PEER_DIR = join(REPO_ROOT, "build", "llama-peer");
const MIN_NODE_MAJOR = 20; // node-llama-cpp's engines field

// platform -> the prebuilt CPU-only binary package; other prebuilt packages carry GPU back-ends
const CPU_PACKAGES: Record<string, string> = { "linux-x64": "@node-llama-cpp/linux-x64" };
const GPU_PACKAGE = /cuda|vulkan|metal/i;
const MARKER = "eagle-peer.json";

export interface PeerInstall {
  dir: string;            // holds node_modules/node-llama-cpp
  version: string;
  binaryPackage: string;  // the prebuilt CPU package
  node: string;           // the Node.js version that runs the peer
  bytes: number;          // size on disk of the install
  installedNow: boolean;  // false when an install was already there
  installMs: number;      // 0 when already there
}

/** The CPU binary package for this platform; refuses (one line) where node-llama-cpp ships none. */
export function cpuBinaryPackage(platform = process.platform, arch = process.arch): string {
  const pkg = CPU_PACKAGES[`${platform}-${arch}`];
  if (!pkg) {
    throw new EagleError(`llama.cpp peer: no prebuilt CPU binary of node-llama-cpp for ${platform}-${arch} ` +
      `(supported: ${Object.keys(CPU_PACKAGES).join(", ")}); building from source is not done here`);
  }
  return pkg;
}

/** The version of the `node` on the PATH (a real Node.js, not Bun standing in for it), at least 20. */
export function nodeVersion(): string {
  const p = spawnSync("node", ["-e", "process.stdout.write(JSON.stringify([process.versions.node, !!process.versions.bun]))"],
    { encoding: "utf8" });
  if (p.error || p.status !== 0) throw new EagleError(`llama.cpp peer: needs Node.js ${MIN_NODE_MAJOR}+ as "node" on the PATH (${p.error?.message ?? p.stderr.trim()})`);
  const [version, isBun] = JSON.parse(p.stdout) as [string, boolean];
  if (isBun) throw new EagleError(`llama.cpp peer: "node" on the PATH is Bun; node-llama-cpp needs Node.js ${MIN_NODE_MAJOR}+`);
  if (Number(version.split(".")[0]) < MIN_NODE_MAJOR) throw new EagleError(`llama.cpp peer: needs Node.js ${MIN_NODE_MAJOR}+, "node" is ${version}`);
  return version;
}

function readJson(path: string): Record<string, unknown> | null {
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>) : null;
}

function diskBytes(path: string): number {
  const s = lstatSync(path);
  if (!s.isDirectory()) return s.blocks * 512;
  return readdirSync(path).reduce((n, name) => n + diskBytes(join(path, name)), s.blocks * 512);
}

/** Checks an install: the pinned versions, the CPU binary there, and no GPU package anywhere. */
function verify(dir: string, pkg: string): void {
  const modules = join(dir, "node_modules");
  const bad = (what: string): never => {
    throw new EagleError(`llama.cpp peer: install in ${dir} is wrong: ${what}`);
  };
  const main = readJson(join(modules, "node-llama-cpp", "package.json"));
  if (main?.version !== LLAMA_PEER_VERSION) bad(`node-llama-cpp is ${main?.version ?? "missing"}, want ${LLAMA_PEER_VERSION}`);
  const binary = readJson(join(modules, pkg, "package.json"));
  if (binary?.version !== LLAMA_PEER_VERSION) bad(`${pkg} is ${binary?.version ?? "missing"}, want ${LLAMA_PEER_VERSION}`);
  const addon = join(modules, pkg, "bins", pkg.split("/")[1], "llama-addon.node");
  if (!existsSync(addon)) bad(`${addon} is missing`);
  const scoped = readdirSync(join(modules, "@node-llama-cpp"));
  if (scoped.length !== 1 || `@node-llama-cpp/${scoped[0]}` !== pkg) bad(`@node-llama-cpp holds ${scoped.join(", ")}, want only ${pkg}`);
  const gpu = readdirSync(modules).flatMap((n) => (n.startsWith("@") ? readdirSync(join(modules, n)).map((s) => `${n}/${s}`) : [n]))
    .filter((n) => GPU_PACKAGE.test(n));
  if (gpu.length > 0) bad(`GPU packages came in: ${gpu.join(", ")}`);
}

function npmInstall(dir: string, pkg: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), `${JSON.stringify({
    name: "eagle-llama-peer", private: true, description: "llama.cpp benchmark peer for eagle bench (installed on demand)",
    dependencies: { "node-llama-cpp": LLAMA_PEER_VERSION, [pkg]: LLAMA_PEER_VERSION },
  }, null, 2)}\n`);
  const p = spawnSync("npm", ["install", "--prefix", dir, "--omit=optional", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (p.error || p.status !== 0) {
    const why = p.error?.message ?? p.stderr.trim().split("\n").filter((l) => l.trim() !== "").slice(-1)[0] ?? `exit ${p.status}`;
    throw new EagleError(`llama.cpp peer: npm install of node-llama-cpp@${LLAMA_PEER_VERSION} failed: ${why}`);
  }
}

/** The peer at `dir`, installed first when it is not there (progress on stderr). */
export function ensureLlamaPeer(dir = LLAMA_PEER_DIR): PeerInstall {
  const pkg = cpuBinaryPackage();
  const node = nodeVersion();
  const marker = readJson(join(dir, MARKER));
  if (marker?.version === LLAMA_PEER_VERSION && marker.binaryPackage === pkg) {
    return { dir, version: LLAMA_PEER_VERSION, binaryPackage: pkg, node, bytes: Number(marker.bytes), installedNow: false, installMs: 0 };
  }
  process.stderr.write(`bench: installing node-llama-cpp@${LLAMA_PEER_VERSION} + ${pkg} into ${dir} (once)...\n`);
  const t0 = performance.now();
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    npmInstall(tmp, pkg);
    verify(tmp, pkg);
    const bytes = diskBytes(tmp);
    writeFileSync(join(tmp, MARKER), `${JSON.stringify({ version: LLAMA_PEER_VERSION, binaryPackage: pkg, bytes })}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    return { dir, version: LLAMA_PEER_VERSION, binaryPackage: pkg, node, bytes, installedNow: true, installMs: performance.now() - t0 };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
