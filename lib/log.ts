import pc from "picocolors";

/** Writer is where text goes (stdout or stderr). */
export interface Writer {
  write(text: string): void;
  readonly isTTY: boolean;
}

/** Log prints status lines, warnings and errors to stderr; stdout stays for program output. */
export class Log {
  readonly #err: Writer;
  readonly #c: ReturnType<typeof pc.createColors>;
  readonly quiet: boolean;
  constructor(err: Writer, opts: { color: boolean; quiet?: boolean }) {
    this.#err = err;
    this.#c = pc.createColors(opts.color);
    this.quiet = opts.quiet ?? false;
  }
  /** info prints a plain status line. */
  info(text: string): void {
    if (!this.quiet) this.#err.write(`${text}\n`);
  }
  /** warn prints a warning that does not fail the command. */
  warn(text: string, hint?: string): void {
    this.#err.write(`${this.#c.yellow("warning:")} ${text}\n`);
    if (hint) this.#err.write(`${this.#c.dim("hint:")} ${hint}\n`);
  }
  /** error prints an error line, optional detail lines (indented) and a hint. */
  error(text: string, detail?: string, hint?: string): void {
    this.#err.write(`${this.#c.red("error:")} ${text}\n`);
    if (detail) this.#err.write(`${detail.replace(/^/gm, "  ")}\n`);
    if (hint) this.#err.write(`${this.#c.dim("hint:")} ${hint}\n`);
  }
  /** hint prints a hint line on its own. */
  hint(text: string): void {
    this.#err.write(`${this.#c.dim("hint:")} ${text}\n`);
  }
  /** step runs one named step of a multi-step command and prints ` ✓ title (1.2s)` or ` ✗ title`. */
  async step<T>(title: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      const value = await fn();
      this.info(` ${this.#c.green("✓")} ${title} ${this.#c.dim(`(${((performance.now() - t0) / 1000).toFixed(1)}s)`)}`);
      return value;
    } catch (err) {
      this.info(` ${this.#c.red("✗")} ${title}`);
      throw err;
    }
  }
  /** bold styles text for headings. */
  bold(text: string): string {
    return this.#c.bold(text);
  }
}

/** colorEnabled honours NO_COLOR, FORCE_COLOR and whether the stream is a terminal. */
export function colorEnabled(env: Readonly<Record<string, string | undefined>>, w: Writer): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "" && env.FORCE_COLOR !== "0") return true;
  return w.isTTY && env.TERM !== "dumb";
}
