import { quote } from "shell-quote";
import { U7sError } from "./errors.ts";
import { REDACTED, RedactingStream, redactArgv } from "./redact.ts";

/** RunOptions tune one command run. */
export interface RunOptions {
  /** input: text written to the command's stdin. */
  input?: string;
  /** stdinFile: a file (e.g. an image archive) given to the command as its stdin, read by the command itself. */
  stdinFile?: string;
  /** stream: pass stdout and stderr through to ours live (stderr is still kept for errors). */
  stream?: boolean;
  /** inherit: give the command our terminal (interactive shells); nothing is captured. */
  inherit?: boolean;
  /** env: extra environment variables for the command. */
  env?: Record<string, string>;
  /** timeoutMs: kill the command after this long. */
  timeoutMs?: number;
  /** onStdout: called with each piece of stdout as it arrives (a watch that never ends); stdout is still captured. */
  onStdout?: (text: string) => void;
  /** signal: aborting it stops the command (SIGTERM), e.g. a watch when u7s itself is stopped. */
  signal?: AbortSignal;
}

/** RunResult is what a finished command left behind. */
export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runner runs an argv and resolves with its result, whatever the exit code; a missing binary rejects with a U7sError. */
export type Runner = (argv: readonly string[], opts?: RunOptions) => Promise<RunResult>;

// Arguments made only of these characters need no quoting in any POSIX shell.
const PLAIN_ARG = /^[A-Za-z0-9_\/.,:=@%+-]+$/;

/** quoteWord shell-quotes one argument unless it needs no quoting. */
function quoteWord(a: string): string {
  return PLAIN_ARG.test(a) ? a : quote([a]);
}

/**
 * formatCommand renders an argv as a shell-quoted line (copy-pasteable), for messages and --dry-run
 * only, with its secrets redacted (redactArgv): REDACTED stands unquoted where a secret was.
 */
export function formatCommand(argv: readonly string[]): string {
  return redactArgv(argv)
    .map((a) => a.split(REDACTED).map((piece) => (piece === "" ? "" : quoteWord(piece))).join(REDACTED) || quoteWord(a))
    .join(" ");
}

/** lastLines returns the last n non-empty lines of a text. */
export function lastLines(text: string, n: number): string {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .slice(-n)
    .join("\n");
}

/** CommandError is a command that exited non-zero: it shows the command and its stderr. */
export class CommandError extends U7sError {
  readonly argv: readonly string[];
  readonly result: RunResult;
  constructor(argv: readonly string[], result: RunResult, hint?: string) {
    const tail = lastLines(result.stderr || result.stdout, 10);
    // The command line is redacted (formatCommand); its output is redacted where it is printed (Log).
    super(`command failed (exit code ${result.exitCode}): ${formatCommand(argv)}`, {
      hint,
      detail: tail === "" ? undefined : tail,
    });
    this.name = "CommandError";
    this.argv = argv;
    this.result = result;
  }
}

/** check resolves with the result of a run, or rejects with a CommandError when it exited non-zero. */
export async function check(runner: Runner, argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
  const result = await runner(argv, opts);
  if (result.exitCode !== 0) throw new CommandError(argv, result);
  return result;
}

/** pump reads a stream whole, passing each decoded piece to sink as it arrives. */
async function pump(stream: ReadableStream<Uint8Array> | null, sink: ((text: string) => void) | undefined): Promise<string> {
  if (!stream) return "";
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    const piece = decoder.decode(chunk, { stream: true });
    sink?.(piece);
    text += piece;
  }
  const last = decoder.decode();
  if (last !== "") sink?.(last);
  return text + last;
}

/** passOn relays a command's live output to ours, redacted (kubeadm init prints its bootstrap token). */
function passOn(to: NodeJS.WriteStream): RedactingStream {
  return new RedactingStream((text) => to.write(text));
}

/** spawnRunner is the production Runner: Bun.spawn with an argv array, never a shell. */
export const spawnRunner: Runner = async (argv, opts = {}) => {
  const [bin] = argv;
  if (bin === undefined) throw new U7sError("internal: empty command");
  if (Bun.which(bin, { PATH: process.env.PATH ?? "" }) === null && !bin.includes("/")) {
    throw new U7sError(`${bin}: command not found`, { hint: `install ${bin} or put it on PATH` });
  }
  const env = opts.env ? { ...process.env, ...opts.env } : process.env;
  let proc;
  try {
    proc = Bun.spawn([...argv], {
      stdin: opts.inherit ? "inherit" : opts.stdinFile !== undefined ? Bun.file(opts.stdinFile) : opts.input !== undefined ? new Blob([opts.input]) : "ignore",
      stdout: opts.inherit ? "inherit" : "pipe",
      stderr: opts.inherit ? "inherit" : "pipe",
      env,
      timeout: opts.timeoutMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ENOENT") throw new U7sError(`${bin}: command not found`, { hint: `check the path, or install ${bin.split("/").pop()}` });
    throw new U7sError(`cannot run ${formatCommand(argv)}: ${e.message}`);
  }
  if (opts.inherit) {
    const exitCode = await proc.exited;
    return { exitCode, stdout: "", stderr: "" };
  }
  const out = opts.stream ? passOn(process.stdout) : undefined;
  const err = opts.stream ? passOn(process.stderr) : undefined;
  const onStdout =
    out || opts.onStdout
      ? (text: string) => {
          out?.write(text);
          opts.onStdout?.(text);
        }
      : undefined;
  const [stdout, stderr, exitCode] = await Promise.all([
    pump(proc.stdout as ReadableStream<Uint8Array>, onStdout),
    pump(proc.stderr as ReadableStream<Uint8Array>, err ? (text) => err.write(text) : undefined),
    proc.exited,
  ]);
  out?.end();
  err?.end();
  return { exitCode, stdout, stderr };
};
