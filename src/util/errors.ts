// One error type for everything a user can cause: bad files, bad flags, engine failures.
// cli.ts prints `eagle: <message>` and exits non-zero; nothing else catches.
export class EagleError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = "EagleError";
  }
}

export function fail(message: string): never {
  throw new EagleError(message);
}
