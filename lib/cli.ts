import { readFileSync, readlinkSync, writeSync } from "node:fs";
import { parseArgs } from "node:util";
import { closest, distance } from "fastest-levenshtein";
import { debugRunner } from "./apply.ts";
import type { NodeConfig } from "./config/resolve.ts";
import type { Engine } from "./engine/engine.ts";
import { errnoText, U7sError, UsageError } from "./errors.ts";
import { spawnRunner, type Runner } from "./exec.ts";
import { realHost, type HostProbe } from "./host/probe.ts";
import { colorEnabled, Log, redactingWriter, type Writer } from "./log.ts";
import { COMMAND_INDEX, findEntry } from "./commands/_index.ts";
import { settingFlags, settingOptions } from "./commands/_shared.ts";
import type { Args, CommandDef, Ctx, OptionDef } from "./commands/_types.ts";
import { VERSION } from "./versions.ts";

/** Deps are everything run() touches outside itself; tests inject fakes. */
export interface Deps {
  runner: Runner;
  host: HostProbe;
  env: Readonly<Record<string, string | undefined>>;
  stdout: Writer;
  stderr: Writer;
  /** stdinIsTTY: stdin is a terminal (shell and exec then allocate a TTY in the node). */
  stdinIsTTY: boolean;
}

/** defaultDeps are the production dependencies: real processes, the real host, process.env. */
export function defaultDeps(): Deps {
  return {
    runner: spawnRunner,
    host: realHost(spawnRunner),
    env: process.env,
    stdout: fdWriter(1, { name: "stdout", strict: true, isTTY: isTerminal(1) }),
    stderr: fdWriter(2, { name: "stderr", strict: false, isTTY: isTerminal(2) }),
    stdinIsTTY: isTerminal(0),
  };
}

/**
 * isTerminal tells whether fd is a terminal. Asked of Bun's tty binding (what node:tty's isatty
 * calls), because loading node:tty costs every command ~3 ms of start-up, and process.stdout.isTTY
 * ~10 ms (it builds the stream); node:tty when the binding is not there.
 */
export function isTerminal(fd: number): boolean {
  try {
    const binding = (process as unknown as { binding(name: string): { isTTY?: (fd: number) => boolean } }).binding("tty_wrap");
    if (typeof binding.isTTY === "function") return binding.isTTY(fd);
  } catch {
    // no such binding: below
  }
  return (require("node:tty") as typeof import("node:tty")).isatty(fd);
}

/** BrokenPipe: the reader of stdout went away (`u7s render | head -1`); u7s stops quietly, as on SIGPIPE. */
export class BrokenPipe extends Error {
  override name = "BrokenPipe";
}

/** EXIT_BROKEN_PIPE is the shell's exit status of a program killed by SIGPIPE (128 + 13). */
const EXIT_BROKEN_PIPE = 141;

/**
 * fdWriter writes synchronously to a file descriptor, so a write that fails (a full disk, a closed
 * descriptor) fails the command where it happens, as a one-line error, instead of surfacing later
 * as an unhandled stream error with a stack trace. strict: false (stderr) drops what cannot be written.
 */
export function fdWriter(fd: number, opts: { name: string; strict: boolean; isTTY: boolean }): Writer {
  const closed = closedAtStart(fd);
  return {
    isTTY: opts.isTTY,
    write(text) {
      if (closed) {
        if (!opts.strict) return;
        throw new U7sError(`cannot write to ${opts.name}: it is closed`, { hint: `give u7s somewhere to write (a file, a pipe or the terminal), or \`>/dev/null\` to discard it` });
      }
      const buf = Buffer.from(text);
      for (let off = 0; off < buf.length; ) {
        try {
          off += writeSync(fd, buf, off);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === "EAGAIN") {
            Bun.sleepSync(1); // a non-blocking pipe that is full: its reader is behind
            continue;
          }
          if (!opts.strict) return;
          if (code === "EPIPE") throw new BrokenPipe();
          throw new U7sError(`cannot write to ${opts.name}: ${errnoText(err)}`);
        }
      }
    },
  };
}

/**
 * closedAtStart tells whether fd was closed when u7s started (`u7s config >&-`). Bun then opens
 * /dev/null in its place, close-on-exec: no descriptor inherited from a shell can carry that flag.
 */
function closedAtStart(fd: number): boolean {
  try {
    if (readlinkSync(`/proc/self/fd/${fd}`) !== "/dev/null") return false;
    const flags = /^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
    return flags !== null && (parseInt(flags[1]!, 8) & 0o2000000) !== 0; // O_CLOEXEC
  } catch {
    return false; // no /proc: assume it is open
  }
}

