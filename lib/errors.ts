import { redact } from "./redact.ts";

/**
 * U7sError is an error meant for users: a one-line message, an optional hint and an exit code. Its
 * texts are redacted (redact): they are printed, and some end up in JSON on stdout.
 */
export class U7sError extends Error {
  readonly hint?: string;
  readonly exitCode: number;
  /** detail: extra lines shown under the message (for example a command's last stderr lines). */
  readonly detail?: string;
  constructor(message: string, opts: { hint?: string; exitCode?: number; detail?: string; cause?: unknown } = {}) {
    super(redact(message), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "U7sError";
    this.hint = opts.hint === undefined ? undefined : redact(opts.hint);
    this.exitCode = opts.exitCode ?? 1;
    this.detail = opts.detail === undefined ? undefined : redact(opts.detail);
  }
}

/** UsageError is bad input from the user: exit code 2 and nothing changed on the engine. */
export class UsageError extends U7sError {
  /** problems: every problem found, one line each (the message is the first, or a summary). */
  readonly problems: readonly string[];
  constructor(problems: string | readonly string[], opts: { hint?: string } = {}) {
    const list = typeof problems === "string" ? [problems] : problems;
    super(list.join("\n"), { ...opts, exitCode: 2 });
    this.name = "UsageError";
    this.problems = list;
  }
}

/** wrapError prefixes what was being done to an error, keeping its hint, detail and exit code. */
export function wrapError(doing: string, err: unknown): U7sError {
  if (err instanceof U7sError) {
    const wrapped = new U7sError(`${doing}: ${err.message}`, {
      hint: err.hint,
      exitCode: err.exitCode,
      detail: err.detail,
      cause: err,
    });
    return wrapped;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new U7sError(`${doing}: ${message}`, { cause: err });
}

/**
 * errnoText turns a system error into plain words: "no space left on device (ENOSPC)" rather than
 * "ENOSPC: no space left on device, write"; other errors give their message.
 */
export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  const message = e instanceof Error ? e.message : String(err);
  if (typeof e?.code !== "string") return message;
  const words = message.replace(new RegExp(`^${e.code}:\\s*`), "").replace(/,\s*\w+\s*('.*')?$/, "").trim();
  return words === "" || words === e.code ? e.code : `${words} (${e.code})`;
}
