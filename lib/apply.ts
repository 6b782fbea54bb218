import { check, formatCommand, type Runner } from "./exec.ts";
import type { Log, Writer } from "./log.ts";

/** Applier carries out the commands that change the engine, or only prints them (--dry-run). */
export interface Applier {
  readonly dryRun: boolean;
  /** apply runs one changing command as a named step (or prints it on a dry run). */
  apply(title: string, argv: readonly string[]): Promise<void>;
}

/** realApplier runs each command as a step with a progress line; --debug also shows the command. */
export function realApplier(runner: Runner, log: Log, debug: boolean): Applier {
  return {
    dryRun: false,
    async apply(title, argv) {
      await log.step(title, async () => {
        if (debug) log.info(`   $ ${formatCommand(argv)}`);
        await check(runner, argv);
      });
    },
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
