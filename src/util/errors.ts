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

/** A flag's value out of range: a usage error (exit 2). `flag` is the option's name (`n`, `top-k`);
 * cli.ts prints the flag and value as the user typed them (`-n abc`, `--max-tokens 1.5`). */
export class FlagError extends EagleError {
  constructor(readonly flag: string, readonly value: unknown, readonly want: string) {
    super(`--${flag} ${value}: must be ${want}`, 2);
    this.name = "FlagError";
  }
}