/** GLOBAL_OPTIONS are the flags every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionDef> = {
  help: { type: "boolean", short: "h", description: "show help" },
  quiet: { type: "boolean", short: "q", description: "print no progress or status lines (warnings and errors still)" },
  debug: { type: "boolean", description: "show every engine command with its duration, and stack traces" },
};

/** GLOBAL_FLAGS may come before the command: `u7s --debug up`. */
const GLOBAL_FLAGS = ["--debug", "--quiet", "-q", "--help", "-h"];

const GROUP_TITLES: Record<CommandDef["group"], string> = {
  node: "Node lifecycle",
  cluster: "Cluster",
  image: "Images (airgapped hosts)",
  info: "Settings and information",
};

function optionLines(options: Record<string, OptionDef>): string[] {
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : "    "}--${name}${o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""}`;
    return [flag, o.description] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length));
  return rows.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`);
}

/** mainHelp is `u7s --help`: every command of the surface, grouped. */
export function mainHelp(): string {
  const lines = [
    `u7s ${VERSION}: Kubernetes without root (Usernetes as one binary)`,
    "",
    "Usage: u7s COMMAND [flags]",
  ];
  const width = Math.max(...COMMAND_INDEX.map((c) => c.name.length));
  for (const group of Object.keys(GROUP_TITLES) as CommandDef["group"][]) {
    lines.push("", `${GROUP_TITLES[group]}:`);
    for (const c of COMMAND_INDEX.filter((c) => c.group === group)) {
      const alias = c.aliases?.length ? ` (alias: ${c.aliases.join(", ")})` : "";
      lines.push(`  ${c.name.padEnd(width)}  ${c.summary}${alias}`);
    }
  }
  lines.push("", "Global flags:", ...optionLines(GLOBAL_OPTIONS));
  lines.push("", "Run `u7s COMMAND --help` for a command's flags. Settings: flag > environment variable > derived default.");
  return `${lines.join("\n")}\n`;
}

/** commandHelp is `u7s COMMAND --help`. */
export function commandHelp(c: CommandDef): string {
  const lines = [`u7s ${c.name}: ${c.summary}`, "", `Usage: u7s ${c.name}${c.usage ? ` ${c.usage}` : " [flags]"}`];
  if (c.aliases?.length) lines.push(`Aliases: ${c.aliases.join(", ")}`);
  if (c.description) lines.push("", c.description);
  lines.push("", "Flags:", ...optionLines({ ...(c.options ?? {}), ...GLOBAL_OPTIONS }));
  if (c.settings) lines.push("", "Settings (flag > environment variable > derived default):", ...optionLines(settingOptions));
  if (c.examples?.length) lines.push("", "Examples:", ...c.examples.map((e) => `  ${e}`));
  return `${lines.join("\n")}\n`;
}

/** suggest names the nearest command to a mistyped one, if any is close. */
export function suggest(name: string): string | undefined {
  const names = COMMAND_INDEX.flatMap((c) => [c.name, ...(c.aliases ?? [])]);
  const best = closest(name, names);
  const limit = Math.max(2, Math.floor(name.length / 3));
  if (distance(name, best) <= limit) return best;
  return names.find((n) => n.startsWith(name));
}

