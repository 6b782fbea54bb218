import type { NodeConfig } from "../config/resolve.ts";
import type { Engine } from "../engine/engine.ts";
import type { Runner } from "../exec.ts";
import type { HostProbe } from "../host/probe.ts";
import type { Log, Writer } from "../log.ts";

/** OptionDef is one flag of a command: its parseArgs type plus help text. */
export interface OptionDef {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  /** value: the placeholder shown in help, e.g. REF. */
  value?: string;
  description: string;
}

/** Args are a command's parsed flags and positionals. */
export interface Args {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
  /** rest: everything after a literal `--`. */
  rest: string[];
}

/** Ctx is what a command gets: resolved settings, the engine, and where to write. */
export interface Ctx {
  /** config resolves the node settings once (flags > env > derived); throws UsageError on bad input. */
  config(): Promise<NodeConfig>;
  /** engine resolves the configured engine's driver (needs an engine to be installed). */
  engine(): Promise<Engine>;
  out: Writer;
  log: Log;
  runner: Runner;
  host: HostProbe;
  env: Readonly<Record<string, string | undefined>>;
  debug: boolean;
  /** stdinIsTTY: stdin is a terminal. */
  stdinIsTTY: boolean;
}

/** CommandDef describes one subcommand: its help and its action. */
export interface CommandDef {
  name: string;
  aliases?: readonly string[];
  summary: string;
  /** usage: the argument part of the usage line, e.g. "[flags] -- CMD [ARG...]". */
  usage?: string;
  /** description: longer help text. */
  description?: string;
  examples?: readonly string[];
  options?: Record<string, OptionDef>;
  /** settings: the command reads the node settings, so it takes the setting flags. */
  settings?: boolean;
  /** positionals: the most positional arguments the command takes (default 0). */
  maxPositionals?: number;
  /** rawArgs: every argument after the command goes to args.rest unparsed (kubectl's own flags). */
  rawArgs?: boolean;
  /** group: where `u7s --help` lists the command. */
  group: "node" | "cluster" | "image" | "info";
  run(ctx: Ctx, args: Args): Promise<number | void>;
}
