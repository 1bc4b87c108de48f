// io.ts — stdin and stdout for a CLI that is piped: read all of stdin; write without buffering up
// output; a closed downstream pipe (`| head`) ends the process quietly.
export async function readStdin(): Promise<string> {
  return await Bun.stdin.text();
}

let pipeClosed = false;

process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") {
    pipeClosed = true;
    process.exit(0);
  }
  throw e;
});

export async function writeOut(text: string): Promise<void> {
  if (pipeClosed || text.length === 0) return;
  process.stdout.write(text);
}
