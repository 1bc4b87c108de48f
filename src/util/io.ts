// io.ts — stdin and stdout for a CLI that is piped: read all of stdin; write without buffering up
// output; a closed downstream pipe (`| head`) ends the process quietly, any other write error with one line.
export async function readStdin(): Promise<string> {
  return await Bun.stdin.text();
}

let pipeClosed = false;

process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  pipeClosed = true;
  if (e.code === "EPIPE") process.exit(0);
  // a full disk, a device that refuses writes: one line, not a stack trace
  process.stderr.write(`eagle: cannot write to standard output: ${e.message}\n`);
  process.exit(1);
});

export async function writeOut(text: string): Promise<void> {
  if (pipeClosed || text.length === 0) return;
  process.stdout.write(text);
}
