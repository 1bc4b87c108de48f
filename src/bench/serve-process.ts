// serve-process.ts — `eagle serve` as a child process on a free loopback port, for the tests and the load
// benchmark: started, its listening line awaited (it names the port), its stderr kept, stopped by SIGINT.
import { join } from "node:path";
import { REPO_ROOT } from "../util/paths.ts";

const CLI = join(REPO_ROOT, "src/cli.ts");

export interface ServeProcess {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  base: string;          // http://127.0.0.1:PORT
  stderr(): string;      // everything it wrote to stderr so far
  stop(): Promise<number>; // Ctrl-C, then its exit code
}

/** Starts `eagle serve --port 0 ARGS` and resolves once it listens; rejects with its stderr if it exits first. */
export async function startServe(args: string[], env: Record<string, string | undefined> = process.env): Promise<ServeProcess> {
  const proc = Bun.spawn([process.execPath, CLI, "serve", "--port", "0", ...args],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe", env });
  let text = "";
  const reader = proc.stderr.getReader();
  const decoder = new TextDecoder();
  let port: string | undefined;
  while (port === undefined) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`eagle serve exited before listening:\n${text}`);
    text += decoder.decode(value, { stream: true });
    port = /eagle serve: http:\/\/127\.0\.0\.1:(\d+) /.exec(text)?.[1];
  }
  // keep draining stderr so the child never blocks on a full pipe
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += decoder.decode(value, { stream: true });
    }
  })();
  return {
    proc, base: `http://127.0.0.1:${port}`, stderr: () => text,
    async stop() {
      proc.kill("SIGINT");
      return await proc.exited;
    },
  };
}
