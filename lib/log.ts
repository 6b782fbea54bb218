import type yoctoSpinner from "yocto-spinner";
import { redact } from "./redact.ts";

/** Writer is where text goes (stdout or stderr). */
export interface Writer {
  write(text: string): void;
  readonly isTTY: boolean;
}

/**
 * redactingWriter is w with every text redacted before it is written: where u7s's messages leave the
 * process, so no message, progress line, --debug line or stack trace can print a secret.
 */
export function redactingWriter(w: Writer): Writer {
  return { isTTY: w.isTTY, write: (text) => w.write(redact(text)) };
}

/** elapsed formats a duration in seconds with one decimal, as progress lines show it. */
export function elapsed(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** Colors are the styles u7s prints with (ANSI SGR codes), or plain text when colour is off. */
export type Colors = Record<"red" | "green" | "yellow" | "dim" | "bold", (text: string) => string>;

/**
 * colors returns the styles, plain when off. Written out rather than imported: picocolors reads
 * process.stdout when loaded, which costs every command ~10 ms of start-up.
 */
export function colors(on: boolean): Colors {
  const sgr = (open: number, close: number) => (text: string) => (on ? `\x1b[${open}m${text}\x1b[${close}m` : text);
  return { red: sgr(31, 39), green: sgr(32, 39), yellow: sgr(33, 39), dim: sgr(2, 22), bold: sgr(1, 22) };
}

/** spinnerLib is yocto-spinner, loaded the first time a spinner is drawn (a terminal only). */
let spinnerLib: typeof yoctoSpinner | undefined;

/** LogOptions: colour, --quiet (no progress or status lines), --debug (engine commands with durations). */
export interface LogOptions {
  color: boolean;
  quiet?: boolean;
  debug?: boolean;
  /** terminal: the terminal behind stderr, for a spinner on the running step (none on a pipe or a file). */
  terminal?: NodeJS.WriteStream;
}

/**
 * Log prints status lines, warnings and errors to stderr; stdout stays for program output.
 * Progress: one line per step with its elapsed time; on a terminal a spinner shows the running step.
 */
export class Log {
  readonly #err: Writer;
  readonly #c: Colors;
  readonly #colorOn: boolean;
  readonly quiet: boolean;
  readonly debugging: boolean;
  readonly #terminal: NodeJS.WriteStream | undefined;
  #spinner: ReturnType<typeof yoctoSpinner> | undefined;
  /** #running: the titles of the steps running now, newest last (the spinner shows the newest). */
  readonly #running: string[] = [];
  constructor(err: Writer, opts: LogOptions) {
    const sink = redactingWriter(err);
    this.#err = {
      isTTY: err.isTTY,
      // a line written while the spinner is drawn replaces it; the spinner redraws below it
      write: (t) => {
        this.#spinner?.clear();
        sink.write(t);
      },
    };
    this.#c = colors(opts.color);
    this.#colorOn = opts.color;
    this.quiet = opts.quiet ?? false;
    this.debugging = opts.debug ?? false;
    this.#terminal = this.quiet ? undefined : opts.terminal;
  }
  /** debug prints a line only with --debug (engine commands and their durations). */
  debug(text: string): void {
    if (this.debugging) this.#err.write(`${this.#c.dim(`debug: ${text}`)}\n`);
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
  /**
   * step runs one named step of a multi-step command and prints ` ✓ title (1.2s)` or ` ✗ title (1.2s)`;
   * on a terminal a spinner shows the step while it runs (never with --quiet or on a pipe).
   */
  async step<T>(title: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    if (this.#terminal && !spinnerLib) spinnerLib = (await import("yocto-spinner")).default;
    // A step inside a step, or steps run at once: the newest running one spins; when it ends, the
    // one before it spins again.
    this.#running.push(title);
    this.#spin();
    const done = (mark: string) => {
      this.#running.splice(this.#running.lastIndexOf(title), 1);
      this.#spin();
      this.info(` ${mark} ${title} ${this.#c.dim(`(${elapsed(performance.now() - t0)})`)}`);
    };
    try {
      const value = await fn();
      done(this.#c.green("✓"));
      return value;
    } catch (err) {
      done(this.#c.red("✗"));
      throw err;
    }
  }
  /** #spin shows the newest running step on the terminal's spinner, or stops it when no step runs. */
  #spin(): void {
    if (!this.#terminal) return;
    const running = this.#running.at(-1);
    // the spinner writes to the terminal itself, past the redacting sink
    const title = running === undefined ? undefined : redact(running);
    if (title === undefined) {
      this.#spinner?.stop();
      this.#spinner = undefined;
    } else if (this.#spinner) {
      this.#spinner.text = title;
    } else {
      this.#spinner = spinnerLib?.({ text: title, stream: this.#terminal }).start();
    }
  }
  /**
   * prefixed is a Log that starts every line with prefix, to the same stderr (`u7s up --job`: the
   * host's name, as every host's output of a job meets in one job log). It draws no spinner.
   */
  prefixed(prefix: string): Log {
    const err = this.#err;
    let atLineStart = true;
    const write = (text: string) => {
      let out = "";
      for (const piece of text.split(/(?<=\n)/)) {
        if (piece === "") continue;
        out += (atLineStart ? prefix : "") + piece;
        atLineStart = piece.endsWith("\n");
      }
      err.write(out);
    };
    return new Log({ isTTY: false, write }, { color: this.#colorOn, quiet: this.quiet, debug: this.debugging });
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