function parseCommandArgs(c: CommandDef, argv: string[]): Args {
  const dashdash = argv.indexOf("--");
  const head = dashdash === -1 ? argv : argv.slice(0, dashdash);
  const rest = dashdash === -1 ? [] : argv.slice(dashdash + 1);
  const options = { ...(c.options ?? {}), ...(c.settings ? settingOptions : {}), ...GLOBAL_OPTIONS };
  let parsed;
  try {
    parsed = parseArgs({
      args: head,
      options: Object.fromEntries(
        Object.entries(options).map(([k, o]) => [k, { type: o.type, multiple: o.multiple ?? false, ...(o.short ? { short: o.short } : {}) }]),
      ),
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    // node:util reports e.g. "Unknown option '--foo'"; keep its words, name the command.
    const msg = (err as Error).message.replace(/\. To specify a positional argument.*$/s, "");
    throw new UsageError(`u7s ${c.name}: ${msg}`, { hint: `see \`u7s ${c.name} --help\`` });
  }
  const max = c.maxPositionals ?? 0;
  if (parsed.positionals.length > max) {
    const extra = parsed.positionals.slice(max).join(" ");
    throw new UsageError(`u7s ${c.name}: unexpected argument ${JSON.stringify(extra)}`, {
      hint: `see \`u7s ${c.name} --help\``,
    });
  }
  return { values: parsed.values as Args["values"], positionals: parsed.positionals, rest };
}

function makeCtx(deps: Deps, args: Args, log: Log, debug: boolean): Ctx {
  let config: Promise<NodeConfig> | undefined;
  let engine: Promise<Engine> | undefined;
  const runner = debug ? debugRunner(deps.runner, log) : deps.runner;
  const ctx: Ctx = {
    // loaded when a command asks: `u7s --help` and `version` need neither
    config: () => (config ??= import("./config/resolve.ts").then((m) => m.resolveNodeConfig({ flags: settingFlags(args), env: deps.env, host: deps.host }))),
    engine: () => (engine ??= Promise.all([ctx.config(), import("./engine/detect.ts")]).then(([c, m]) => m.detectEngine(c, runner))),
    out: deps.stdout,
    log,
    runner,
    host: deps.host,
    env: deps.env,
    debug,
    stdinIsTTY: deps.stdinIsTTY,
  };
  return ctx;
}

/** run is the whole CLI: parse argv, dispatch, print errors; resolves with the exit code. */
export async function run(argv: string[], deps: Deps): Promise<number> {
  // Global flags count up to `--`, and for kubectl (whose flags are its own) only before the command.
  const cmdAt = argv.findIndex((a) => !GLOBAL_FLAGS.includes(a));
  const raw = cmdAt !== -1 && findEntry(argv[cmdAt]!)?.rawArgs === true;
  const head = raw ? argv.slice(0, cmdAt) : argv.includes("--") ? argv.slice(0, argv.indexOf("--")) : argv;
  const debug = head.includes("--debug");
  const quiet = head.includes("--quiet") || head.includes("-q");
  // The spinner draws on the real terminal only: never into a pipe, a file or a test's capture.
  const terminal = deps.stderr.isTTY && process.stderr.isTTY ? process.stderr : undefined;
  const log = new Log(deps.stderr, { color: colorEnabled(deps.env, deps.stderr), quiet, debug, terminal });
  // Stack traces (--debug) repeat the message: redacted as everything Log prints.
  const stderr = redactingWriter(deps.stderr);
  try {
    if (argv[0] === "--version" || argv[0] === "-v") argv = ["version", ...argv.slice(1)];
    // Only global flags may come before the command; the command's own flags go after it.
    const at = argv.findIndex((a) => !GLOBAL_FLAGS.includes(a));
    const first = at === -1 ? undefined : argv[at]!;
    if (first?.startsWith("-")) {
      throw new UsageError(`unknown flag ${first} before the command`, { hint: "put a command's flags after it: u7s COMMAND [flags] (see `u7s --help`)" });
    }
    if (first === undefined || first === "help") {
      const topic = first === "help" ? argv[at + 1] : undefined;
      if (topic !== undefined) {
        const c = findEntry(topic);
        if (c) {
          deps.stdout.write(commandHelp(await c.load()));
          return 0;
        }
        return await run([topic, "--help"], deps);
      }
      deps.stdout.write(mainHelp());
      return 0;
    }
    const entry = findEntry(first);
    if (!entry) {
      const near = suggest(first);
      throw new UsageError(`unknown command ${JSON.stringify(first)}`, {
        hint: near ? `did you mean \`u7s ${near}\`? (see \`u7s --help\`)` : "see `u7s --help`",
      });
    }
    const command = await entry.load();
    const rest = [...argv];
    rest.splice(at, 1);
    // rawArgs commands (kubectl) pass everything on: their flags are the wrapped program's.
    const args = command.rawArgs ? { values: {}, positionals: [], rest: argv.slice(at + 1) } : parseCommandArgs(command, rest);
    if (args.values.help === true) {
      deps.stdout.write(commandHelp(command));
      return 0;
    }
    const code = await command.run(makeCtx(deps, args, log, debug), args);
    return code ?? 0;
  } catch (err) {
    if (err instanceof UsageError) {
      for (const p of err.problems) log.error(p);
      if (err.hint) log.hint(err.hint);
      return 2;
    }
    if (err instanceof U7sError) {
      log.error(err.message, err.detail, err.hint);
      if (debug && err.stack) stderr.write(`${err.stack}\n`);
      return err.exitCode;
    }
    if (err instanceof BrokenPipe) return EXIT_BROKEN_PIPE;
    const e = err as NodeJS.ErrnoException;
    if (typeof e?.code === "string" && typeof e.syscall === "string") {
      // A system call failed (a full disk, a missing directory): the host's problem, said plainly.
      log.error(`${e.syscall}${e.path ? ` ${e.path}` : ""}: ${errnoText(e)}`);
      if (debug && e.stack) stderr.write(`${e.stack}\n`);
      return 1;
    }
    log.error(`internal error: ${e?.message ?? String(err)}`, undefined, "re-run with --debug and report it");
    if (debug && e?.stack) stderr.write(`${e.stack}\n`);
    return 1;
  }
}
