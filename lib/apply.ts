import { check, formatCommand, type Runner } from "./exec.ts";
import type { Log, Writer } from "./log.ts";

/** Applier carries out the commands that change the engine, or only prints them (--dry-run). */
export interface Applier {
  readonly dryRun: boolean;
  /** apply runs one changing command as a named step (or prints it on a dry run). */
  apply(title: string, argv: readonly string[]): Promise<void>;
}

/**
 * realApplier runs each command as a step with a progress line (--debug shows the command and its
 * duration through the runner: see debugRunner).
 */
export function realApplier(runner: Runner, log: Log, _debug?: boolean): Applier {
  return {
    dryRun: false,
    async apply(title, argv) {
      await log.step(title, () => check(runner, argv));
    },
  };
}

/** debugRunner wraps a runner so that --debug prints every command it runs, its exit code and its duration. */
export function debugRunner(runner: Runner, log: Log): Runner {
  return async (argv, opts) => {
    const t0 = performance.now();
    try {
      const r = await runner(argv, opts);
      log.debug(`${formatCommand(argv)} (exit ${r.exitCode}, ${Math.round(performance.now() - t0)} ms)`);
      return r;
    } catch (err) {
      log.debug(`${formatCommand(argv)} (failed to start, ${Math.round(performance.now() - t0)} ms)`);
      throw err;
    }
  };
}

/** dryRunApplier prints each command, shell-quoted, one per line on stdout, and runs none. */
export function dryRunApplier(out: Writer): Applier {
  return {
    dryRun: true,
    async apply(_title, argv) {
      out.write(`${formatCommand(argv)}\n`);
    },
  };
}
