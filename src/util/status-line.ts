// status-line.ts — a transient one-line status on stderr for long work (loading large checkpoints, bench),
// drawn only when stderr is a terminal and cleared when the work is done.
const enabled = process.stderr.isTTY === true;
let shown = false;

export function showStatus(text: string): void {
  if (!enabled) return;
  process.stderr.write(`\r\x1b[2K${text}`);
  shown = true;
}

export function clearStatus(): void {
  if (!shown) return;
  process.stderr.write("\r\x1b[2K");
  shown = false;
}
